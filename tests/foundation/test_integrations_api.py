import pytest

from integrations.models import Integration


@pytest.mark.django_db
class TestIntegrationsApi:
    def test_create_and_read(self, api, tenant):
        response = api.post(
            "/api/v1/integrations/",
            {"provider": "generic_rest", "name": "Shop", "config": {"base_url": "http://x"}},
            format="json",
        )
        assert response.status_code == 201, response.json()
        integration = Integration.objects.get(pk=response.json()["id"])
        assert integration.tenant == tenant
        assert api.get(f"/api/v1/integrations/{integration.pk}/").json()["name"] == "Shop"

    def test_missing_required_config_is_a_clear_error(self, api):
        response = api.post(
            "/api/v1/integrations/", {"provider": "generic_rest", "name": "x"}, format="json"
        )
        assert response.status_code == 400
        assert "base_url" in response.json()["details"]["config"]
        assert not Integration.objects.exists()

    def test_unknown_provider_lists_known_ones(self, api):
        response = api.post(
            "/api/v1/integrations/", {"provider": "nope", "name": "x"}, format="json"
        )
        assert "generic_rest" in response.json()["details"]["provider"][0]

    def test_duplicate_name_in_tenant_is_400_not_500(self, api):
        body = {"provider": "generic_rest", "name": "dup", "config": {"base_url": "http://x"}}
        assert api.post("/api/v1/integrations/", body, format="json").status_code == 201
        response = api.post("/api/v1/integrations/", body, format="json")
        assert response.status_code == 400
        assert "name" in response.json()["details"]

    def test_same_name_allowed_in_another_tenant(self, api, other_api):
        body = {"provider": "generic_rest", "name": "same", "config": {"base_url": "http://x"}}
        assert api.post("/api/v1/integrations/", body, format="json").status_code == 201
        assert other_api.post("/api/v1/integrations/", body, format="json").status_code == 201

    def test_provider_cannot_change(self, api):
        body = {"provider": "generic_rest", "name": "p", "config": {"base_url": "http://x"}}
        pk = api.post("/api/v1/integrations/", body, format="json").json()["id"]
        response = api.patch(f"/api/v1/integrations/{pk}/", {"provider": "other"}, format="json")
        assert response.status_code == 400
