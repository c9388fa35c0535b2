from django.core.management.base import BaseCommand, CommandError

from castiel.tenancy import services


class Command(BaseCommand):
    help = "Create a tenant and its first API key; the key is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Display name of the tenant")
        parser.add_argument("--slug", help="URL-safe identifier (derived from the name)")
        parser.add_argument("--key-name", default="default", help="Name of the first API key")

    def handle(self, *args, name, slug=None, key_name="default", **options):
        try:
            tenant = services.tenant_create(name=name, slug=slug)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        _key, raw = services.api_key_create(tenant=tenant, name=key_name)
        self.stdout.write(f"Created tenant {tenant.name!r} (slug {tenant.slug}, id {tenant.id}).")
        self.stdout.write("API key (shown once):")
        self.stdout.write(raw)
