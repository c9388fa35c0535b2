from django.core.management.base import BaseCommand, CommandError

from credentials.secrets import secret_store


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the newest key in CASTIEL_SECRET_KEYS "
        "(encrypted database store). Afterwards older keys can be removed."
    )

    def handle(self, *args, **options):
        store = secret_store()
        rotate = getattr(store, "rotate", None)
        if rotate is None:
            raise CommandError(
                f"{store.__class__.__name__} manages its own encryption keys; nothing to rotate"
            )
        count = rotate()
        self.stdout.write(f"re-encrypted {count} secret version(s) under the newest key")
