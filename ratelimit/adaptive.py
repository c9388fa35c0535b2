"""From a provider's feedback to a change of the integration's effective limit.

The effective limit of the integration and operation levels is ``limit * multiplier``
(never below one request per window, so feedback keeps coming). The multiplier moves like
TCP's congestion window — decrease fast, recover slowly:

* a rate-limit response (429, GitHub's 403) halves it and blocks until ``Retry-After`` (or the
  quota's reset);
* a reported quota below ``LOW_WATER`` of its size that says when it resets is **paced**:
  each answer blocks the integration for ``reset / (remaining + 1)``, so what is left is
  spread evenly over the rest of its window and all of it is used inside that window; the
  multiplier is left alone. (Lowering it instead — the earlier design — cut the sliding
  window's limit below what the window had already admitted: a full stop until the window
  slid, with the quota's last fifth unused.) An exhausted quota blocks until its reset;
* a quota below ``LOW_WATER`` that does not say when it resets (Salesforce's rolling day,
  HubSpot's daily quota) pulls the multiplier toward ``fraction / LOW_WATER`` (5 % left →
  half speed);
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
    if quota is not None and quota.fraction < LOW_WATER and quota.reset_after:
        # What is left is spread evenly over the time until the reset, every request of it
        # inside the window; the limit itself is untouched (lowering it would stop outright
        # a window already used past the lowered limit, and leave the rest unused).
        pace = quota.reset_after / (quota.remaining + 1)
        return Adjustment(
            step=STEP if multiplier < 1.0 else 0.0, block=max(block, pace), minimum=MINIMUM
        )
    if quota is not None and quota.fraction < LOW_WATER:
        # No reset to spread toward (Salesforce's rolling day, HubSpot's daily quota).
        return Adjustment(
            target=max(MINIMUM, quota.fraction / LOW_WATER), step=STEP, block=block, minimum=MINIMUM
        )
    if multiplier < 1.0 or block:
        return Adjustment(step=STEP if multiplier < 1.0 else 0.0, block=block, minimum=MINIMUM)
    return None
