import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet, TenantScopedViewMixin
from castiel.api.errors import ApiError
from castiel.api.schema import AutoSchema, error_example, error_response
from syncing import services
from syncing.api import examples, record_batch, store_reads
from syncing.api.filters import (
    ConflictFilter,
    DeadLetterFilter,
    OutboundChangeFilter,
    PushRuleFilter,
    RecordFilter,
    SyncRunFilter,
    SyncTaskFilter,
)
from syncing.api.serializers import (
    ConflictResolveSerializer,
    ConflictSerializer,
    DeadLetterBulkResultSerializer,
    DeadLetterBulkSerializer,
    DeadLetterSerializer,
    DryRunRequestSerializer,
    OutboundChangeSerializer,
    PreviewSerializer,
    PushRuleSerializer,
    RecordChangePageSerializer,
    RecordCreateSerializer,
    RecordSerializer,
    RecordUpdateSerializer,
    RunNowSerializer,
    SyncRunSerializer,
    SyncTaskSerializer,
)
from syncing.inbound.preview import sync_task_preview
from syncing.models import (
    Conflict,
    DeadLetter,
    OutboundChange,
    PushRule,
    Record,
    RecordChange,
    SyncRun,
    SyncTask,
)
from syncing.outbound import batch_changes, deadletters, local_changes
from syncing.records import feed
from syncing.records.stores import external_store
from syncing.records.stores.orm import to_row


def dry_run_error(code: str, message: str) -> ApiError:
    """A dry run that could not decide anything, as the API's error (status by cause)."""
    if code.startswith("integration_"):  # disabled / not active: a state, not a bad request
        return ApiError(message, code="integration_not_operational", status=409)
    if code.startswith("invalid_") or code == "adapter_error":  # the task's configuration
        return ApiError(message, code=code, status=400)
    if code in ("http_429", "rate_limited") or "ratelimit" in code:
        return ApiError(message, code="rate_limited", status=429)
    # The provider could not be read (http_5xx, timeout, credential_unavailable …).
    return ApiError(message, code="provider_error", status=502, details={"error_code": code})


NOT_OPERATIONAL = error_response(
    "The task's integration is disabled, paused or waiting for re-authorisation.",
    error_example(
        "integration_not_operational",
        "integration 'CRM' is reauth_required: the refresh token was revoked",
        status=409,
    ),
)


@extend_schema_view(
    list=extend_schema(summary="List sync tasks"),
    create=extend_schema(summary="Create a sync task", examples=examples.SYNC_TASK),
    retrieve=extend_schema(summary="Get a sync task"),
    update=extend_schema(summary="Replace a sync task"),
    partial_update=extend_schema(summary="Update a sync task"),
    destroy=extend_schema(summary="Delete a sync task (its records stay)"),
)
@extend_schema(tags=["sync"])
class SyncTaskViewSet(TenantModelViewSet):
    queryset = SyncTask.objects.select_related("integration")
    serializer_class = SyncTaskSerializer
    filterset_class = SyncTaskFilter
    ordering_fields = [
        "entity_type",
        "priority",
        "next_run_at",
        "last_run_at",
        "last_success_at",
        "created_at",
    ]
    ordering = ["entity_type"]

    def _run(self, request):
        task = self.get_object()
        if not task.integration.is_operational:
            integration = task.integration
            reason = f": {integration.status_reason}" if integration.status_reason else ""
            state = "disabled" if not integration.enabled else integration.status
            raise ApiError(
                f"integration {integration.name!r} is {state}{reason}",
                code="integration_not_operational",
                status=409,
            )
        queued = services.sync_task_run_now(task=task)
        task.refresh_from_db()
        body = {
            "queued": queued,
            "task": SyncTaskSerializer(task, context=self.get_serializer_context()).data,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Run a sync task now",
        description="Queues a run at once (also for a paused task: a manual run). If a run is "
        "in progress, `queued` is false and the task runs again as soon as it ends. Follow "
        "the run in `GET /sync-runs/?task=<id>`.",
        request=None,
        responses={202: RunNowSerializer, 409: NOT_OPERATIONAL},
    )
    @action(detail=True, methods=["post"])
    def run(self, request, *args, **kwargs):
        return self._run(request)

    @extend_schema(
        summary="Run a sync task now (deprecated: use run/)",
        request=None,
        responses={202: RunNowSerializer, 409: NOT_OPERATIONAL},
        deprecated=True,
    )
    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request, *args, **kwargs):
        return self._run(request)

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

    @extend_schema(
        summary="Dry run: what the next run would create, update and delete",
        description="Fetches up to `pages` pages from where the next run would start and "
        "runs the real pipeline (mapping, dedup, conflict checks) over them, writing nothing: "
        "no records, conflicts, outbound changes, cursor or run. `items` lists every record "
        "that would change. The fetches are real requests to the provider (rate-limited "
        "like any fetch).",
        request=DryRunRequestSerializer,
        responses={
            200: PreviewSerializer,
            400: error_response(
                "Invalid input, or the task is misconfigured (the code a run would fail with).",
                error_example(
                    "invalid_mapping", "invalid field mapping: email: unknown keys", status=400
                ),
            ),
            409: NOT_OPERATIONAL,
            429: error_response(
                "The provider or Castiel's rate limiter asks to wait.",
                error_example(
                    "rate_limited", "GET https://crm.example.com/contacts: HTTP 429", status=429
                ),
            ),
            502: error_response(
                "The provider could not be read (`details.error_code`: what a run would "
                "record, e.g. http_503, timeout, credential_unavailable).",
                error_example(
                    "provider_error",
                    "GET https://crm.example.com/api/contacts failed with HTTP 503",
                    {"error_code": "http_503"},
                    status=502,
                ),
            ),
        },
        examples=examples.PREVIEW,
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, *args, **kwargs):
        task = self.get_object()
        payload = DryRunRequestSerializer(data=request.data or {})
        payload.is_valid(raise_exception=True)
        preview = sync_task_preview(task=task, max_pages=payload.validated_data["pages"])
        if not preview.ok:
            raise dry_run_error(preview.error_code, preview.error)
        return Response(PreviewSerializer(preview.as_dict()).data)


@extend_schema_view(
    list=extend_schema(summary="List sync runs (newest first)"),
    retrieve=extend_schema(summary="Get a sync run"),
)
@extend_schema(tags=["sync"])
class SyncRunViewSet(TenantReadOnlyModelViewSet):
    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    filterset_class = SyncRunFilter
    ordering_fields = ["started_at", "finished_at", "fetched", "errors"]
    ordering = ["-started_at"]


def _change_error(exc: local_changes.RecordChangeError) -> ApiError:
    return ApiError(str(exc), code=exc.code, status=exc.status)


@extend_schema_view(
    list=extend_schema(
        summary="List synced records",
        description=(
            "With the Cosmos DB record store (CASTIEL_RECORD_STORE=cosmos) records come in id "
            "order, `count` is null, pages follow `next` (a `cursor`), and only the "
            "`integration`, `entity_type` and `deleted=false` filters are available."
        ),
        parameters=[
            OpenApiParameter(
                "cursor",
                str,
                description="Cosmos DB record store only: the position `next` points to.",
            )
        ],
    ),
    retrieve=extend_schema(summary="Get a synced record"),
    create=extend_schema(
        summary="Create a record (pushed to the provider)",
        request=RecordCreateSerializer,
        responses={201: RecordSerializer},
        examples=examples.RECORD_CREATE,
    ),
    update=extend_schema(
        summary="Replace a record's data (pushed to the provider)",
        request=RecordUpdateSerializer,
        responses={200: RecordSerializer, 409: examples.RECORD_CONFLICT},
    ),
    partial_update=extend_schema(
        summary="Change some of a record's fields (only those are pushed)",
        request=RecordUpdateSerializer,
        responses={200: RecordSerializer, 409: examples.RECORD_CONFLICT},
        examples=examples.RECORD_PATCH,
    ),
    destroy=extend_schema(
        summary="Delete a record (the delete is pushed to the provider)",
        responses={204: None, 409: examples.RECORD_CONFLICT},
    ),
)
@extend_schema(tags=["records"])
class RecordViewSet(TenantModelViewSet):
    """Records, read from the configured record store (ORM, or Cosmos DB: store_reads.py).

    Writes are local changes: each one and its outbound change commit together
    (``syncing.outbound.local_changes``), and the push to the provider follows
    (``/outbound-changes/``).
    """

    queryset = Record.objects.all()
    serializer_class = RecordSerializer
    filterset_class = RecordFilter
    ordering_fields = ["entity_type", "external_id", "synced_at", "local_updated_at", "created_at"]
    ordering = ["entity_type", "external_id"]

    def list(self, request, *args, **kwargs):
        store = external_store()
        if store is None or getattr(self, "swagger_fake_view", False):
            return super().list(request, *args, **kwargs)
        return store_reads.list_response(self, store, request)

    def get_object(self):
        store = external_store()
        if store is None:
            return super().get_object()
        return store_reads.get_or_404(store, self.get_tenant(), self.kwargs.get("pk"))

    def _respond(self, change, status_code=200):
        if external_store() is None:
            record = Record.objects.get(pk=change.record.id)
        else:
            record = to_row(change.record)  # as the store just wrote it
        context = {**self.get_serializer_context(), "outbound_change": change.change}
        return Response(RecordSerializer(record, context=context).data, status=status_code)

    def create(self, request, *args, **kwargs):
        payload = RecordCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        try:
            change = local_changes.record_create(
                integration=payload.validated_data["integration"],
                entity_type=payload.validated_data["entity_type"],
                data=payload.validated_data["data"],
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except local_changes.RecordChangeError as exc:
            raise _change_error(exc) from None
        return self._respond(change, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        record = self.get_object()
        payload = RecordUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            change = local_changes.record_update(
                tenant_id=record.tenant_id,
                record_id=record.pk,
                data=payload.validated_data["data"],
                replace=not kwargs.get("partial", False),
                expected_version=payload.validated_data.get("version"),
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except local_changes.RecordChangeError as exc:
            raise _change_error(exc) from None
        return self._respond(change)

    def destroy(self, request, *args, **kwargs):
        record = self.get_object()
        try:
            local_changes.record_delete(
                tenant_id=record.tenant_id,
                record_id=record.pk,
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except local_changes.RecordChangeError as exc:
            raise _change_error(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @record_batch.SCHEMA
    @action(detail=False, methods=["post"], url_path="batch")
    def batch(self, request, *args, **kwargs):
        """Many writes in one request (``syncing.api.record_batch``)."""
        items, atomic = record_batch.parse(request.data, self.get_tenant())
        try:
            result = batch_changes.records_write_batch(
                tenant_id=self.get_tenant().id,
                items=items,
                atomic=atomic,
                origin=OutboundChange.Origin.API,
                actor=f"api:{request.user}",
            )
        except local_changes.RecordChangeError as exc:
            raise ApiError(str(exc), code=exc.code, status=409) from None
        if not result.applied:
            raise record_batch.not_applied(result)
        return Response(record_batch.body(result))


@extend_schema_view(
    list=extend_schema(summary="List outbound changes (the push outbox, newest first)"),
    retrieve=extend_schema(summary="Get an outbound change and its push results"),
)
@extend_schema(tags=["outbound"])
class OutboundChangeViewSet(TenantReadOnlyModelViewSet):
    queryset = OutboundChange.objects.all()
    serializer_class = OutboundChangeSerializer
    filterset_class = OutboundChangeFilter
    ordering_fields = ["created_at", "updated_at", "next_attempt_at", "attempts"]
    ordering = ["-created_at"]


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
    filterset_class = DeadLetterFilter
    ordering_fields = ["created_at", "resolved_at", "attempts"]
    ordering = ["-created_at"]

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

    @extend_schema(
        summary="Replay a dead letter",
        request=None,
        responses={200: DeadLetterSerializer, 409: examples.DEAD_LETTER_RESOLVED},
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, *args, **kwargs):
        return self._one(deadletters.dead_letter_replay)

    @extend_schema(
        summary="Discard a dead letter",
        request=None,
        responses={200: DeadLetterSerializer, 409: examples.DEAD_LETTER_RESOLVED},
    )
    @action(detail=True, methods=["post"])
    def discard(self, request, *args, **kwargs):
        return self._one(deadletters.dead_letter_discard)

    @extend_schema(
        operation_id="dead_letters_replay_many",
        summary="Replay many dead letters",
        description="Ids that are not this tenant's open dead letters are skipped, each "
        "with the reason; the others are replayed.",
        request=DeadLetterBulkSerializer,
        responses=DeadLetterBulkResultSerializer,
        examples=examples.DEAD_LETTER_BULK,
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
    filterset_class = ConflictFilter
    ordering_fields = ["created_at", "updated_at", "resolved_at"]
    ordering = ["-created_at"]

    @extend_schema(
        summary="Resolve a conflict",
        description="`remote` takes the provider's version, `local` keeps Castiel's (and "
        "pushes it), `merged` uses `data` (and pushes what differs from the remote).",
        request=ConflictResolveSerializer,
        responses={
            200: ConflictSerializer,
            409: error_response(
                "The conflict is already resolved, or its record no longer exists.",
                error_example(
                    "conflict_not_resolvable", "this conflict is already resolved", status=409
                ),
            ),
        },
        examples=examples.CONFLICT_RESOLVE,
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


@extend_schema_view(
    list=extend_schema(summary="List push rules"),
    create=extend_schema(summary="Create a push rule", examples=examples.PUSH_RULE),
    retrieve=extend_schema(summary="Get a push rule"),
    update=extend_schema(summary="Replace a push rule"),
    partial_update=extend_schema(summary="Update a push rule"),
    destroy=extend_schema(summary="Delete a push rule"),
)
@extend_schema(tags=["push rules"])
class PushRuleViewSet(TenantModelViewSet):
    """Webhook-triggered pushes: an event about one integration's record writes a record of
    another integration through the outbox (see ``syncing/rules.py``)."""

    queryset = PushRule.objects.select_related("source_integration", "target_integration")
    serializer_class = PushRuleSerializer
    filterset_class = PushRuleFilter
    ordering_fields = ["name", "created_at", "last_fired_at"]
    ordering = ["name"]


FEED_DEFAULT_LIMIT = 100
FEED_MAX_LIMIT = 1000


class _FeedSchema(AutoSchema):
    """The feed's answer is one object (results, next_cursor, has_more), not a list of them
    (drf-spectacular takes every ``list`` action for a list)."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


@extend_schema(tags=["records"])
class RecordChangeViewSet(TenantScopedViewMixin, viewsets.GenericViewSet):
    """The change feed: every create, update, delete and restore of the tenant's records, in
    order, exactly once to a reader that follows ``next_cursor`` (``syncing.records.feed``;
    docs/api.md, "Following the change feed")."""

    queryset = RecordChange.objects.all()
    serializer_class = RecordChangePageSerializer
    schema = _FeedSchema()
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Follow the record change feed",
        description="Changes after `cursor` (without one: from the oldest change still "
        "kept), oldest first. Keep the answer's `next_cursor` and pass it next time; "
        "`has_more` says whether to ask again at once. `from=now` answers no changes and "
        "the cursor of the current head: take it *before* reading every record "
        "(`GET /records/`) to start or resynchronise a copy. A cursor is bound to the key's "
        "tenant and to the `integration` and `entity_type` filters it was returned for. "
        "Each change carries the record as it is now (or its tombstone); a later change "
        "to it follows in the feed.",
        parameters=[
            OpenApiParameter(
                "cursor", str, description="`next_cursor` of the previous answer (opaque)."
            ),
            OpenApiParameter(
                "from",
                str,
                enum=["now", "run"],
                description="`now`: no changes, only the head's cursor; `run` (with `run`): "
                "the cursor just before that run's first change. Not with `cursor`.",
            ),
            OpenApiParameter("integration", uuid.UUID, description="Only this integration."),
            OpenApiParameter("entity_type", str, description="Only this entity type."),
            OpenApiParameter(
                "run",
                uuid.UUID,
                description="Only the changes this sync run wrote (a cursor for them: "
                "`from=run` with this `run`).",
            ),
            OpenApiParameter(
                "limit",
                int,
                description=f"Changes per answer, 1 to {FEED_MAX_LIMIT} "
                f"(default {FEED_DEFAULT_LIMIT}).",
            ),
        ],
        responses={
            200: RecordChangePageSerializer,
            410: error_response(
                "The cursor is older than the change feed's retention: changes after it may "
                "have been deleted. Resynchronise (`details.resync`).",
                error_example(
                    "cursor_expired",
                    "This cursor is older than the change feed's retention (90 days).",
                    {"retention_days": 90, "resync": "/api/v1/records/changes/?from=now"},
                    status=410,
                ),
            ),
        },
        examples=examples.RECORD_CHANGES,
    )
    def list(self, request, *args, **kwargs):
        params = request.query_params
        tenant_id = self.get_tenant().id
        filters = feed.Filters(
            integration_id=_uuid_param(params, "integration"),
            entity_type=params.get("entity_type") or None,
            run_id=_uuid_param(params, "run"),
        )
        limit = _limit_param(params)
        start = params.get("from")
        if start is not None and start not in ("now", "run"):
            raise ValidationError({"from": 'The starting points are "now" and "run".'})
        if start and params.get("cursor"):
            raise ValidationError({"from": "Give either from= or a cursor, not both."})
        if start == "run" and not filters.run_id:
            raise ValidationError({"run": "from=run needs the run's id."})
        if start:
            position = (
                feed.horizon() if start == "now" else feed.run_start(tenant_id, filters.run_id)
            )
            if position is None:  # a run that wrote nothing (or another tenant's)
                position = feed.horizon()
            return Response(
                {
                    "results": [],
                    "next_cursor": feed.encode(position, tenant_id, filters),
                    "has_more": False,
                }
            )
        after = feed.START
        if params.get("cursor"):
            try:
                after = feed.decode(params["cursor"], tenant_id, filters)
            except feed.CursorError as exc:
                raise ValidationError({"cursor": str(exc)}) from None
        page = feed.read(tenant_id, after=after, filters=filters, limit=limit)
        if after != feed.START:
            # After the read: a prune that deleted changes after the cursor while it ran
            # raised the mark in the same commit, so it is seen here (never a silent gap).
            try:
                feed.check_retained(after)
            except feed.CursorExpired:
                raise _cursor_expired(request, filters) from None
        records = store_reads.current_records(tenant_id, page.changes)
        return Response(
            {
                "results": [_change(c, records[c.record_id]) for c in page.changes],
                "next_cursor": feed.encode(page.next, tenant_id, filters),
                "has_more": page.has_more,
            }
        )


def _change(change, record: dict) -> dict:
    """One change as ``RecordChangeSerializer`` documents it (built directly: the serializer
    cost more than the rest of a 1,000-change page; docs/benchmarks.md, ``changefeed``)."""
    return {
        "id": change.id,
        "action": change.action,
        "record_id": str(change.record_id),
        "integration": str(change.integration_id),
        "entity_type": change.entity_type,
        "external_id": change.external_id,
        "fields": change.fields,
        "version": change.version,
        "at": store_reads.api_time(change.at),
        "source": change.source,
        "source_id": change.source_id,
        "record": record,
    }


def _uuid_param(params, name: str):
    if not params.get(name):
        return None
    try:
        return uuid.UUID(params[name])
    except ValueError:
        raise ValidationError({name: "Must be a valid UUID."}) from None


def _limit_param(params) -> int:
    try:
        limit = int(params.get("limit") or FEED_DEFAULT_LIMIT)
    except ValueError:
        raise ValidationError({"limit": "Must be a whole number."}) from None
    if not 1 <= limit <= FEED_MAX_LIMIT:
        raise ValidationError({"limit": f"Must be between 1 and {FEED_MAX_LIMIT}."})
    return limit


def _cursor_expired(request, filters) -> ApiError:
    days = settings.CASTIEL_RECORD_HISTORY_RETENTION_DAYS
    query = "&".join(
        f"{name}={value}"
        for name, value in (
            ("integration", filters.integration_id),
            ("entity_type", filters.entity_type),
        )
        if value
    )
    resync = request.path + "?from=now" + (f"&{query}" if query else "")
    return ApiError(
        f"This cursor is older than the change feed's retention ({days} days): changes after "
        "it may have been deleted. Resynchronise: take a new cursor with "
        f"GET {resync}, then read every record again (GET /api/v1/records/ with the same "
        "filters) and replace your copy, then follow the feed from the new cursor.",
        code="cursor_expired",
        status=410,
        details={"retention_days": days, "resync": resync},
    )
