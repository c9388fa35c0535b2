"""The API base: authentication, JSON errors, pagination, correlation ids."""

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from castiel.tenancy import services as tenancy


class Boom(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("something broke with secret hunter2")


def plain_boom(request):
    raise RuntimeError("plain view broke with secret hunter2")


urlpatterns = [path("api/v1/boom/", Boom.as_view()), path("api/v1/plain-boom/", plain_boom)]
handler500 = "castiel.api.errors.handler500"


@pytest.mark.django_db
class TestAuthentication:
    def test_tenant_endpoint_returns_the_callers_tenant(self, api, tenant):
        response = api.get("/api/v1/tenant/")
        assert response.status_code == 200
        assert response.json()["id"] == str(tenant.id)
        assert response.json()["slug"] == tenant.slug

    def test_wrong_key_is_401_json(self, client):
        response = client.get("/api/v1/tenant/", HTTP_AUTHORIZATION="Bearer cst_abcd1234_nope")
        assert response.status_code == 401
        assert response.json() == {
            "code": "authentication_failed",
            "message": "Invalid or revoked API key.",
            "details": {},
        }
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_missing_key_is_401_json(self, client):
        response = client.get("/api/v1/tenant/")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_malformed_header_is_401_json(self, client):
        response = client.get("/api/v1/tenant/", HTTP_AUTHORIZATION="Bearer a b")
        assert response.status_code == 401
        assert "Malformed" in response.json()["message"]

    def test_revoked_key_stops_working(self, client, tenant):
        key, raw = tenancy.api_key_create(tenant=tenant)
        assert client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
        tenancy.api_key_revoke(api_key=key)
        assert client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401

    def test_inactive_tenant_is_locked_out(self, client, tenant):
        _key, raw = tenancy.api_key_create(tenant=tenant)
        tenant.is_active = False
        tenant.save()
        assert client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401

    def test_key_is_stored_only_as_a_digest(self, tenant):
        key, raw = tenancy.api_key_create(tenant=tenant)
        key.refresh_from_db()
        assert raw not in (key.key_hash, key.prefix)
        assert raw.split("_")[1] == key.prefix
        assert len(key.key_hash) == 64


@pytest.mark.django_db
class TestErrors:
    def test_malformed_json_is_400_json(self, api):
        response = api.post(
            "/api/v1/integrations/", data="{not json", content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"

    def test_validation_error_lists_fields(self, api):
        response = api.post("/api/v1/integrations/", {"provider": "nope"}, format="json")
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid"
        assert "provider" in body["details"] and "name" in body["details"]

    def test_unknown_api_route_is_404_json(self, api):
        response = api.get("/api/v1/does-not-exist/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_unknown_version_is_404_json(self, api):
        response = api.get("/api/v2/tenant/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_method_not_allowed_is_405_json(self, api):
        response = api.delete("/api/v1/tenant/")
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"

    @override_settings(ROOT_URLCONF=__name__, DEBUG=False)
    @pytest.mark.parametrize("url", ["/api/v1/boom/", "/api/v1/plain-boom/"])
    def test_unhandled_error_is_500_json_without_details(self, client, url):
        client.raise_request_exception = False
        response = client.get(url)
        assert response.status_code == 500
        assert response.json()["code"] == "server_error"
        assert "hunter2" not in response.content.decode()


@pytest.mark.django_db
class TestConventions:
    def test_list_is_paginated(self, api):
        for n in range(3):
            api.post(
                "/api/v1/integrations/",
                {"provider": "generic_rest", "name": f"i{n}", "config": {"base_url": "http://x"}},
                format="json",
            )
        body = api.get("/api/v1/integrations/?page_size=2").json()
        assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]

    def test_correlation_id_is_echoed(self, api):
        response = api.get("/api/v1/tenant/", HTTP_X_CORRELATION_ID="req-42")
        assert response["X-Correlation-ID"] == "req-42"

    def test_unsafe_correlation_id_is_replaced(self, api):
        response = api.get("/api/v1/tenant/", HTTP_X_CORRELATION_ID="bad id\r\nx: y")
        assert response["X-Correlation-ID"] != "bad id\r\nx: y"
        assert len(response["X-Correlation-ID"]) == 32

    def test_generated_correlation_id_when_absent(self, api):
        assert len(api.get("/api/v1/tenant/")["X-Correlation-ID"]) == 32


@pytest.mark.django_db
def test_openapi_schema_validates():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


@pytest.mark.django_db
def test_docs_page_renders(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        '{"provider": "generic_rest", "name": "nul\\u0000name", "config": {"base_url": "http://x"}}',
        '{"provider": "generic_rest", "name": "n", "config": {"base_url": "x", "k\\u0000": 1}}',
        '{"provider": "generic_rest", "name": "lone \\ud800", "config": {"base_url": "http://x"}}',
    ],
)
def test_json_that_no_database_can_store_is_a_clear_400(api, body):
    from integrations.models import Integration

    response = api.post("/api/v1/integrations/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "NUL" in response.json()["message"]
    assert not Integration.objects.exists()


@pytest.mark.django_db
@pytest.mark.embedded
@pytest.mark.parametrize("depth", [150, 2_000, 50_000])
def test_json_nested_too_deep_is_a_400_not_a_500(api, depth):
    """~1,000 levels made json raise RecursionError, which no handler caught (500)."""
    from integrations.models import Integration

    config = '{"a":' * depth + "1" + "}" * depth
    body = f'{{"provider": "generic_rest", "name": "deep", "config": {config}}}'
    response = api.post("/api/v1/integrations/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "parse_error",
        "message": "JSON may not nest more than 100 levels deep.",
        "details": {},
    }
    assert not Integration.objects.exists()


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_body_over_the_upload_limit_is_a_413_in_the_error_shape(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"provider": "generic_rest", "name": "' + "x" * 1000 + '"}'
    response = api.post("/api/v1/integrations/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "message": "The request body is larger than 1000 bytes.",
        "details": {"max_bytes": 1000},
    }
