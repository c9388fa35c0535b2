"""Replay stored webhook events by id or by filter.

    manage.py webhooks_replay <event id> [<event id> …]
    manage.py webhooks_replay --status failed --tenant demo --since 2025-01-31T00:00:00Z
    manage.py webhooks_replay --status failed --dry-run     # list what would be replayed
    manage.py webhooks_replay <id> --inline                 # process here, not on a worker

A replay processes the stored, already verified bytes again (webhooks.processing.event_replay):
no signature check, every action runs again. Only accepted events can be replayed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from castiel.commands import Progress, parse_uuid, tenant_by_slug
from webhooks import processing
from webhooks.models import WebhookEvent

STATUSES = [s for s in WebhookEvent.Status.values if s]


class Command(BaseCommand):
    help = "Replay stored (accepted) webhook events by id or by filter; --dry-run lists them."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", help="webhook event ids")
        parser.add_argument("--tenant", help="tenant slug")
        parser.add_argument("--registration", help="webhook registration id")
        parser.add_argument("--status", choices=STATUSES, help="processing status, e.g. failed")
        parser.add_argument("--event-type", help="exact event type, e.g. contacts.updated")
        parser.add_argument("--since", help="received at or after (ISO 8601)")
        parser.add_argument("--hours", type=float, help="received within the last N hours")
        parser.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")
        parser.add_argument(
            "--inline", action="store_true", help="process in this process (no worker needed)"
        )

    def handle(self, *args, **options):
        events = self._select(options)
        if not events:
            self.stdout.write("no webhook events to replay")
            return
        if options["dry_run"]:
            for event in events:
                self.stdout.write(
                    f"{event.pk}  {event.received_at:%Y-%m-%d %H:%M:%S}  "
                    f"{event.event_type or '-'}  {event.status}  {event.last_error[:100]}"
                )
            self.stdout.write(f"would replay {len(events)} events (dry run)")
            return
        done, refused, outcomes = 0, {}, {}
        with Progress(self.stderr, total=len(events), label="replaying", unit="events") as bar:
            for event in events:
                try:
                    processing.event_replay(event=event)
                except processing.ReplayRefused as exc:
                    refused[str(event.pk)] = str(exc)
                else:
                    done += 1
                    if options["inline"]:
                        status = processing.event_process(event_id=event.pk) or "skipped"
                        outcomes[status] = outcomes.get(status, 0) + 1
                bar.advance()
        line = f"replayed {done} events"
        if outcomes:
            line += " (" + ", ".join(f"{n} {s}" for s, n in sorted(outcomes.items())) + ")"
        if refused:
            line += f", {len(refused)} refused"
        self.stdout.write(line)
        for event_id, reason in refused.items():
            self.stderr.write(f"refused {event_id}: {reason}")

    def _select(self, options) -> list[WebhookEvent]:
        filters = ("tenant", "registration", "status", "event_type", "since", "hours")
        queryset = WebhookEvent.objects.select_related("registration")
        if options["ids"]:
            if any(options[name] for name in filters):
                raise CommandError("give event ids or filters, not both")
            wanted = [parse_uuid(value, "webhook event") for value in options["ids"]]
            found = {e.pk: e for e in queryset.filter(pk__in=wanted)}
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                raise CommandError(f"no webhook event {', '.join(missing)}")
            not_accepted = [str(e.pk) for e in found.values() if e.outcome != "accepted"]
            if not_accepted:
                raise CommandError(
                    "only accepted events can be replayed; not accepted: " + ", ".join(not_accepted)
                )
            return [found[i] for i in wanted]
        if not any(options[name] for name in filters):
            raise CommandError("give event ids or a filter (--status, --registration, --since …)")
        queryset = queryset.filter(outcome=WebhookEvent.Outcome.ACCEPTED).order_by("received_at")
        tenant = tenant_by_slug(options["tenant"])
        if tenant is not None:
            queryset = queryset.filter(tenant=tenant)
        if options["registration"]:
            queryset = queryset.filter(
                registration_id=parse_uuid(options["registration"], "webhook registration")
            )
        if options["status"]:
            queryset = queryset.filter(status=options["status"])
        if options["event_type"]:
            queryset = queryset.filter(event_type=options["event_type"])
        if options["since"]:
            queryset = queryset.filter(received_at__gte=_parse_time(options["since"]))
        if options["hours"]:
            queryset = queryset.filter(
                received_at__gte=timezone.now() - timedelta(hours=options["hours"])
            )
        return list(queryset[: max(1, options["limit"])])


def _parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since {value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
