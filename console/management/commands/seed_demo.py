"""Create the demo operator and tenant once, set up the sandbox demo, print how to reach them.

The demo credentials are kept in ``<data dir>/demo-credentials.json`` (mode 0600) so they can
be printed at every start; this file exists only for the embedded demo. The sandbox demo
(an integration with the built-in sandbox, schedules, a webhook registration, a push rule and
a "sandbox activity" schedule) is described in ``castiel/demo.py``.
"""

from __future__ import annotations

import json
import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from castiel.tenancy import services as tenancy
from castiel.tenancy.models import Tenant

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "Create the demo admin user and demo tenant if absent and print their credentials."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--sandbox-url",
            default=os.environ.get("CASTIEL_SANDBOX_BASE_URL", ""),
            help="where the built-in sandbox is reached (default: CASTIEL_SANDBOX_BASE_URL, "
            "else --base-url)",
        )
        parser.add_argument(
            "--no-sandbox", action="store_true", help="only the admin user and tenant"
        )

    def handle(self, *args, base_url: str, sandbox_url: str, no_sandbox: bool, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo is for the embedded profile only")
        path = settings.DATA_DIR / "demo-credentials.json"
        creds = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            creds = self._admin(creds)
            creds = self._tenant(creds)
        path.write_text(json.dumps(creds, indent=2))
        path.chmod(0o600)
        demo = None
        if settings.CASTIEL_SANDBOX and not no_sandbox:
            from console.demo import demo_seed

            demo = demo_seed(
                tenant=self.tenant, base_url=base_url, sandbox_url=sandbox_url or base_url
            )
        self._print(base_url, creds, demo)

    def _admin(self, creds: dict) -> dict:
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            creds["admin_password"] = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@example.com", creds["admin_password"])
        return creds

    def _tenant(self, creds: dict) -> dict:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = tenancy.tenant_create(name="Demo Company", slug=DEMO_SLUG)
        if (
            not creds.get("api_key")
            or not tenant.api_keys.filter(
                prefix=creds["api_key"].split("_")[1], revoked_at__isnull=True
            ).exists()
        ):
            _key, creds["api_key"] = tenancy.api_key_create(tenant=tenant, name="demo")
        self.tenant = tenant
        return creds

    def _print(self, base: str, creds: dict, demo=None) -> None:
        password = creds.get("admin_password", "(set before; see demo-credentials.json)")
        lines = [
            "",
            "Castiel is starting (embedded profile: SQLite + one worker cluster).",
            f"  Record store     {_record_store()}",
            f"  Admin            {base}/admin/   user: admin   password: {password}",
            f"  API docs         {base}/api/docs/",
            f"  Health           {base}/healthz",
            f"  Metrics          {base}/metrics",
            f"  Demo tenant key  {creds['api_key']}",
            f"  Try it           curl -H 'Authorization: Bearer {creds['api_key']}' "
            f"{base}/api/v1/tenant/",
        ]
        if demo is not None:
            lines += [
                f"  Demo CRM         {demo.sandbox_url}contacts/  (the built-in sandbox)",
                f"  Synced records   {base}/admin/syncing/record/  (edit one: it is pushed out)",
                f"  Webhooks         {base}/admin/webhooks/webhookevent/  (a sandbox contact "
                "changes every minute)",
                '  Walkthrough      docs/api.md, "Demo walkthrough"',
            ]
        lines.append("")
        self.stdout.write("\n".join(lines))


def _record_store() -> str:
    from syncing.records.stores import get_store

    return get_store().describe()
