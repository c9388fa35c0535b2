"""The integration-level default comes from the provider's own catalogue entry."""

import pytest

from ratelimit.catalogue import FALLBACK, integration_limit_for


@pytest.mark.parametrize(
    ("provider", "config", "limit", "window"),
    [
        ("github", {}, 5000, 3600),
        ("salesforce", {"instance_url": "https://x.my.salesforce.com"}, 100_000, 86_400),
        ("hubspot", {}, 100, 10),
        ("stripe", {}, 100, 1),
        ("stripe", {"mode": "test"}, 25, 1),
        ("generic_rest", {"base_url": "http://x"}, 300, 60),
    ],
)
def test_provider_limits_come_from_the_catalogue(provider, config, limit, window):
    default = integration_limit_for(provider, config)
    assert (default.limit, default.window) == (limit, window)
    assert default.source


def test_unknown_providers_get_the_conservative_fallback():
    assert integration_limit_for("no-such-provider") == FALLBACK
