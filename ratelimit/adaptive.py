"""From a provider's feedback to a change of the integration's effective limit.

The effective limit of the integration and operation levels is ``limit * multiplier``
(never below one request per window, so feedback keeps coming). The multiplier moves like
TCP's congestion window — decrease fast, recover slowly:

* a rate-limit response (429, GitHub's 403) halves it and blocks until ``Retry-After`` (or the
  quota's reset);
* a reported quota below ``LOW_WATER`` of its size pulls it toward ``fraction / LOW_WATER``
  (5 % left → half speed) until the quota's reset, when the quota says when that is (then
  the multiplier is whole again at once: the shortage ended with the window), and an
  exhausted quota blocks until its reset;
* a healthy response (plenty left, or no rate-limit headers at all) raises it by ``STEP``, so
  ten healthy answers bring a halved limit back to full.

Without feedback for ``CASTIEL_RATELIMIT_ADAPTIVE_TTL`` the state expires and the limit is
back to normal: an integration that stopped calling is not kept slow forever.
"""

from __future__ import annotations

from django.conf import settings

from castiel.http.limit_headers import ProviderSignal
from ratelimit.backends.base import Adjustment

LOW_WATER = 0.2
DECREASE = 0.5
STEP = 0.1
MINIMUM = 0.05


def adjustment_for(signal: ProviderSignal, *, multiplier: float) -> Adjustment | None:
    """The change ``signal`` calls for, or None when there is nothing to change.

    ``multiplier`` is the current value as last seen by this process; it only avoids a
    round trip for healthy answers when the limit is already whole.
    """
    unknown_reset = settings.CASTIEL_RATELIMIT_UNKNOWN_RESET_BLOCK
    quota = signal.quota
    block = signal.retry_after or 0.0
    if quota is not None and quota.remaining <= 0:
        block = max(block, quota.reset_after if quota.reset_after is not None else unknown_reset)
    if signal.side_quota_exhausted_for:
        block = max(block, signal.side_quota_exhausted_for)

    if signal.rate_limited:
        # "Retry-After: 0" means "now": only a rate limit that names no time at all blocks
        # for the quota's reset, or the default.
        if not block and signal.retry_after is None:
            block = quota.reset_after if quota and quota.reset_after else unknown_reset
        return Adjustment(scale=DECREASE, block=block, minimum=MINIMUM)
    if quota is not None and quota.fraction < LOW_WATER:
        target = max(MINIMUM, quota.fraction / LOW_WATER)
        # The slowdown ends when the quota resets, as the quota's shortage does.
        return Adjustment(
            target=target, step=STEP, block=block, minimum=MINIMUM, until=quota.reset_after or 0.0
        )
    if multiplier < 1.0 or block:
        return Adjustment(step=STEP if multiplier < 1.0 else 0.0, block=block, minimum=MINIMUM)
    return None
