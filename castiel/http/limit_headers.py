"""Rate-limit feedback read from a response's headers into one :class:`ProviderSignal`.

Any HTTP client can read these; the rate limiter (``ratelimit``) and the provider adapters
(``integrations``) both do, so they agree on every dialect. The generic families, understood
for every response (tests/ratelimit/test_headers.py replays the documented examples):

* ``X-RateLimit-Limit/-Remaining/-Reset`` — GitHub's and the de facto standard of many APIs,
  whose reset is either UTC epoch seconds or a delta (told apart by size);
* Shopify ``X-Shopify-Shop-Api-Call-Limit: used/bucket`` (a leaky bucket; Shopify has no
  provider folder);
* IETF ``RateLimit`` / ``RateLimit-Policy`` in both published shapes (draft-07's dictionary
  ``limit=, remaining=, reset=`` and draft-08+'s structured list ``"name";r=;t=`` with
  ``"name";q=;w=``), and the older ``RateLimit-Limit/-Remaining/-Reset``;
* ``Retry-After`` as delta-seconds or an HTTP date (``castiel.http.errors.parse_retry_after``).

A provider's own headers are read in its folder: its catalogue entry names a
:data:`LimitReader` (``integrations/providers/<slug>/limits.py``: Salesforce's
``Sforce-Limit-Info``, HubSpot's ``X-HubSpot-RateLimit-*``, GitHub's ``x-ratelimit-resource``
rule). A reader returns every quota the response reports — usually :func:`generic_quotas` plus
its own — and marks those the integration's main limit must not be scaled by (``side``).

When several quotas are reported (HubSpot's interval and daily ones, several IETF policies),
the signal keeps the tightest: the lowest remaining fraction, and the latest reset among the
exhausted ones. One quota is often told twice (the sandbox, like many APIs, sends both
``X-RateLimit-*`` and ``RateLimit-*`` with the same limit): its reset is then the most precise
of the two — a delta rounded to whole seconds is up to a second late for a quota whose other
header says the millisecond, and on a one-second window that second is the whole window.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from castiel.http.errors import is_rate_limited, parse_retry_after

# x-ratelimit-reset values above this are UTC epoch seconds, below it deltas (no API resets a
# quota 30 years from now).
_EPOCH_THRESHOLD = 10**9


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_after: float | None  # seconds until quota comes back (None: not said)
    name: str = ""
    # A quota the integration's main limit is not scaled by (GitHub's "search" resource):
    # exhausted, it only blocks until its reset.
    side: bool = False
    # The precision of reset_after as the header said it, in seconds (1.0: whole seconds).
    reset_resolution: float = 1.0

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
    # A side quota (e.g. GitHub "search") is exhausted: block this long, do not scale.
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


# Reads the quotas a response reports from its lower-cased headers at time ``now``.
LimitReader = Callable[[Mapping[str, str], float], list[Quota]]


def header_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def header_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def resolution(value: str | None) -> float:
    """The precision of a number of seconds as written: ``"12"`` → 1.0, ``"12.250"`` → 0.001."""
    _, dot, decimals = (value or "").strip().partition(".")
    return 10.0 ** -len(decimals) if dot and decimals.isdigit() else 1.0


def reset_seconds(value: str | None, now: float) -> float | None:
    """Seconds until a reset given as UTC epoch seconds or as a delta (told apart by size)."""
    number = header_float(value)
    if number is None:
        return None
    if number > _EPOCH_THRESHOLD:
        return max(0.0, number - now)
    return max(0.0, number)


# --- one reader per header family: each returns the quotas it found --------------------------


def x_ratelimit(headers: Mapping[str, str], now: float) -> list[Quota]:
    """``x-ratelimit-limit/-remaining/-reset``, named after ``x-ratelimit-resource`` when the
    provider says which quota the request counted against."""
    limit = header_int(headers.get("x-ratelimit-limit"))
    remaining = header_int(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        return []
    if limit is None:
        # No size to compare with (some APIs send only -Remaining/-Reset): only an exhausted
        # quota is meaningful, as with an IETF quota without its policy.
        limit = max(remaining, 1)
    reset = headers.get("x-ratelimit-reset")
    return [
        Quota(
            limit=limit,
            remaining=remaining,
            reset_after=reset_seconds(reset, now),
            name=headers.get("x-ratelimit-resource", ""),
            reset_resolution=resolution(reset),
        )
    ]


# Standard-plan leak rate of Shopify's REST bucket: a full bucket has room again after 1/2 s;
# we wait a full second to leave room for the other apps of the shop.
SHOPIFY_FULL_BUCKET_WAIT = 1.0


def shopify(headers: Mapping[str, str], now: float) -> list[Quota]:
    value = headers.get("x-shopify-shop-api-call-limit")
    if not value or "/" not in value:
        return []
    used, _, size = value.partition("/")
    used_n, size_n = header_int(used), header_int(size)
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


def ietf(headers: Mapping[str, str], now: float) -> list[Quota]:
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
        limit, remaining = header_int(fields.get("limit")), header_int(fields.get("remaining"))
        if limit is not None and remaining is not None:
            reset = fields.get("reset")
            quotas.append(
                Quota(
                    limit,
                    remaining,
                    header_float(reset),
                    "ratelimit",
                    reset_resolution=resolution(reset),
                )
            )
    elif value:
        # draft-08+: RateLimit: "default";r=50;t=30 with RateLimit-Policy: "default";q=100;w=10
        for match in _SF_ITEM.finditer(value):
            params = _sf_params(match["params"] or "")
            remaining = header_int(params.get("r"))
            name = match["name"] if match["name"] is not None else (match["token"] or "")
            quota_value = header_int(policies.get(name, {}).get("q"))
            if remaining is None:
                continue
            if quota_value is None:
                # No policy to compare with: only an exhausted quota is meaningful.
                quota_value = max(remaining, 1)
            reset = params.get("t")
            quotas.append(
                Quota(
                    quota_value,
                    remaining,
                    header_float(reset),
                    name,
                    reset_resolution=resolution(reset),
                )
            )
    # draft-06 and earlier: separate fields; the limit may be followed by its policies
    # ("100, 100;w=60"): the first item is the expiring limit.
    limit = header_int(re.split(r"[,;]", headers.get("ratelimit-limit", ""))[0] or None)
    remaining = header_int(headers.get("ratelimit-remaining"))
    if limit is not None and remaining is not None:
        reset = headers.get("ratelimit-reset")
        quotas.append(
            Quota(limit, remaining, reset_seconds(reset, now), reset_resolution=resolution(reset))
        )
    return quotas


def generic_quotas(headers: Mapping[str, str], now: float) -> list[Quota]:
    """Every quota the generic families report: the reader of a provider without its own."""
    return x_ratelimit(headers, now) + shopify(headers, now) + ietf(headers, now)


def _tightest(quotas: list[Quota]) -> Quota | None:
    told = _once_each(quotas)
    if not told:
        return None
    exhausted = [q for q in told if q.remaining <= 0]
    if exhausted:
        # The one that keeps us waiting longest (an unknown reset counts as longest).
        return max(exhausted, key=_wait)
    return min(told, key=lambda q: q.fraction)


def _once_each(quotas: list[Quota]) -> list[Quota]:
    """Each quota once (told apart by size and remaining), as its most precise header tells
    it."""
    same: dict[tuple[int, int], list[Quota]] = {}
    for q in quotas:
        same.setdefault((q.limit, max(0, q.remaining)), []).append(q)
    return [min(group, key=_precision_then_latest) for group in same.values()]


def _wait(q: Quota) -> float:
    return float("inf") if q.reset_after is None else q.reset_after


def _precision_then_latest(q: Quota) -> tuple[bool, float, float]:
    # A said reset before an unknown one, the finest resolution first; at equal precision
    # the latest (the cautious reading of two roundings of one instant).
    return (q.reset_after is None, q.reset_resolution, -_wait(q))


# How long an exhausted side quota that does not say when it resets blocks.
SIDE_QUOTA_WAIT = 60.0


def parse(
    headers: Mapping[str, str],
    *,
    status: int = 200,
    now: float | None = None,
    reader: LimitReader | None = None,
) -> ProviderSignal:
    """The rate-limit feedback in ``headers`` (any case) of a response, the quotas read by the
    provider's ``reader`` (default: :func:`generic_quotas`)."""
    now = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    quotas = (reader or generic_quotas)(lowered, now)
    quota = _tightest([q for q in quotas if not q.side])
    retry_after = None
    if status in (429, 403, 503) or "retry-after" in lowered:
        retry_after = parse_retry_after(lowered.get("retry-after"), now=now)
    rate_limited = status == 429 or (
        status == 403 and (lowered.get("x-ratelimit-remaining") == "0" or "retry-after" in lowered)
    )
    side_waits = [
        SIDE_QUOTA_WAIT if q.reset_after is None else q.reset_after
        for q in quotas
        if q.side and q.remaining <= 0
    ]
    return ProviderSignal(
        quota=quota,
        retry_after=retry_after,
        rate_limited=rate_limited,
        side_quota_exhausted_for=max(side_waits) if side_waits else None,
        source=quota.name if quota else "",
    )


def parse_response(response, *, reader: LimitReader | None = None) -> ProviderSignal:
    """:func:`parse` for a ``requests.Response``."""
    signal = parse(response.headers, status=response.status_code, reader=reader)
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
