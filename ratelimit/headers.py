"""Provider rate-limit feedback, read from response headers into one :class:`ProviderSignal`.

Understood header families (tests/ratelimit/test_headers.py replays each provider's
documented examples):

* GitHub ``x-ratelimit-limit/-remaining/-reset`` (reset = UTC epoch seconds) and
  ``x-ratelimit-resource`` — also the de facto ``X-RateLimit-*`` of many APIs, whose reset is
  either epoch seconds or a delta (told apart by size);
* Salesforce ``Sforce-Limit-Info: api-usage=N/M`` (a rolling 24 h allocation, no reset time);
* HubSpot ``X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds``, ``-Secondly(-Remaining)``
  and ``-Daily(-Remaining)``;
* Shopify ``X-Shopify-Shop-Api-Call-Limit: used/bucket`` (leaky bucket);
* IETF ``RateLimit`` / ``RateLimit-Policy`` in both published shapes (draft-07's dictionary
  ``limit=, remaining=, reset=`` and draft-08+'s structured list ``"name";r=;t=`` with
  ``"name";q=;w=``), and the older ``RateLimit-Limit/-Remaining/-Reset``;
* ``Retry-After`` as delta-seconds or an HTTP date (``castiel.http.errors.parse_retry_after``).

When several quotas are reported (HubSpot's interval and daily ones, several IETF policies),
the signal keeps the tightest: the lowest remaining fraction, and the latest reset among the
exhausted ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from castiel.http.errors import is_rate_limited, parse_retry_after

# x-ratelimit-reset values above this are UTC epoch seconds, below it deltas (no API resets a
# quota 30 years from now).
_EPOCH_THRESHOLD = 10**9
# GitHub resources other than "core" (search, graphql, code_search …) have their own small
# quotas: their remaining count says nothing about the integration's main limit.
GITHUB_MAIN_RESOURCES = {"core", ""}


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_after: float | None  # seconds until quota comes back (None: not said)
    name: str = ""

    @property
    def fraction(self) -> float:
        return max(0.0, self.remaining / self.limit) if self.limit > 0 else 1.0


@dataclass(frozen=True)
class ProviderSignal:
    # The tightest quota the provider reported for the integration's main limit.
    quota: Quota | None = None
    # Seconds the provider asked us to wait (Retry-After, or the reset of an exhausted quota).
    retry_after: float | None = None
    # The response itself is a rate-limit rejection (429, or GitHub's 403 with its headers).
    rate_limited: bool = False
    # A quota we do not scale by (e.g. GitHub "search") is exhausted: block, do not scale.
    side_quota_exhausted_for: float | None = None
    source: str = ""

    @property
    def has_information(self) -> bool:
        return (
            self.quota is not None
            or self.retry_after is not None
            or self.rate_limited
            or self.side_quota_exhausted_for is not None
        )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _reset_seconds(value: str | None, now: float) -> float | None:
    number = _float(value)
    if number is None:
        return None
    if number > _EPOCH_THRESHOLD:
        return max(0.0, number - now)
    return max(0.0, number)


# --- one parser per header family: each returns the quotas it found -------------------------


def _github_style(headers: Mapping[str, str], now: float) -> tuple[list[Quota], Quota | None]:
    """(main quotas, side quota) from ``x-ratelimit-*``."""
    limit = _int(headers.get("x-ratelimit-limit"))
    remaining = _int(headers.get("x-ratelimit-remaining"))
    if limit is None or remaining is None:
        return [], None
    quota = Quota(
        limit=limit,
        remaining=remaining,
        reset_after=_reset_seconds(headers.get("x-ratelimit-reset"), now),
        name=headers.get("x-ratelimit-resource", ""),
    )
    if quota.name.strip().lower() not in GITHUB_MAIN_RESOURCES:
        return [], quota
    return [quota], None


_SFORCE_PAIR = re.compile(r"(?P<name>[\w-]+)=(?P<used>\d+)/(?P<limit>\d+)")


def _salesforce(headers: Mapping[str, str], now: float) -> list[Quota]:
    value = headers.get("sforce-limit-info")
    if not value:
        return []
    quotas = []
    for match in _SFORCE_PAIR.finditer(value):
        if match["name"] not in ("api-usage", "per-app-api-usage"):
            continue
        limit, used = int(match["limit"]), int(match["used"])
        # api-usage may exceed the allocation (Salesforce lets orgs burst past it).
        quotas.append(Quota(limit, max(0, limit - used), None, match["name"]))
    return quotas


def _hubspot(headers: Mapping[str, str], now: float) -> list[Quota]:
    quotas = []
    interval_ms = _float(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    for limit_name, remaining_name, reset in (
        (
            "x-hubspot-ratelimit-max",
            "x-hubspot-ratelimit-remaining",
            interval_ms / 1000 if interval_ms else None,
        ),
        ("x-hubspot-ratelimit-secondly", "x-hubspot-ratelimit-secondly-remaining", 1.0),
        # The daily quota resets at midnight in the account's time zone, which the headers
        # do not say.
        ("x-hubspot-ratelimit-daily", "x-hubspot-ratelimit-daily-remaining", None),
    ):
        limit = _int(headers.get(limit_name))
        remaining = _int(headers.get(remaining_name))
        if limit is not None and remaining is not None:
            quotas.append(Quota(limit, remaining, reset, limit_name.rsplit("-", 1)[-1]))
    return quotas


# Standard-plan leak rate of Shopify's REST bucket: a full bucket has room again after 1/2 s;
# we wait a full second to leave room for the other apps of the shop.
SHOPIFY_FULL_BUCKET_WAIT = 1.0


def _shopify(headers: Mapping[str, str], now: float) -> list[Quota]:
    value = headers.get("x-shopify-shop-api-call-limit")
    if not value or "/" not in value:
        return []
    used, _, size = value.partition("/")
    used_n, size_n = _int(used), _int(size)
    if used_n is None or not size_n:
        return []
    remaining = max(0, size_n - used_n)
    return [Quota(size_n, remaining, SHOPIFY_FULL_BUCKET_WAIT if remaining == 0 else None)]


_SF_ITEM = re.compile(r'\s*(?:"(?P<name>[^"]*)"|(?P<token>[^;,\s]+))(?P<params>(?:;[^,]*)?)')


def _sf_params(params: str) -> dict[str, str]:
    result = {}
    for part in params.split(";"):
        if "=" in part:
            key, _, value = part.partition("=")
            result[key.strip().lower()] = value.strip().strip('"')
    return result


def _ietf(headers: Mapping[str, str], now: float) -> list[Quota]:
    quotas = []
    policy_value = headers.get("ratelimit-policy", "")
    policies: dict[str, dict[str, str]] = {}
    unnamed_policies: list[dict[str, str]] = []
    for match in _SF_ITEM.finditer(policy_value):
        params = _sf_params(match["params"] or "")
        if match["name"] is not None:
            policies[match["name"]] = params
        elif match["token"]:
            # draft-07: "100;w=10" — the item is the quota itself.
            unnamed_policies.append({"q": match["token"], **params})
    value = headers.get("ratelimit", "")
    if value and re.search(r"(^|[,\s])limit\s*=", value):
        # draft-07 dictionary: RateLimit: limit=100, remaining=50, reset=5
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in value.split(","))
        }
        limit, remaining = _int(fields.get("limit")), _int(fields.get("remaining"))
        if limit is not None and remaining is not None:
            quotas.append(Quota(limit, remaining, _float(fields.get("reset")), "ratelimit"))
    elif value:
        # draft-08+: RateLimit: "default";r=50;t=30 with RateLimit-Policy: "default";q=100;w=10
        for match in _SF_ITEM.finditer(value):
            params = _sf_params(match["params"] or "")
            remaining = _int(params.get("r"))
            name = match["name"] if match["name"] is not None else (match["token"] or "")
            quota_value = _int(policies.get(name, {}).get("q"))
            if remaining is None:
                continue
            if quota_value is None:
                # No policy to compare with: only an exhausted quota is meaningful.
                quota_value = max(remaining, 1)
            reset = _float(params.get("t"))
            quotas.append(Quota(quota_value, remaining, reset, name))
    # draft-06 and earlier: separate fields; the limit may be followed by its policies
    # ("100, 100;w=60"): the first item is the expiring limit.
    limit = _int(re.split(r"[,;]", headers.get("ratelimit-limit", ""))[0] or None)
    remaining = _int(headers.get("ratelimit-remaining"))
    if limit is not None and remaining is not None:
        quotas.append(
            Quota(limit, remaining, _reset_seconds(headers.get("ratelimit-reset"), now), "")
        )
    return quotas


def _tightest(quotas: list[Quota]) -> Quota | None:
    if not quotas:
        return None
    exhausted = [q for q in quotas if q.remaining <= 0]
    if exhausted:
        # The one that keeps us waiting longest (an unknown reset counts as longest).
        return max(
            exhausted, key=lambda q: float("inf") if q.reset_after is None else q.reset_after
        )
    return min(quotas, key=lambda q: q.fraction)


def parse(
    headers: Mapping[str, str], *, status: int = 200, now: float | None = None
) -> ProviderSignal:
    """The provider's rate-limit feedback in ``headers`` (any case) of a response."""
    now = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    main, side = _github_style(lowered, now)
    quotas = main + _salesforce(lowered, now) + _hubspot(lowered, now) + _shopify(lowered, now)
    quotas += _ietf(lowered, now)
    quota = _tightest(quotas)
    retry_after = None
    if status in (429, 403, 503) or "retry-after" in lowered:
        retry_after = parse_retry_after(lowered.get("retry-after"), now=now)
    rate_limited = status == 429 or (
        status == 403 and (lowered.get("x-ratelimit-remaining") == "0" or "retry-after" in lowered)
    )
    side_block = None
    if side is not None and side.remaining <= 0:
        side_block = side.reset_after if side.reset_after is not None else 60.0
    return ProviderSignal(
        quota=quota,
        retry_after=retry_after,
        rate_limited=rate_limited,
        side_quota_exhausted_for=side_block,
        source=quota.name if quota else "",
    )


def parse_response(response) -> ProviderSignal:
    """:func:`parse` for a ``requests.Response``."""
    signal = parse(response.headers, status=response.status_code)
    # Keep the classification in one place: the outbound error layer decides what a
    # rate-limited response is; this must agree with it.
    if not signal.rate_limited and is_rate_limited(response):
        signal = ProviderSignal(
            quota=signal.quota,
            retry_after=signal.retry_after,
            rate_limited=True,
            side_quota_exhausted_for=signal.side_quota_exhausted_for,
            source=signal.source,
        )
    return signal
