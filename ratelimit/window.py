"""The window algorithm, in Python (database and local backends); ``lua/acquire.lua`` is the
same algorithm for Redis and must stay in step with this module (the backend tests run the
same behaviour against all three).

Which algorithm, and why
========================
Limits here are "N requests per window" with windows from one second (Stripe) to 24 hours
(Salesforce), the promise is that **no window of that length ever holds more than N admitted
requests** (that is what providers count and ban for), and a denied request consumes nothing.

* **Sliding log** (one timestamp per request) is exact, but memory grows with the limit: a
  100,000-per-24 h Salesforce allocation is 100,000 sorted-set members per counter, and every
  decision trims and counts them.
* **Sliding-window counter** (previous fixed window weighted by overlap + current one) is O(1)
  but an *estimate*: if the previous window's requests were bunched at its end, the true
  sliding count exceeds the limit. It can over-admit, which is exactly what we must not do.
* **GCRA** is O(1) and exact for a rate, but it answers "N per window" with either no burst
  (requests spaced window/N apart — needless latency for page-by-page syncs) or a burst
  tolerance that lets up to ~2N through in one window.

We use a **bucketed sliding window**: each window is cut into ``B`` sub-buckets (30 by
default) holding counts, and a decision counts *every bucket that overlaps the window*,
including the oldest, partly expired one, in full. That sum is never smaller than the true
count of the sliding window, so the limit holds for every window, exactly as with a log —
the price is that capacity comes back one bucket late, worst case 1/(B+1) of the throughput
(3 % with 30 buckets) under sustained saturation. Memory is at most B+1 integers per counter,
whatever the limit or window, and the wait returned on a denial is exact: the moment enough
old buckets leave the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def bucket_width_ms(window_ms: int, buckets: int) -> int:
    return max(1, math.ceil(window_ms / max(1, buckets)))


def oldest_counted(now_ms: int, window_ms: int, width_ms: int) -> int:
    """Index of the oldest bucket overlapping the window (now - window, now]."""
    return (now_ms - window_ms) // width_ms


def live_counts(
    counts: Mapping[int, int], now_ms: int, window_ms: int, width_ms: int
) -> dict[int, int]:
    oldest = oldest_counted(now_ms, window_ms, width_ms)
    return {index: count for index, count in counts.items() if index >= oldest and count}


def wait_ms(
    live: Mapping[int, int], *, now_ms: int, limit: int, window_ms: int, width_ms: int, cost: int
) -> int:
    """Milliseconds until ``cost`` more fits under ``limit`` (0: it fits now).

    Bucket ``i`` stops being counted once ``(now - window) // width > i``, i.e. at
    ``(i + 1) * width + window``; buckets leave oldest first.
    """
    used = sum(live.values())
    if used + cost <= limit:
        return 0
    freed = 0
    for index in sorted(live):
        freed += live[index]
        if used - freed + cost <= limit:
            return (index + 1) * width_ms + window_ms - now_ms
    # Only reachable when cost exceeds the (adaptively lowered) limit: try again a window
    # later, when the multiplier may have recovered.
    return window_ms


def effective_limit(limit: int, multiplier: float, adaptive: bool) -> int:
    """The limit after the provider's feedback; never 0, so feedback keeps arriving."""
    if not adaptive:
        return limit
    return max(1, math.floor(limit * multiplier + 1e-9))
