"""Provider feedback: each provider's documented examples, parsed and turned into the
adaptive change they call for. The URL above each example is where it is documented.

The generic families are read by ``castiel.http.limit_headers``; a provider's own headers by
the reader its catalogue entry declares (``integrations/providers/<slug>/limits.py``), as the
rate limiter and the adapters do."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from castiel.http import limit_headers
from integrations.providers import registry
from ratelimit import adaptive

READERS = {slug: registry.get(slug).limit_headers for slug in ("github", "salesforce", "hubspot")}


def parse(headers, *, provider: str | None = None, **kwargs):
    """The signal as the limiter reads it for an integration of ``provider`` (None: a
    provider without a reader of its own)."""
    return limit_headers.parse(headers, reader=READERS[provider] if provider else None, **kwargs)


pytestmark = pytest.mark.embedded


def at(http_date: str) -> float:
    return parsedate_to_datetime(http_date).timestamp()


# --- GitHub -----------------------------------------------------------------------------------


def test_github_healthy_response():
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    # ("Checking the status of your rate limit"; values from the documented 2013 example)
    now = at("Mon, 01 Jul 2013 17:27:06 GMT")
    signal = parse(
        {
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "56",
            "x-ratelimit-used": "4",
            "x-ratelimit-reset": "1372700873",
            "x-ratelimit-resource": "core",
        },
        now=now,
        provider="github",
    )
    assert (signal.quota.limit, signal.quota.remaining) == (60, 56)
    assert signal.quota.reset_after == 1372700873 - now
    assert not signal.rate_limited
    assert adaptive.adjustment_for(signal, multiplier=1.0) is None  # nothing to change
    recovering = adaptive.adjustment_for(signal, multiplier=0.5)
    assert recovering.step == adaptive.STEP and recovering.scale == 1.0


def test_github_403_with_rate_limit_headers_is_a_rate_limit_not_a_permission_error():
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    # ("Exceeding the rate limit": 403 or 429 with x-ratelimit-remaining: 0; wait for reset)
    now = at("Tue, 20 Aug 2013 14:50:41 GMT")
    signal = parse(
        {
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "60",
            "x-ratelimit-reset": "1377013266",
        },
        status=403,
        now=now,
        provider="github",
    )
    assert signal.rate_limited
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.scale == adaptive.DECREASE
    assert change.block == 1377013266 - now  # 3,025 s: until the documented reset


def test_github_secondary_limit_403_with_retry_after():
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    # ("If the retry-after response header is present, you should not retry ... until after
    # that many seconds has elapsed")
    signal = parse(
        {"retry-after": "60", "x-ratelimit-remaining": "4000", "x-ratelimit-limit": "5000"},
        status=403,
        provider="github",
    )
    assert signal.rate_limited and signal.retry_after == 60
    assert adaptive.adjustment_for(signal, multiplier=1.0).block == 60


def test_a_plain_github_403_is_not_a_rate_limit():
    signal = parse(
        {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999"},
        status=403,
        provider="github",
    )
    assert not signal.rate_limited
    assert adaptive.adjustment_for(signal, multiplier=1.0) is None


def test_github_exhausted_search_quota_blocks_without_scaling_the_core_limit():
    # x-ratelimit-resource names the quota the request counted against (same page).
    signal = parse(
        {
            "x-ratelimit-limit": "30",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "1700000045",
            "x-ratelimit-resource": "search",
        },
        now=1700000000,
        provider="github",
    )
    assert signal.quota is None
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.block == 45 and change.target is None and change.scale == 1.0


# --- Salesforce -------------------------------------------------------------------------------


def test_salesforce_api_usage():
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
    signal = parse({"Sforce-Limit-Info": "api-usage=18/5000"}, provider="salesforce")
    assert (signal.quota.limit, signal.quota.remaining) == (5000, 4982)
    assert adaptive.adjustment_for(signal, multiplier=1.0) is None


def test_salesforce_per_app_quota_is_the_tighter_one():
    # https://developer.salesforce.com/docs/atlas.en-us.200.0.api_rest.meta/api_rest/headers_api_usage.htm
    signal = parse(
        {
            "Sforce-Limit-Info": (
                "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
            )
        },
        provider="salesforce",
    )
    assert (signal.quota.limit, signal.quota.remaining) == (250, 233)


def test_salesforce_over_its_allocation_blocks_for_the_unknown_reset(settings):
    # https://developer.salesforce.com/docs/atlas.ja-jp.224.0.api_rest.meta/api_rest/headers_api_usage.htm
    # (an org bursting past its 24 h allocation; the rolling window has no reset time)
    settings.CASTIEL_RATELIMIT_UNKNOWN_RESET_BLOCK = 120
    signal = parse(
        {"Sforce-Limit-Info": "api-usage=110018/100000; api-bursts=1/750"}, provider="salesforce"
    )
    assert signal.quota.remaining == 0 and signal.quota.reset_after is None
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.block == 120
    assert change.target == adaptive.MINIMUM


def test_salesforce_nearly_used_allocation_slows_down_proportionally():
    # 10,018 of 100,000 used is healthy; 95,000 used (5 % left) halves the effective limit.
    # Header format: https://developer.salesforce.com/docs/atlas.ja-jp.246.0.api_rest.meta/api_rest/headers_api_usage.htm
    assert (
        adaptive.adjustment_for(
            parse({"Sforce-Limit-Info": "api-usage=10018/100000"}, provider="salesforce"),
            multiplier=1.0,
        )
        is None
    )
    change = adaptive.adjustment_for(
        parse({"Sforce-Limit-Info": "api-usage=95000/100000"}, provider="salesforce"),
        multiplier=1.0,
    )
    assert change.target == pytest.approx(0.25)
    assert change.block == 0


# --- HubSpot ----------------------------------------------------------------------------------


def test_hubspot_interval_headers():
    # https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details (header names;
    # values are the documented 100 requests per 10 s)
    signal = parse(
        {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Secondly": "10",
            "X-HubSpot-RateLimit-Secondly-Remaining": "3",
        },
        provider="hubspot",
    )
    assert signal.quota.remaining == 0 and signal.quota.reset_after == 10.0
    assert adaptive.adjustment_for(signal, multiplier=1.0).block == 10.0


def test_hubspot_daily_quota_running_low():
    # https://developers.hubspot.com/changelog/2018-11-06-rate-limit-information-headers-will-be-included-in-http-responses
    signal = parse(
        {
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "12500",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "97",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        },
        provider="hubspot",
    )
    assert signal.quota.name == "daily" and signal.quota.fraction == 0.05
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.target == pytest.approx(0.25) and change.block == 0


# --- Shopify ----------------------------------------------------------------------------------


def test_shopify_call_limit_bucket():
    # https://shopify.dev/docs/api/admin-rest/usage/rate-limits
    healthy = parse({"X-Shopify-Shop-Api-Call-Limit": "32/40"})
    assert (healthy.quota.limit, healthy.quota.remaining) == (40, 8)
    assert adaptive.adjustment_for(healthy, multiplier=1.0) is None  # 20 % left: not low yet
    full = parse({"X-Shopify-Shop-Api-Call-Limit": "40/40"})
    assert adaptive.adjustment_for(full, multiplier=1.0).block > 0


def test_shopify_429_with_retry_after():
    # https://shopify.dev/docs/api/admin-rest/usage/rate-limits ("Retry-After: 2.0")
    signal = parse({"X-Shopify-Shop-Api-Call-Limit": "40/40", "Retry-After": "2.0"}, status=429)
    assert signal.rate_limited and signal.retry_after == 2.0
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.scale == adaptive.DECREASE and change.block == 2.0


# --- IETF RateLimit / RateLimit-Policy --------------------------------------------------------


def test_ietf_structured_fields_draft_10():
    # https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-ratelimit-headers-10 §3.2, §4.2
    signal = parse({"RateLimit-Policy": '"default";q=100;w=10', "RateLimit": '"default";r=50;t=30'})
    assert (signal.quota.limit, signal.quota.remaining, signal.quota.reset_after) == (100, 50, 30)
    exhausted = parse(
        {
            "RateLimit-Policy": '"permin";q=50;w=60,"perhr";q=1000;w=3600',
            "RateLimit": '"permin";r=0;t=7',
        }
    )
    assert exhausted.quota.name == "permin"
    assert adaptive.adjustment_for(exhausted, multiplier=1.0).block == 7


def test_ietf_dictionary_draft_07():
    # https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-ratelimit-headers-07 §3.5
    signal = parse(
        {"RateLimit-Policy": "100;w=10", "RateLimit": "limit=100, remaining=50, reset=5"}
    )
    assert (signal.quota.limit, signal.quota.remaining, signal.quota.reset_after) == (100, 50, 5)
    # §4: "RateLimit: limit=10, remaining=0, reset=10" on a redirect: wait 10 s.
    blocked = parse({"RateLimit": "limit=10, remaining=0, reset=10"}, status=301)
    assert adaptive.adjustment_for(blocked, multiplier=1.0).block == 10


def test_ietf_separate_fields_with_retry_after_date():
    # https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-ratelimit-headers-01 §8.1
    now = at("Mon, 05 Aug 2019 09:27:00 GMT")
    signal = parse(
        {
            "Date": "Mon, 05 Aug 2019 09:27:00 GMT",
            "Retry-After": "Mon, 05 Aug 2019 09:27:05 GMT",
            "RateLimit-Reset": "5",
            "RateLimit-Limit": "100",
            "Ratelimit-Remaining": "0",
        },
        status=429,
        now=now,
    )
    assert signal.retry_after == 5.0
    assert (signal.quota.limit, signal.quota.remaining) == (100, 0)
    assert adaptive.adjustment_for(signal, multiplier=1.0).block == 5.0
    # §8.2.1: a limit followed by its policy ("100, 100;w=60"), 99 left.
    listed = parse(
        {"RateLimit-Limit": "100, 100;w=60", "Ratelimit-Remaining": "99", "Ratelimit-Reset": "50"}
    )
    assert (listed.quota.limit, listed.quota.remaining) == (100, 99)


# --- Retry-After in both forms ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        # https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
        ("120", 120.0),
        ("Fri, 31 Dec 1999 23:59:59 GMT", 3600.0),
    ],
)
def test_retry_after_seconds_and_http_date(value, expected):
    now = at("Fri, 31 Dec 1999 22:59:59 GMT")
    signal = parse({"Retry-After": value}, status=429, now=now)
    assert signal.retry_after == expected
    assert adaptive.adjustment_for(signal, multiplier=1.0).block == expected


def test_503_with_retry_after_blocks_without_halving_the_limit():
    signal = parse({"Retry-After": "30"}, status=503)
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.block == 30 and change.scale == 1.0


@pytest.mark.parametrize("provider", [None, *READERS])
def test_malformed_headers_are_ignored(provider):
    signal = parse(
        {
            "x-ratelimit-limit": "lots",
            "x-ratelimit-remaining": "",
            "x-ratelimit-resource": "search",
            "Sforce-Limit-Info": "api-usage=/",
            "X-HubSpot-RateLimit-Max": "many",
            "X-HubSpot-RateLimit-Remaining": "7",
            "X-Shopify-Shop-Api-Call-Limit": "n/a",
            "RateLimit": "garbage;;;",
            "Retry-After": "soon",
        },
        status=200,
        provider=provider,
    )
    assert not signal.has_information


# --- whose headers are read where -------------------------------------------------------------


def test_provider_headers_are_read_only_for_that_provider():
    """Salesforce's and HubSpot's headers mean nothing to another provider's integration."""
    headers = {
        "Sforce-Limit-Info": "api-usage=99990/100000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "1",
    }
    assert parse(headers).quota is None
    assert parse(headers, provider="salesforce").quota.name == "api-usage"
    assert parse(headers, provider="hubspot").quota.name == "max"


def test_the_generic_families_still_apply_to_a_provider_with_its_own_reader():
    signal = parse(
        {"Sforce-Limit-Info": "api-usage=10/100000", "RateLimit": "limit=10, remaining=0, reset=9"},
        provider="salesforce",
    )
    assert signal.quota.name == "ratelimit" and signal.quota.reset_after == 9


def test_githubs_resource_rule_is_githubs():
    """Without GitHub's reader an x-ratelimit-resource is just a quota's name."""
    headers = {
        "x-ratelimit-limit": "30",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1700000045",
        "x-ratelimit-resource": "search",
    }
    generic = parse(headers, now=1700000000)
    assert generic.quota.name == "search" and generic.side_quota_exhausted_for is None
    github = parse(headers, now=1700000000, provider="github")
    assert github.quota is None and github.side_quota_exhausted_for == 45
    core = parse({**headers, "x-ratelimit-resource": "core"}, now=1700000000, provider="github")
    assert core.quota.name == "core" and core.quota.remaining == 0


def test_an_exhausted_side_quota_without_a_reset_blocks_a_minute():
    headers = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0"}
    signal = parse({**headers, "x-ratelimit-resource": "graphql"}, provider="github")
    assert signal.side_quota_exhausted_for == limit_headers.SIDE_QUOTA_WAIT


def test_one_quota_told_twice_resets_when_its_most_precise_header_says():
    """Discord-style ``X-RateLimit-Reset`` carries the millisecond; the IETF delta beside it is
    whole seconds (at least 1). Both tell the same exhausted quota: waiting for the coarse one
    would idle up to a second, the whole of a one-second window."""
    now = 1700000000.0
    both = {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1700000000.250",
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
    }
    assert parse(both, now=now).quota.reset_after == pytest.approx(0.25)
    assert adaptive.adjustment_for(parse(both, now=now), multiplier=1.0).block == pytest.approx(
        0.25
    )
    # Not yet exhausted, the pacing spreads the last request toward the precise reset too.
    low = {**both, "X-RateLimit-Remaining": "1", "RateLimit-Remaining": "1"}
    assert parse(low, now=now).quota.reset_after == pytest.approx(0.25)
    assert adaptive.adjustment_for(parse(low, now=now), multiplier=1.0).block == pytest.approx(
        0.125
    )
    # Told in whole seconds twice, the later rounding is kept (the cautious reading).
    coarse = {**both, "X-RateLimit-Reset": "1700000002"}
    assert parse(coarse, now=now).quota.reset_after == 2
    # Two quotas (different sizes) both exhausted: the one that resets last, however precise
    # the other.
    two = {**both, "RateLimit-Limit": "600", "RateLimit-Reset": "30"}
    assert parse(two, now=now).quota.reset_after == 30


def test_a_low_quota_that_says_its_reset_is_paced_not_scaled():
    """9 of 100 left, reset in 5 s: one request per half second from now on uses the nine
    inside the window; the limit itself stays whole."""
    signal = parse({"RateLimit-Policy": "100;w=10", "RateLimit": "limit=100, remaining=9, reset=5"})
    change = adaptive.adjustment_for(signal, multiplier=1.0)
    assert change.target is None and change.scale == 1.0 and change.step == 0
    assert change.block == pytest.approx(0.5)
    # A multiplier lowered by an earlier refusal still recovers on this healthy answer.
    assert adaptive.adjustment_for(signal, multiplier=0.5).step == adaptive.STEP


def test_remaining_without_a_limit_counts_only_when_exhausted():
    """Some APIs send ``X-RateLimit-Remaining``/``-Reset`` without ``-Limit``: with no size
    to compare with, only an exhausted quota means anything — it blocks until its reset."""
    exhausted = parse({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"})
    assert exhausted.quota.remaining == 0 and exhausted.quota.reset_after == 3
    assert adaptive.adjustment_for(exhausted, multiplier=1.0).block == 3
    assert adaptive.adjustment_for(parse({"X-RateLimit-Remaining": "2"}), multiplier=1.0) is None
