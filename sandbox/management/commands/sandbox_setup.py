"""Create (or reset) a sandbox account and seed it with demo contacts and companies."""

from django.core.management.base import BaseCommand, CommandError

from sandbox import services
from sandbox.demo import demo_companies, demo_contacts
from sandbox.models import SandboxAccount


class Command(BaseCommand):
    help = "Create a sandbox account with demo data (served under /sandbox/<account>/...)."

    def add_arguments(self, parser):
        parser.add_argument("account", help="account slug, e.g. demo")
        parser.add_argument("--contacts", type=int, default=250)
        parser.add_argument("--companies", type=int, default=50)
        parser.add_argument("--reset", action="store_true", help="delete existing data first")

    def handle(self, *args, account, contacts, companies, reset, **options):
        existing = SandboxAccount.objects.filter(slug=account).first()
        if existing and not reset:
            raise CommandError(f"sandbox account {account!r} exists (use --reset to recreate it)")
        if existing:
            existing.delete()
        acct = services.account_create(slug=account)
        services.objects_seed(account=acct, collection="contacts", rows=demo_contacts(contacts))
        services.objects_seed(account=acct, collection="companies", rows=demo_companies(companies))
        self.stdout.write(f"sandbox account {account}: {contacts} contacts, {companies} companies")
