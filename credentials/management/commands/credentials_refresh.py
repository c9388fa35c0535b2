"""Refresh one credential's token now, or every credential that is due.

    manage.py credentials_refresh <credential id>     # forced, audited as manual
    manage.py credentials_refresh --due [--limit N]   # what the maintenance schedule does

Every refresh is single-flight and audited (credentials/refresh.py). Exit status 1 with one
line when a refresh failed (e.g. the provider answered invalid_grant: reconnect it).
"""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from castiel.commands import Progress, parse_uuid
from credentials.maintenance import due_for_refresh
from credentials.models import Credential, TokenRefreshAudit
from credentials.refresh import credential_refresh

Outcome = TokenRefreshAudit.Outcome
FAILED = (Outcome.REAUTH_REQUIRED, Outcome.TRANSIENT_ERROR, Outcome.ERROR)


class Command(BaseCommand):
    help = "Refresh a credential's token now (by id), or every credential due (--due)."

    def add_arguments(self, parser):
        parser.add_argument("credential", nargs="?", help="credential id")
        parser.add_argument("--due", action="store_true", help="every credential due now")
        parser.add_argument("--limit", type=int, default=5000, help="with --due: at most N")

    def handle(self, *args, **options):
        if bool(options["credential"]) == bool(options["due"]):
            raise CommandError("give a credential id or --due")
        if options["due"]:
            return self._due(options["limit"])
        return self._one(options["credential"])

    def _one(self, ref: str) -> None:
        credential = Credential.objects.filter(pk=parse_uuid(ref, "credential")).first()
        if credential is None:
            raise CommandError(f"no credential {ref}")
        if not credential.kind.refreshable:
            raise CommandError(f"{credential.type} credentials have no token to refresh")
        result = credential_refresh(
            credential_id=credential.pk, trigger=TokenRefreshAudit.Trigger.MANUAL, force=True
        )
        if result.outcome == Outcome.REFRESHED:
            expires = result.credential.expires_at
            self.stdout.write(
                f"credential {credential.pk}: refreshed"
                + (f", expires {expires:%Y-%m-%d %H:%M:%S} UTC" if expires else "")
            )
            return
        reason = result.message or result.error_code or result.outcome
        raise CommandError(f"credential {credential.pk}: {result.outcome}: {reason}"[:500])

    def _due(self, limit: int) -> None:
        ids = list(due_for_refresh().values_list("pk", flat=True)[: max(1, limit)])
        outcomes: Counter = Counter()
        failures: list[str] = []
        with Progress(self.stderr, total=len(ids), label="refreshing", unit="credentials") as bar:
            for credential_id in ids:
                try:
                    result = credential_refresh(
                        credential_id=credential_id, trigger=TokenRefreshAudit.Trigger.SCHEDULE
                    )
                    outcome = str(result.outcome)
                    if outcome in FAILED:
                        failures.append(f"{credential_id}: {outcome}")
                except Credential.DoesNotExist:
                    outcome = "gone"
                except Exception as exc:  # one broken credential must not stop the rest
                    outcome = "error"
                    failures.append(f"{credential_id}: {exc.__class__.__name__}")
                outcomes[outcome] += 1
                bar.advance()
        counts = ", ".join(f"{n} {name}" for name, n in sorted(outcomes.items())) or "none due"
        self.stdout.write(f"{len(ids)} credentials due: {counts}")
        if failures:
            raise CommandError(
                f"{len(failures)} of {len(ids)} could not be refreshed: " + "; ".join(failures[:5])
            )
