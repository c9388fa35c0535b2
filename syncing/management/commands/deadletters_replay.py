"""Replay (or discard) dead letters by id or by filter.

    manage.py deadletters_replay <id> [<id> …]
    manage.py deadletters_replay --tenant demo --integration CRM --error-code http_422
    manage.py deadletters_replay --all --dry-run          # list what would be replayed
    manage.py deadletters_replay <id> --discard           # give the change up instead

Only open dead letters are touched. Each replay puts the change back in the outbox (attempts
reset; see syncing/outbound/deadletters.py) and the push workers take it from there.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from castiel.commands import Progress, parse_uuid, tenant_by_slug
from integrations.selectors import integration_by_ref
from syncing.models import DeadLetter
from syncing.outbound import deadletters


class Command(BaseCommand):
    help = "Replay (or discard) open dead letters, by id or by filter; --dry-run lists them."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", help="dead letter ids")
        parser.add_argument("--tenant", help="tenant slug")
        parser.add_argument("--integration", help="integration id or name")
        parser.add_argument("--entity", help="entity type")
        parser.add_argument("--error-code", help="e.g. http_422, timeout")
        parser.add_argument("--operation", choices=["create", "update", "delete"])
        parser.add_argument("--all", action="store_true", help="every open dead letter")
        parser.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")
        parser.add_argument("--discard", action="store_true", help="discard instead of replay")

    def handle(self, *args, **options):
        letters = self._select(options)
        verb = "discard" if options["discard"] else "replay"
        if not letters:
            self.stdout.write(f"no open dead letters to {verb}")
            return
        if options["dry_run"]:
            for letter in letters:
                self.stdout.write(
                    f"{letter.pk}  {letter.operation} {letter.entity_type} "
                    f"{letter.external_id or letter.record_id}  {letter.error_code}: "
                    f"{letter.error_message.splitlines()[0][:120] if letter.error_message else ''}"
                )
            self.stdout.write(f"would {verb} {len(letters)} dead letters (dry run)")
            return
        action = (
            deadletters.dead_letter_discard
            if options["discard"]
            else deadletters.dead_letter_replay
        )
        done, skipped = 0, {}
        with Progress(
            self.stderr, total=len(letters), label=f"{verb}ing", unit="dead letters"
        ) as bar:
            for letter in letters:
                try:
                    action(dead_letter=letter, by="command:deadletters_replay")
                    done += 1
                except deadletters.DeadLetterError as exc:
                    skipped[str(letter.pk)] = str(exc)
                bar.advance()
        past = "discarded" if options["discard"] else "replayed"
        self.stdout.write(
            f"{past} {done} dead letters" + (f", {len(skipped)} skipped" if skipped else "")
        )
        for letter_id, reason in skipped.items():
            self.stderr.write(f"skipped {letter_id}: {reason}")

    def _select(self, options) -> list[DeadLetter]:
        filters = ("tenant", "integration", "entity", "error_code", "operation")
        if options["ids"]:
            if any(options[name] for name in filters) or options["all"]:
                raise CommandError("give dead letter ids or filters, not both")
            wanted = [parse_uuid(value, "dead letter") for value in options["ids"]]
            found = {d.pk: d for d in DeadLetter.objects.filter(pk__in=wanted)}
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                raise CommandError(f"no dead letter {', '.join(missing)}")
            not_open = [str(d.pk) for d in found.values() if d.status != DeadLetter.Status.OPEN]
            if not_open:
                raise CommandError(f"already replayed or discarded: {', '.join(not_open)}")
            return [found[i] for i in wanted]
        if not options["all"] and not any(options[name] for name in filters):
            raise CommandError(
                "give dead letter ids, a filter (--tenant, --integration …) or --all"
            )
        queryset = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).order_by("created_at")
        tenant = tenant_by_slug(options["tenant"])
        if tenant is not None:
            queryset = queryset.filter(tenant=tenant)
        if options["integration"]:
            queryset = queryset.filter(
                integration=integration_by_ref(options["integration"], tenant)
            )
        if options["entity"]:
            queryset = queryset.filter(entity_type=options["entity"])
        if options["error_code"]:
            queryset = queryset.filter(error_code=options["error_code"])
        if options["operation"]:
            queryset = queryset.filter(operation=options["operation"])
        return list(queryset[: max(1, options["limit"])])
