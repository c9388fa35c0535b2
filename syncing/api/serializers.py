from rest_framework import serializers

from castiel.api.base import TenantModelSerializer
from syncing.models import Conflict, Record, SyncRun, SyncTask
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
            "pages",
            "fetched",
            "created",
            "updated",
            "unchanged",
            "deleted",
            "duplicates",
            "conflicts",
            "errors",
            "echoes",
            "retries",
            "waited_seconds",
            "dedup_rules",
            "execution_id",
            "correlation_id",
            "error_code",
            "error_summary",
            "retry_log",
        ]
        read_only_fields = fields


class RecordSerializer(TenantModelSerializer):
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
            "local_updated_at",
            "version",
            "deleted_at",
            "synced_at",
            "created_at",
        ]
        read_only_fields = fields


class ConflictSerializer(TenantModelSerializer):
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
