from django.core.management.base import BaseCommand

from castiel.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update Castiel's recurring schedules (idempotent; also runs on migrate)."

    def handle(self, *args, **options):
        result = ensure_schedules()
        self.stdout.write(
            "schedules: {created} created, {updated} updated, {deleted} removed".format(**result)
        )
