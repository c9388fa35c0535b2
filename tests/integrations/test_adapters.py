"""The adapter contract and the generic REST adapter against real json-server and stubs."""

from __future__ import annotations

import pytest
import requests

from castiel.http import OutboundClient
from integrations.adapters import (
    AdapterError,
    FieldMapping,
    InvalidCursor,
    MalformedPage,
    MappingError,
    RateLimitInfo,
    adapter_for,
)
from integrations.adapters.mapping import RecordMappingError
from integrations.adapters.normalize import normalize_domain, normalize_email, normalize_phone
from integrations.models import Integration
from integrations.providers import registry

ROWS = [{"id": str(i), "n": i, "updatedAt": f"2024-01-01T00:00:{i:02d}.000Z"} for i in range(1, 26)]


def adapter(base_url, **config):
    """An adapter over a plain client: these tests are about paging, not auth or limits
    (the integration is unsaved, so it has no credential and no rate-limit policy)."""
    integration = Integration(
        provider="generic_rest", name="x", config={"base_url": base_url, **config}
    )
    client = OutboundClient(provider="generic_rest", base_url=base_url)
    return adapter_for(integration, "contacts", client=client)


def walk(adapter, since=None, limit=50):
    pages, cursor = [], None
    for _ in range(limit):
        page = adapter.fetch_page(cursor, since=since)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


@pytest.mark.node
def test_page_numbers_with_json_server_1(json_server):
    server = json_server("1", {"contacts": ROWS})
    a = adapter(
        server.url,
        records_path="data",
        params={"_sort": "id"},
        updated_at_field="updatedAt",
        since_param="updatedAt:gte",
        pagination={
            "style": "page",
            "page_param": "_page",
            "size_param": "_per_page",
            "next_page_path": "next",
            "page_size": 10,
        },
    )
    pages = walk(a)
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert [p.next_cursor for p in pages] == [{"page": 2}, {"page": 3}, None]
    recent = walk(a, since="2024-01-01T00:00:20.000Z")
    assert sorted(int(r["id"]) for p in recent for r in p.records) == list(range(20, 26))


@pytest.mark.node
def test_link_headers_and_since_filter_with_json_server_017(json_server):
    server = json_server("017", {"contacts": ROWS})
    a = adapter(
        server.url,
        updated_at_field="updatedAt",
        since_param="updatedAt_gte",
        pagination={
            "style": "link",
            "page_param": "_page",
            "size_param": "_limit",
            "page_size": 10,
        },
    )
    pages = walk(a)
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert pages[0].next_cursor["url"].startswith(server.url)
    recent = walk(a, since="2024-01-01T00:00:20.000Z")
    assert sorted(int(r["id"]) for p in recent for r in p.records) == list(range(20, 26))


@pytest.mark.node
def test_since_keyset_paging_never_skips_records_sharing_a_timestamp(json_server):
    rows = [{"id": f"{i:02d}", "updatedAt": f"2024-01-01T00:00:{i // 4:02d}Z"} for i in range(30)]
    server = json_server("017", {"contacts": rows})
    a = adapter(
        server.url,
        updated_at_field="updatedAt",
        params={"_sort": "updatedAt,id"},
        pagination={
            "style": "since",
            "since_param": "updatedAt_gte",
            "size_param": "_limit",
            "page_size": 5,
        },
    )
    ids = [r["id"] for p in walk(a) for r in p.records]
    assert sorted(ids) == [r["id"] for r in rows] and len(ids) == len(set(ids))


@pytest.mark.node
def test_offset_style_and_cursor_validation(json_server):
    server = json_server("017", {"contacts": ROWS})
    a = adapter(
        server.url,
        params={"_sort": "id"},
        pagination={
            "style": "offset",
            "offset_param": "_start",
            "size_param": "_limit",
            "page_size": 10,
        },
    )
    assert sum(len(p.records) for p in walk(a)) == 25
    with pytest.raises(InvalidCursor):
        a.fetch_page({"offset": "ten"})
    with pytest.raises(InvalidCursor):
        adapter(server.url, pagination={"style": "link"}).validate_cursor(
            {"url": "http://evil.example/x"}
        )


def test_non_json_and_wrong_shapes_are_malformed(http_server):
    @http_server.route("GET", "/html")
    def html(request):
        return 200, {"Content-Type": "text/html"}, "<html>oops</html>"

    @http_server.route("GET", "/object")
    def obj(request):
        return 200, {}, {"data": {"not": "a list"}}

    with pytest.raises(MalformedPage, match="non-JSON"):
        adapter(http_server.url, list_path="/html", pagination={"style": "none"}).fetch_page(None)
    with pytest.raises(MalformedPage, match="expected a list"):
        adapter(
            http_server.url, list_path="/object", records_path="data", pagination={"style": "none"}
        ).fetch_page(None)


def test_rate_limit_feedback_is_read_from_any_dialect():
    assert RateLimitInfo.from_headers(
        {
            "X-RateLimit-Limit": "100",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "30",
        }.__class__(
            {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}
        )
    ) == RateLimitInfo(limit=100, remaining=0, reset_after=30.0)
    info = RateLimitInfo.from_headers(
        requests.structures.CaseInsensitiveDict(
            {"RateLimit-Limit": "10", "RateLimit-Remaining": "3", "RateLimit-Reset": "7"}
        )
    )
    assert info == RateLimitInfo(limit=10, remaining=3, reset_after=7.0)
    assert RateLimitInfo.from_headers({}) is None


def test_the_adapter_uses_the_integration_client(http_server):
    @http_server.route("GET", "/contacts")
    def contacts(request):
        return 200, {}, [{"id": 1}]

    client = OutboundClient(base_url=http_server.url, headers={"X-Probe": "yes"})
    integration = Integration(
        provider="generic_rest",
        name="x",
        config={"base_url": http_server.url, "pagination": {"style": "none"}},
    )
    page = adapter_for(integration, "contacts", client=client).fetch_page(None)
    assert page.records == [{"id": 1}] and http_server.requests[-1].headers["x-probe"] == "yes"


def test_field_mapping():
    mapping = FieldMapping(
        {
            "email": {"path": "properties.email", "transform": "email"},
            "phone": {"path": "properties.phone", "transform": "phone_e164"},
            "size": {"path": "employees", "transform": "int", "default": 0},
            "name": "properties.name",
        }
    )
    raw = {"properties": {"email": " Ada@Example.COM", "phone": "(415) 555-0132", "name": "Ada"}}
    assert mapping.apply(raw) == {
        "email": "ada@example.com",
        "phone": "+14155550132",
        "size": 0,
        "name": "Ada",
    }
    with pytest.raises(RecordMappingError):
        mapping.apply({"employees": "many"})
    for bad in ({"x": {"path": ""}}, {"x": 5}, {"x": {"path": "a", "transform": "nope"}}, []):
        with pytest.raises(MappingError):
            FieldMapping(bad)


def test_normalizers():
    assert normalize_email("  MAILTO:Ada@Example.com ") == "ada@example.com"
    assert normalize_email("no-at-sign") is None
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("not a phone") is None
    assert normalize_domain("https://www.example.co.uk/path") == "example.co.uk"
    assert normalize_domain("ada@Example.com") == "example.com"


def test_generic_rest_config_validation():
    provider = registry.get("generic_rest")
    assert provider.validate_config({"base_url": "https://api.example.com"}) == {}
    errors = provider.validate_config(
        {
            "base_url": "ftp://x",
            "pagination": {"style": "smoke"},
            "entities": {"deals": {"id_field": ""}},
        }
    )
    assert {"base_url", "pagination.style", "entities.deals.id_field"} <= set(errors)
    assert "credential" in provider.validate_config({"base_url": "https://u:p@x.com"})["base_url"]


def test_a_provider_without_an_adapter_cannot_sync(monkeypatch):
    from integrations.adapters.base import AdapterConfigError
    from integrations.providers.base import ProviderInfo

    monkeypatch.setitem(
        registry._providers, "noadapter", ProviderInfo(slug="noadapter", name="N", auth_types=())
    )
    with pytest.raises(AdapterConfigError):
        adapter_for(Integration(provider="noadapter", name="n"), "x")
    assert issubclass(AdapterConfigError, AdapterError)


def test_field_mapping_back_to_the_providers_shape():
    mapping = FieldMapping({"email": "properties.email", "name": "properties.name", "n": "n"})
    local = {"email": "a@x.com", "name": "Ada", "n": 3, "local_only": True}
    assert mapping.to_remote(local) == {"properties": {"email": "a@x.com", "name": "Ada"}, "n": 3}
    assert mapping.to_remote(local, ["name"]) == {"properties": {"name": "Ada"}}
    assert FieldMapping({}).to_remote({"a": 1, "b": 2}, ["b", "gone"]) == {"b": 2, "gone": None}


def test_generic_rest_push_options_are_validated():
    provider = registry.get("generic_rest")
    good = {
        "base_url": "https://api.example.com",
        "item_path": "/v1/things/{id}",
        "update_method": "PUT",
        "idempotency_header": "Idempotency-Key",
        "conditional_writes": True,
        "read_only_fields": ["created_at"],
    }
    assert provider.validate_config(good) == {}
    errors = provider.validate_config(
        {
            "base_url": "https://api.example.com",
            "item_path": "/v1/things",
            "update_method": "POST",
            "conditional_writes": "yes",
            "read_only_fields": "created_at",
            "entities": {"deals": {"marker_field": 7}},
        }
    )
    assert {
        "item_path",
        "update_method",
        "conditional_writes",
        "read_only_fields",
        "entities.deals.marker_field",
    } <= set(errors)
