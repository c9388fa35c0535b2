from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet, TenantScopedViewMixin
from castiel.api.errors import ApiError
from syncing import deadletters, outbox, services
from syncing.api.serializers import (
    ConflictResolveSerializer,
    ConflictSerializer,
    DeadLetterBulkResultSerializer,
    DeadLetterBulkSerializer,
    DeadLetterSerializer,
    OutboundChangeSerializer,
    RecordCreateSerializer,
    RecordSerializer,
    RecordUpdateSerializer,
    RunNowSerializer,
    SyncRunSerializer,
    SyncTaskSerializer,
)
from syncing.models import Conflict, DeadLetter, OutboundChange, Record, SyncRun, SyncTask


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


def _change_error(exc: outbox.RecordChangeError) -> ApiError:
    return ApiError(str(exc), code=exc.code, status=exc.status)


@extend_schema_view(
    list=extend_schema(summary="List synced records"),
    retrieve=extend_schema(summary="Get a synced record"),
    create=extend_schema(
        summary="Create a record (pushed to the provider)",
        request=RecordCreateSerializer,
        responses={201: RecordSerializer},
    ),
    update=extend_schema(
        summary="Replace a record's data (pushed to the provider)",
        request=RecordUpdateSerializer,
        responses=RecordSerializer,
    ),
    partial_update=extend_schema(
        summary="Change some of a record's fields (only those are pushed)",
        request=RecordUpdateSerializer,
        responses=RecordSerializer,
    ),
    destroy=extend_schema(summary="Delete a record (the delete is pushed to the provider)"),
)
@extend_schema(tags=["records"])
class RecordViewSet(TenantModelViewSet):
    """Records of the ORM record store (the Cosmos DB store is read through its own SDK).

    Writes are local changes: each one and its outbound change commit together
    (``syncing.outbox``), and the push to the provider follows (``/outbound-changes/``).
    """

    queryset = Record.objects.all()
    serializer_class = RecordSerializer
    filterset_fields = ["integration", "entity_type", "external_id"]

    def _respond(self, change, status_code=200):
        record = Record.objects.get(pk=change.record.id)
        context = {**self.get_serializer_context(), "outbound_change": change.change}
        return Response(RecordSerializer(record, context=context).data, status=status_code)

    def create(self, request, *args, **kwargs):
        payload = RecordCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        try:
            change = outbox.record_create(
                integration=payload.validated_data["integration"],
                entity_type=payload.validated_data["entity_type"],
                data=payload.validated_data["data"],
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except outbox.RecordChangeError as exc:
            raise _change_error(exc) from None
        return self._respond(change, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        record = self.get_object()
        payload = RecordUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            change = outbox.record_update(
                tenant_id=record.tenant_id,
                record_id=record.pk,
                data=payload.validated_data["data"],
                replace=not kwargs.get("partial", False),
                expected_version=payload.validated_data.get("version"),
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except outbox.RecordChangeError as exc:
            raise _change_error(exc) from None
        return self._respond(change)

    def destroy(self, request, *args, **kwargs):
        record = self.get_object()
        try:
            outbox.record_delete(
                tenant_id=record.tenant_id,
                record_id=record.pk,
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except outbox.RecordChangeError as exc:
            raise _change_error(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List outbound changes (the push outbox, newest first)"),
    retrieve=extend_schema(summary="Get an outbound change and its push results"),
)
@extend_schema(tags=["outbound"])
class OutboundChangeViewSet(TenantReadOnlyModelViewSet):
    queryset = OutboundChange.objects.all()
    serializer_class = OutboundChangeSerializer
    filterset_fields = ["integration", "entity_type", "record_id", "operation", "status"]


@extend_schema_view(
    list=extend_schema(summary="List dead letters (pushes that gave up)"),
    retrieve=extend_schema(summary="Inspect a dead letter: error, request, response, attempts"),
)
@extend_schema(tags=["outbound"])
class DeadLetterViewSet(
    TenantScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = DeadLetter.objects.all()
    serializer_class = DeadLetterSerializer
    filterset_fields = ["integration", "entity_type", "operation", "status", "error_code"]

    def _one(self, action):
        try:
            dead_letter = action(dead_letter=self.get_object(), by=f"api:{self.request.user}")
        except deadletters.DeadLetterError as exc:
            raise ApiError(str(exc), code="dead_letter_resolved", status=409) from None
        return Response(self.get_serializer(dead_letter).data)

    def _many(self, request, action):
        payload = DeadLetterBulkSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        wanted = payload.validated_data["ids"]
        found = list(self.get_queryset().filter(pk__in=wanted))  # the tenant's own only
        done, skipped = action(dead_letters=found, by=f"api:{request.user}")
        known = {d.pk for d in found}
        skipped.update({str(i): "no such dead letter" for i in wanted if i not in known})
        return Response({"done": [str(d.pk) for d in done], "skipped": skipped})

    @extend_schema(summary="Replay a dead letter", request=None, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, *args, **kwargs):
        return self._one(deadletters.dead_letter_replay)

    @extend_schema(summary="Discard a dead letter", request=None, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, *args, **kwargs):
        return self._one(deadletters.dead_letter_discard)

    @extend_schema(
        operation_id="dead_letters_replay_many",
        summary="Replay many dead letters",
        request=DeadLetterBulkSerializer,
        responses=DeadLetterBulkResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="replay")
    def replay_many(self, request, *args, **kwargs):
        return self._many(request, deadletters.dead_letters_replay)

    @extend_schema(
        operation_id="dead_letters_discard_many",
        summary="Discard many dead letters",
        request=DeadLetterBulkSerializer,
        responses=DeadLetterBulkResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="discard")
    def discard_many(self, request, *args, **kwargs):
        return self._many(request, deadletters.dead_letters_discard)


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
