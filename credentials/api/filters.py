import django_filters

from castiel.api.filters import after, before, id_filter
from credentials.models import Credential, TokenRefreshAudit


class CredentialFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")
    expires_before = before("expires_at")

    class Meta:
        model = Credential
        fields = ["type", "status"]


class TokenRefreshAuditFilter(django_filters.FilterSet):
    credential = id_filter("credential_id", "Credential id.")
    created_after = after("created_at")
    created_before = before("created_at")

    class Meta:
        model = TokenRefreshAudit
        fields = ["trigger", "outcome"]
