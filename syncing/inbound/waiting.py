"""How an inbound run waits: retries back off by the sync's :class:`RetryPolicy` (full jitter,
never below ``Retry-After``, ``CASTIEL_SYNC_MAX_RETRIES`` retries), in the worker while the
wait is short — renewing the lease — or by deferring the run (``next_run_at``) when it is
long; an exhausted provider limit is waited out the same way. Every retry is logged on the
run (``retry_log``, ``retries``, ``waited_seconds``).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from castiel.http.retry import RetryPolicy
from castiel.observability.logging import get_logger
from syncing import metrics
from syncing.inbound import leases
from syncing.inbound.errors import Deferred, SyncFailure
from syncing.models import SyncRun, SyncTask

log = get_logger(__name__)
MAX_RETRY_LOG = 20


def sync_retries() -> RetryPolicy:
    """Backoff between a page's attempts (``CASTIEL_SYNC_MAX_RETRIES`` retries after the first)."""
    return RetryPolicy.from_settings(
        "CASTIEL_SYNC", max_attempts=settings.CASTIEL_SYNC_MAX_RETRIES + 1
    )


class Waiting:
    """The waits of one run of ``task`` under ``token``."""

    # A lease renewed this recently (a fraction of the lease) is not renewed again before a
    # request: nobody can take the task before it expires (the reaper takes expired leases
    # only), so the check would cost every page a write and a commit and say nothing new.
    # Every write to the task stays fenced.
    RENEWED_FRACTION = 0.1

    def __init__(self, task: SyncTask, run: SyncRun, token: str, provider: str):
        self.task = task
        self.run = run
        self.token = token
        self.provider = provider
        self._renewed_at: float | None = None  # time.monotonic() of the last renewal

    def renew(self) -> None:
        """Renew the lease (or raise LeaseLost) unless it was renewed a moment ago."""
        since = None if self._renewed_at is None else time.monotonic() - self._renewed_at
        if since is not None and since < leases.lease_seconds() * self.RENEWED_FRACTION:
            return
        leases.renew(self.task.id, self.token)
        self.renewed()

    def renewed(self) -> None:
        """The lease was just renewed (and committed)."""
        self._renewed_at = time.monotonic()

    def retry(self, attempt: int, code: str, reason: str, retry_after) -> None:
        """Back off before attempt ``attempt + 1`` (in the worker, or deferred when long);
        past the retry limit the run fails with ``code``."""
        policy = sync_retries()
        if policy.exhausted(attempt):
            raise SyncFailure(code, f"gave up after {attempt} attempts: {reason}")
        delay = policy.delay(attempt, retry_after=retry_after)
        self._record_retry(code, reason, delay, retry_after)
        if delay > settings.CASTIEL_SYNC_MAX_INLINE_WAIT:
            raise Deferred(delay, f"waiting {delay:.0f}s before retrying: {reason}")
        self.sleep(delay)

    def respect_exhausted_limit(self, page) -> None:
        """The provider said 0 requests remain: wait for its reset before asking again."""
        info = page.rate_limit
        if info is None or info.remaining != 0 or not info.reset_after:
            return
        if info.reset_after > settings.CASTIEL_SYNC_MAX_INLINE_WAIT:
            raise Deferred(info.reset_after, "provider rate limit exhausted until its reset")
        self.sleep(info.reset_after)
        SyncRun.objects.filter(id=self.run.id).update(
            waited_seconds=F("waited_seconds") + info.reset_after
        )

    def sleep(self, seconds: float) -> None:
        """Wait in the worker, renewing the lease every few seconds."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 5.0))
            self.renew()

    def _record_retry(self, code, reason, delay, retry_after) -> None:
        metrics.RETRIES.labels(self.provider, code).inc()
        entry = {
            "at": timezone.now().isoformat(),
            "page": self.run.pages + 1,
            "code": code,
            "reason": reason[:300],
            "delay": round(delay, 3),
            "retry_after": retry_after,
        }
        self.run.retry_log = [*self.run.retry_log, entry][-MAX_RETRY_LOG:]
        self.run.retries += 1
        self.run.waited_seconds += delay
        SyncRun.objects.filter(id=self.run.id).update(
            retries=F("retries") + 1,
            waited_seconds=F("waited_seconds") + delay,
            retry_log=self.run.retry_log,
            heartbeat_at=timezone.now(),
        )
        log.warning("sync.retry", code=code, reason=reason[:300], delay=round(delay, 3))
