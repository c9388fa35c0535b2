import django_filters

from castiel.api.filters import after, before, id_filter
from syncing.models import Conflict, DeadLetter, OutboundChange, PushRule, Record, SyncRun, SyncTask
from syncing.records.stores import search as record_search


class SyncTaskFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")

    class Meta:
        model = SyncTask
        fields = ["entity_type", "enabled", "status", "mode"]


class SyncRunFilter(django_filters.FilterSet):
    task = id_filter("task_id", "Sync task id.")
    integration = id_filter("task__integration_id", "Integration id (of the run's task).")
    started_after = after("started_at")
    started_before = before("started_at")

    class Meta:
        model = SyncRun
        fields = ["status", "trigger", "mode"]


class RecordFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")
    q = django_filters.CharFilter(
        method="search",
        help_text="Search: records whose display fields (name and email of a contact, title of "
        "an issue: the provider's catalogue or the integration's config.display_fields) hold "
        "every word. Not available with the Cosmos DB record store (400).",
    )
    deleted = django_filters.BooleanFilter(
        field_name="deleted_at",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: only deleted records; false: only live ones (default: both).",
    )
    synced_after = after("synced_at")
    updated_locally_after = after("local_updated_at")

    class Meta:
        model = Record
        fields = ["entity_type", "external_id"]

    def search(self, queryset, name, value):
        from integrations.models import Integration

        configured = Integration.objects.filter(
            pk__in=queryset.values("integration_id"), config__has_key="display_fields"
        )
        return queryset.filter(
            record_search.orm_filter(value, record_search.search_paths(configured))
        )


class ConflictFilter(django_filters.FilterSet):
    task = id_filter("task_id", "Sync task id.")
    record_id = django_filters.UUIDFilter()
    created_after = after("created_at")

    class Meta:
        model = Conflict
        fields = ["status", "entity_type", "external_id"]


class OutboundChangeFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")
    record_id = django_filters.UUIDFilter()
    created_after = after("created_at")
    created_before = before("created_at")

    class Meta:
        model = OutboundChange
        fields = ["entity_type", "operation", "status", "origin", "external_id"]


class DeadLetterFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")
    record_id = django_filters.UUIDFilter()
    created_after = after("created_at")
    created_before = before("created_at")

    class Meta:
        model = DeadLetter
        fields = ["entity_type", "operation", "status", "error_code", "retryable"]


class PushRuleFilter(django_filters.FilterSet):
    source_integration = id_filter("source_integration_id", "Source integration id.")
    target_integration = id_filter("target_integration_id", "Target integration id.")

    class Meta:
        model = PushRule
        fields = ["enabled", "source_entity_type", "target_entity_type"]
