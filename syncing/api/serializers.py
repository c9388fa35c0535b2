from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from castiel.api.base import TenantModelSerializer
from syncing.inbound.preview import MAX_PAGES
from syncing.models import (
    Conflict,
    DeadLetter,
    OutboundChange,
    PushRule,
    Record,
    SyncRun,
    SyncTask,
)
from syncing.reactions.push_rules import push_rule_config_errors
from syncing.services import sync_task_config_errors

LEASE_FIELDS = ["lease_owner", "lease_expires_at"]


class SyncTaskSerializer(TenantModelSerializer):
    class Meta:
        model = SyncTask
        fields = [
            "id",
            "integration",
            "name",
            "entity_type",
            "direction",
            "mode",
            "interval_seconds",
            "cron",
            "priority",
            "enabled",
            "status",
            "status_reason",
            "next_run_at",
            "last_run_at",
            "last_success_at",
            "consecutive_failures",
            "state",
            "checkpoint",
            "field_mapping",
            "dedup_strategy",
            "dedup_config",
            "conflict_strategy",
            "conflict_config",
            "push_conflict_strategy",
            "push_max_attempts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "direction",
            "status",
            "status_reason",
            "last_run_at",
            "last_success_at",
            "consecutive_failures",
            "state",
            "checkpoint",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        def current(name, default=None):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name, default) if self.instance else default

        integration = current("integration")
        if self.instance is not None and "integration" in attrs:
            if attrs["integration"].pk != self.instance.integration_id:
                raise serializers.ValidationError(
                    {"integration": "The integration of a sync task cannot change."}
                )
        entity_type = current("entity_type", "")
        errors = sync_task_config_errors(
            integration=integration,
            entity_type=entity_type,
            field_mapping=current("field_mapping", {}),
            dedup_strategy=current("dedup_strategy", "external_id"),
            dedup_config=current("dedup_config", {}),
            conflict_strategy=current("conflict_strategy", "remote_wins"),
            conflict_config=current("conflict_config", {}),
            interval_seconds=current("interval_seconds", 3600),
            cron=current("cron", ""),
        )
        if errors:
            raise serializers.ValidationError(errors)
        clash = SyncTask.objects.filter(integration=integration, entity_type=entity_type)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if integration is not None and clash.exists():
            raise serializers.ValidationError(
                {"entity_type": "This integration already has a sync task for this entity type."}
            )
        return attrs


class SyncRunSerializer(TenantModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    records_per_second = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "task",
            "status",
            "mode",
            "trigger",
            "resumed_from",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "duration_seconds",
            "records_per_second",
            *SyncRun.COUNTERS,
            "execution_id",
            "correlation_id",
            "error_code",
            "error_summary",
            "retry_log",
        ]
        read_only_fields = fields


class RecordDisplaySerializer(serializers.Serializer):
    title = serializers.CharField(help_text="The first display field's value (or the external id).")
    fields = serializers.DictField(
        child=serializers.CharField(),
        help_text="Each display field with a value: {field path(s): text}.",
    )


class RecordSerializer(TenantModelSerializer):
    outbound_change = serializers.SerializerMethodField(
        help_text="The outbound change this request queued (writes only; null: nothing to push)."
    )
    display = serializers.SerializerMethodField(
        help_text="What shows the record to a person: its entity type's display fields "
        "(the provider's catalogue, or the integration's config.display_fields)."
    )

    class Meta:
        model = Record
        fields = [
            "id",
            "integration",
            "entity_type",
            "external_id",
            "data",
            "content_hash",
            "remote_updated_at",
            "remote_version",
            "local_updated_at",
            "version",
            "deleted_at",
            "synced_at",
            "created_at",
            "outbound_change",
            "display",
        ]
        read_only_fields = fields

    def get_outbound_change(self, record) -> str | None:
        change = self.context.get("outbound_change")
        return str(change.pk) if change is not None else None

    @extend_schema_field(RecordDisplaySerializer)
    def get_display(self, record) -> dict:
        from integrations.models import Integration
        from syncing.records.stores import search as record_search

        known = self.context.setdefault("_display_integrations", {})
        if record.integration_id not in known:
            known[record.integration_id] = Integration.objects.filter(
                pk=record.integration_id
            ).first()
        return record_search.display(record, known[record.integration_id])


class RecordCreateSerializer(TenantModelSerializer):
    data = serializers.DictField(help_text="The record's fields (local names).")

    class Meta:
        model = Record
        fields = ["integration", "entity_type", "data"]


class RecordUpdateSerializer(serializers.Serializer):
    data = serializers.DictField(
        help_text="PATCH: the fields to change (merged). PUT: the record's complete data."
    )
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Refuse with 409 unless the record is still at this version.",
    )


class OutboundChangeSerializer(TenantModelSerializer):
    idempotency_key = serializers.CharField(read_only=True)

    class Meta:
        model = OutboundChange
        fields = [
            "id",
            "integration",
            "entity_type",
            "record_id",
            "external_id",
            "operation",
            "fields",
            "seq",
            "status",
            "status_reason",
            "origin",
            "actor",
            "coalesced",
            "next_attempt_at",
            "attempts",
            "lost_attempts",
            "first_attempt_at",
            "last_attempt_at",
            "finished_at",
            "duration_ms",
            "remote_id",
            "remote_version",
            "replayed",
            "idempotency_key",
            "correlation_id",
            "execution_id",
            "error_code",
            "error_summary",
            "attempt_log",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeadLetterSerializer(TenantModelSerializer):
    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "change",
            "integration",
            "entity_type",
            "record_id",
            "external_id",
            "operation",
            "status",
            "retryable",
            "error_code",
            "error_message",
            "request",
            "response_status",
            "response_headers",
            "response_body",
            "attempts",
            "attempt_log",
            "correlation_id",
            "execution_id",
            "created_at",
            "resolved_at",
            "resolved_by",
        ]
        read_only_fields = fields


class DeadLetterBulkSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.UUIDField(), min_length=1, max_length=500, help_text="Dead letter ids."
    )


class DeadLetterBulkResultSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.UUIDField())
    skipped = serializers.DictField(
        child=serializers.CharField(), help_text="Dead letters left alone, with the reason."
    )


class ConflictSerializer(TenantModelSerializer):
    resolution = serializers.ChoiceField(
        choices=Conflict.Resolution.choices,
        allow_blank=True,
        read_only=True,
        help_text="How it was resolved (empty while open).",
    )

    class Meta:
        model = Conflict
        fields = [
            "id",
            "task",
            "run",
            "record_id",
            "entity_type",
            "external_id",
            "fields",
            "base_data",
            "local_data",
            "remote_data",
            "remote_updated_at",
            "status",
            "resolution",
            "resolved_data",
            "resolved_by",
            "resolved_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ConflictResolveSerializer(serializers.Serializer):
    resolution = serializers.ChoiceField(choices=Conflict.Resolution.choices)
    data = serializers.JSONField(required=False, help_text="The merged data (merged only).")


class RunNowSerializer(serializers.Serializer):
    queued = serializers.BooleanField(
        help_text="True if queued now; false if a run is in progress (it runs again after)."
    )
    task = SyncTaskSerializer()


class DryRunRequestSerializer(serializers.Serializer):
    pages = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PAGES,
        default=1,
        help_text="How many pages to fetch and decide (each is a real request).",
    )


class PreviewItemSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["created", "updated", "deleted", "restored", "conflict"],
        help_text="What the run would do to the record (conflict: opened for manual review).",
    )
    external_id = serializers.CharField()
    record_id = serializers.UUIDField()
    fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="Local fields whose value would change (conflicts: changed on both sides).",
    )
    before = serializers.DictField(
        allow_null=True, help_text="The local data now (conflicts: the local side)."
    )
    after = serializers.DictField(
        allow_null=True, help_text="The local data after the run (conflicts: the remote side)."
    )


class PreviewSerializer(serializers.Serializer):
    task = serializers.UUIDField()
    mode = serializers.CharField(help_text="incremental or full.")
    since = serializers.CharField(
        allow_null=True, help_text="The watermark the run would start from."
    )
    cursor = serializers.DictField(
        allow_null=True, help_text="The checkpoint cursor it would resume from."
    )
    pages = serializers.IntegerField(help_text="Pages fetched and decided.")
    more_pages = serializers.BooleanField(help_text="The provider has more pages than decided.")
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="The run counters these pages would add."
    )
    items = PreviewItemSerializer(many=True, help_text="Every record that would change.")
    truncated = serializers.BooleanField(help_text="More items than the preview lists.")
    record_errors = serializers.ListField(
        child=serializers.CharField(), help_text="Records that could not be mapped."
    )


class PushRuleSerializer(TenantModelSerializer):
    event_types = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=200),
        required=False,
        default=list,
        help_text="Shell patterns of event types that fire the rule (contacts.*); empty = all.",
    )
    field_mapping = serializers.DictField(
        required=False,
        default=dict,
        help_text="Target field → source path or {path, transform, default}; empty copies "
        "the payload.",
    )

    class Meta:
        model = PushRule
        fields = [
            "id",
            "name",
            "enabled",
            "source_integration",
            "source_entity_type",
            "event_types",
            "target_integration",
            "target_entity_type",
            "field_mapping",
            "match_field",
            "create_missing",
            "last_fired_at",
            "last_outcome",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "last_fired_at", "last_outcome", "created_at", "updated_at"]

    def validate(self, attrs):
        def current(name, default=None):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name, default) if self.instance else default

        errors = push_rule_config_errors(
            source_integration=current("source_integration"),
            source_entity_type=current("source_entity_type", ""),
            event_types=current("event_types", []),
            target_integration=current("target_integration"),
            target_entity_type=current("target_entity_type", ""),
            field_mapping=current("field_mapping", {}),
            match_field=current("match_field", ""),
        )
        tenant = self.context.get("tenant")
        name = attrs.get("name")
        if tenant is not None and name:
            clash = PushRule.objects.filter(tenant=tenant, name=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                errors["name"] = "A push rule with this name exists."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


# -- the change feed (GET /records/changes/) ---------------------------------------------------


class FeedRecordSerializer(TenantModelSerializer):
    """A live record inside a change: the record's own fields, as the records endpoint shows
    them (nothing per request, nothing that costs a query per record)."""

    class Meta:
        model = Record
        fields = [
            "id",
            "integration",
            "entity_type",
            "external_id",
            "data",
            "content_hash",
            "remote_updated_at",
            "remote_version",
            "local_updated_at",
            "version",
            "deleted_at",
            "synced_at",
            "created_at",
        ]
        read_only_fields = fields


class ChangedRecordSerializer(serializers.Serializer):
    """The documented shape of a change's ``record``: the record as it is now, or only its
    tombstone (the five required fields) when it is deleted or gone."""

    id = serializers.UUIDField()
    integration = serializers.UUIDField()
    entity_type = serializers.CharField()
    external_id = serializers.CharField(allow_blank=True)
    deleted_at = serializers.DateTimeField(
        allow_null=True, help_text="Set: the record is deleted (this is its tombstone)."
    )
    data = serializers.DictField(required=False)
    content_hash = serializers.CharField(required=False)
    remote_updated_at = serializers.DateTimeField(required=False, allow_null=True)
    remote_version = serializers.CharField(required=False, allow_blank=True)
    local_updated_at = serializers.DateTimeField(required=False, allow_null=True)
    version = serializers.IntegerField(required=False)
    synced_at = serializers.DateTimeField(required=False, allow_null=True)
    created_at = serializers.DateTimeField(required=False, allow_null=True)

    class Meta:
        ref_name = "ChangedRecord"


class RecordChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The change's id (its place in the feed).")
    action = serializers.ChoiceField(choices=["created", "updated", "deleted", "restored"])
    record_id = serializers.UUIDField()
    integration = serializers.UUIDField(source="integration_id")
    entity_type = serializers.CharField()
    external_id = serializers.CharField(allow_blank=True)
    fields = serializers.ListField(
        child=serializers.CharField(), help_text="Fields whose value changed (empty: created)."
    )
    version = serializers.IntegerField(
        help_text="The record's version after this change (0: a change older than the feed)."
    )
    at = serializers.DateTimeField(help_text="When the change was written.")
    source = serializers.CharField(
        help_text="What made it: run, webhook, api, admin, rule, conflict, service, push."
    )
    source_id = serializers.CharField(
        allow_blank=True, help_text="The sync run, webhook event, outbound change or conflict."
    )
    record = serializers.SerializerMethodField(
        help_text="The record as it is NOW (later changes to it follow in the feed), or its "
        "tombstone when it is deleted or gone."
    )

    @extend_schema_field(ChangedRecordSerializer)
    def get_record(self, change) -> dict:
        return self.context["records"][change.record_id]


class RecordChangePageSerializer(serializers.Serializer):
    results = RecordChangeSerializer(many=True)
    next_cursor = serializers.CharField(
        help_text="Where to continue: pass it as `cursor` (always set; keep it even when "
        "`has_more` is false — it has moved past everything you were given)."
    )
    has_more = serializers.BooleanField(
        help_text="true: more changes are ready now, ask again at once; false: you are at the "
        "head, poll again later with `next_cursor`."
    )
