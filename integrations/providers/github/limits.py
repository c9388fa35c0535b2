"""GitHub's rate-limit headers: ``x-ratelimit-limit/-remaining/-used/-reset`` and
``x-ratelimit-resource``.

The quota a response reports is the one of the resource the request counted against.
Resources other than ``core`` (``search``, ``graphql``, ``code_search`` …) have their own small
quotas: their remaining count says nothing about the integration's main limit, so they are
side quotas — exhausted, they block until their reset without slowing everything else down.
Declared as ``PROVIDER.limit_headers``; the other generic families still apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from castiel.http.limit_headers import Quota, ietf, shopify, x_ratelimit

# The integration's main limit ("": the response names no resource).
MAIN_RESOURCES = {"core", ""}


def read(headers: Mapping[str, str], now: float) -> list[Quota]:
    """The generic families, ``x-ratelimit-*`` read with GitHub's resource rule."""
    quotas = x_ratelimit(headers, now)
    if headers.get("x-ratelimit-resource", "").strip().lower() not in MAIN_RESOURCES:
        quotas = [dataclasses.replace(q, side=True) for q in quotas]
    return quotas + shopify(headers, now) + ietf(headers, now)
