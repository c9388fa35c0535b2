import django_filters

from castiel.api.filters import after, before
from integrations.models import Integration


class IntegrationFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Name contains (any case).")
    created_after = after("created_at")
    created_before = before("created_at")

    class Meta:
        model = Integration
        fields = ["provider", "enabled", "status"]
