"""What the push side is doing: outbound changes by status, the oldest waiting change, open
dead letters — overall or per integration.

    manage.py outbox_status [--tenant demo] [--by-integration] [--json]
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.db.models import Count, Min
from django.utils import timezone

from castiel.commands import tenant_by_slug
from syncing.models import DeadLetter, OutboundChange

WAITING = ("pending", "queued", "running")


class Command(BaseCommand):
    help = "Outbound changes by status, the oldest waiting change and open dead letters."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug")
        parser.add_argument("--by-integration", action="store_true")
        parser.add_argument("--json", action="store_true", help="one JSON object")

    def handle(self, *args, **options):
        changes = OutboundChange.objects.all()
        letters = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
        tenant = tenant_by_slug(options["tenant"])
        if tenant is not None:
            changes, letters = changes.filter(tenant=tenant), letters.filter(tenant=tenant)
        report = status_report(changes, letters, by_integration=options["by_integration"])
        if options["json"]:
            self.stdout.write(json.dumps(report, default=str))
            return
        for row in report["rows"]:
            label = row.get("integration") or "all integrations"
            statuses = "  ".join(f"{k} {v}" for k, v in sorted(row["statuses"].items())) or "empty"
            self.stdout.write(f"{label}: {statuses}")
            if row["oldest_waiting_seconds"] is not None:
                self.stdout.write(f"  oldest waiting change: {row['oldest_waiting_seconds']:.0f} s")
            self.stdout.write(f"  open dead letters: {row['open_dead_letters']}")


def status_report(changes, letters, *, by_integration: bool) -> dict:
    now = timezone.now()
    keys = ["integration__name"] if by_integration else []
    rows: dict = {}
    for entry in changes.values(*keys, "status").annotate(n=Count("id")).order_by():
        row = rows.setdefault(entry.get("integration__name"), _row(entry.get("integration__name")))
        row["statuses"][entry["status"]] = entry["n"]
    oldest = (
        changes.filter(status__in=WAITING).values(*keys).annotate(at=Min("created_at")).order_by()
    )
    for entry in oldest:
        row = rows.setdefault(entry.get("integration__name"), _row(entry.get("integration__name")))
        row["oldest_waiting_seconds"] = (now - entry["at"]).total_seconds()
    for entry in letters.values(*keys).annotate(n=Count("id")).order_by():
        row = rows.setdefault(entry.get("integration__name"), _row(entry.get("integration__name")))
        row["open_dead_letters"] = entry["n"]
    if not rows:
        rows[None] = _row(None)
    return {"at": now.isoformat(), "rows": [rows[k] for k in sorted(rows, key=lambda k: k or "")]}


def _row(integration):
    row = {"statuses": {}, "oldest_waiting_seconds": None, "open_dead_letters": 0}
    if integration:
        row["integration"] = integration
    return row
