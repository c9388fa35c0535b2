"""HubSpot's rate-limit headers: ``X-HubSpot-RateLimit-*``.

``-Max``/``-Remaining`` with ``-Interval-Milliseconds`` (the 10 s burst window),
``-Secondly``/``-Secondly-Remaining`` (per second) and, for private-app tokens,
``-Daily``/``-Daily-Remaining`` (resets at midnight in the account's time zone, which the
headers do not say). Declared as ``PROVIDER.limit_headers``, so the rate limiter and the
adapter's pages read them the same way; the generic families still apply.
"""

from __future__ import annotations

from collections.abc import Mapping

from castiel.http.limit_headers import Quota, generic_quotas, header_float, header_int


def read(headers: Mapping[str, str], now: float) -> list[Quota]:
    quotas = generic_quotas(headers, now)
    interval_ms = header_float(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    for limit_name, remaining_name, reset in (
        (
            "x-hubspot-ratelimit-max",
            "x-hubspot-ratelimit-remaining",
            interval_ms / 1000 if interval_ms else None,
        ),
        ("x-hubspot-ratelimit-secondly", "x-hubspot-ratelimit-secondly-remaining", 1.0),
        ("x-hubspot-ratelimit-daily", "x-hubspot-ratelimit-daily-remaining", None),
    ):
        limit = header_int(headers.get(limit_name))
        remaining = header_int(headers.get(remaining_name))
        if limit is not None and remaining is not None:
            quotas.append(Quota(limit, remaining, reset, limit_name.rsplit("-", 1)[-1]))
    return quotas
