"""Backoff for retries that are scheduled for later (outbox, sync, webhooks).

In-process retries use tenacity; work that is re-queued needs the delay as a number to store
in ``next_attempt_at``, which is all this computes: exponential backoff with full jitter
(AWS Architecture Blog, "Exponential Backoff And Jitter"), never shorter than the provider's
``Retry-After``.
"""

from __future__ import annotations

import random


def full_jitter_delay(
    attempt: int, *, base: float = 1.0, cap: float = 600.0, retry_after: float | None = None
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
