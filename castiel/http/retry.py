"""Backoff for retries: one :class:`RetryPolicy` for every retrying path (pull, push, webhooks).

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"), capped, never shorter than the provider's ``Retry-After``, and a number of attempts
after which the work gives up (fails, or becomes a dead letter).

Not tenacity: the retrying paths need the delay as a number — to store in
``next_attempt_at``, to choose between waiting in the worker (renewing its lease) and
releasing the work until later, to fit a retry into a batch's time budget — and the attempt
count lives in the work's row, not in a loop tenacity could own. tenacity still retries the
in-process token request (credentials/refresh.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings


def full_jitter_delay(
    attempt: int, *, base: float = 1.0, cap: float = 600.0, retry_after: float | None = None
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before the next attempt, and when to give up.

    ``attempt`` counts the attempts made so far, from 1. ``max_attempts`` is the number of
    attempts allowed in all (None: no limit).
    """

    base: float = 1.0
    cap: float = 600.0
    max_attempts: int | None = None

    @classmethod
    def from_settings(cls, prefix: str, *, max_attempts: int | None = None) -> RetryPolicy:
        """``<prefix>_RETRY_BASE_SECONDS`` and ``<prefix>_RETRY_CAP_SECONDS``; the limit is
        ``max_attempts`` when given, else ``<prefix>_MAX_ATTEMPTS`` (read at each call, so
        settings overridden in tests apply)."""
        return cls(
            base=getattr(settings, f"{prefix}_RETRY_BASE_SECONDS"),
            cap=getattr(settings, f"{prefix}_RETRY_CAP_SECONDS"),
            max_attempts=max_attempts
            if max_attempts is not None
            else getattr(settings, f"{prefix}_MAX_ATTEMPTS"),
        )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``attempt + 1``: full jitter under ``min(cap, base ·
        2^(attempt-1))``, never below ``retry_after`` (even above the cap: asking earlier
        would only be refused again)."""
        return full_jitter_delay(attempt, base=self.base, cap=self.cap, retry_after=retry_after)

    def exhausted(self, attempt: int) -> bool:
        """True when ``attempt`` attempts leave none to make."""
        return self.max_attempts is not None and attempt >= self.max_attempts
