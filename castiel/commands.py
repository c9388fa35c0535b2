"""Helpers shared by the operator commands (``manage.py sync_run``, ``webhooks_replay`` …).

* :class:`Progress` — a progress bar on the command's stderr. Deliberately stdlib (a dozen
  lines) rather than tqdm: the commands need one bar and a counter, and a new runtime
  dependency for that is not worth it. On a terminal it redraws one line; elsewhere (logs,
  tests, pipes) it stays silent until :meth:`Progress.close`, which writes one summary line.
* Lookups that turn an operator's argument into an object or a one-line
  :class:`~django.core.management.base.CommandError`.
"""

from __future__ import annotations

import time
import uuid

from django.core.management.base import CommandError

BAR_WIDTH = 30


class Progress:
    """``with Progress(stream, total=N, label="replaying") as bar: bar.advance()``.

    ``total=None`` shows a counter without a bar (work of unknown length).
    """

    def __init__(self, stream, *, total: int | None, label: str, unit: str = "", tty=None):
        self.stream = stream
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self.note = ""
        self.tty = stream.isatty() if tty is None and hasattr(stream, "isatty") else bool(tty)
        self._drawn_at = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note
        self._draw()

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        self.note = note
        self._draw()

    def line(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            filled = int(BAR_WIDTH * min(self.done, self.total) / self.total)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            text = f"{self.label} [{bar}] {self.done}/{self.total}{unit}"
        else:
            text = f"{self.label}: {self.done}{unit}"
        return f"{text} {self.note}".rstrip()

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < 0.1 and self.done != self.total:
            return  # at most ten redraws a second
        self._drawn_at = now
        self.stream.write("\r\033[K" + self.line())
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line() + "\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise CommandError(f"{value!r} is not a {what} id (a UUID)") from None


def tenant_by_slug(slug: str | None):
    from castiel.tenancy.models import Tenant

    if not slug:
        return None
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant with slug {slug!r}")
    return tenant
