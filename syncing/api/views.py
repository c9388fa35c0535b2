from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet, TenantScopedViewMixin
from castiel.api.errors import ApiError
from syncing import services
from syncing.api.serializers import (
    ConflictResolveSerializer,
    ConflictSerializer,
    RecordSerializer,
    RunNowSerializer,
    SyncRunSerializer,
    SyncTaskSerializer,
)
from syncing.models import Conflict, Record, SyncRun, SyncTask


@extend_schema_view(
    list=extend_schema(summary="List sync tasks"),
    create=extend_schema(summary="Create a sync task"),
    retrieve=extend_schema(summary="Get a sync task"),
    update=extend_schema(summary="Replace a sync task"),
    partial_update=extend_schema(summary="Update a sync task"),
    destroy=extend_schema(summary="Delete a sync task"),
)
@extend_schema(tags=["sync"])
class SyncTaskViewSet(TenantModelViewSet):
    queryset = SyncTask.objects.select_related("integration")
    serializer_class = SyncTaskSerializer
    filterset_fields = ["integration", "entity_type", "enabled", "status", "mode"]

    @extend_schema(summary="Run a sync task now", request=None, responses={202: RunNowSerializer})
    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request, *args, **kwargs):
        task = self.get_object()
        queued = services.sync_task_run_now(task=task)
        task.refresh_from_db()
        body = {
            "queued": queued,
            "task": SyncTaskSerializer(task, context=self.get_serializer_context()).data,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Pause a sync task", request=None, responses=SyncTaskSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, *args, **kwargs):
        task = services.sync_task_pause(task=self.get_object())
        return Response(self.get_serializer(task).data)

    @extend_schema(summary="Resume a paused sync task", request=None, responses=SyncTaskSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        task = services.sync_task_resume(task=self.get_object())
        return Response(self.get_serializer(task).data)


@extend_schema_view(
    list=extend_schema(summary="List sync runs (newest first)"),
    retrieve=extend_schema(summary="Get a sync run"),
)
@extend_schema(tags=["sync"])
class SyncRunViewSet(TenantReadOnlyModelViewSet):
    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    filterset_fields = ["task", "status", "trigger"]


@extend_schema_view(
    list=extend_schema(summary="List synced records"),
    retrieve=extend_schema(summary="Get a synced record"),
)
@extend_schema(tags=["records"])
class RecordViewSet(TenantReadOnlyModelViewSet):
    """Records of the ORM record store (the Cosmos DB store is read through its own SDK)."""

    queryset = Record.objects.all()
    serializer_class = RecordSerializer
    filterset_fields = ["integration", "entity_type", "external_id"]


@extend_schema_view(
    list=extend_schema(summary="List conflicts"),
    retrieve=extend_schema(summary="Get a conflict"),
)
@extend_schema(tags=["sync"])
class ConflictViewSet(
    TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Conflict.objects.all()
    serializer_class = ConflictSerializer
    filterset_fields = ["task", "status", "entity_type"]

    @extend_schema(
        summary="Resolve a conflict",
        request=ConflictResolveSerializer,
        responses=ConflictSerializer,
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        conflict = self.get_object()
        payload = ConflictResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            conflict = services.conflict_resolve(
                conflict=conflict,
                resolution=payload.validated_data["resolution"],
                data=payload.validated_data.get("data"),
                by=f"api:{request.user}",
            )
        except services.ConflictError as exc:
            raise ApiError(str(exc), code="conflict_not_resolvable", status=409) from None
        return Response(ConflictSerializer(conflict, context=self.get_serializer_context()).data)
