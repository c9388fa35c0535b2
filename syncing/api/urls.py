from rest_framework.routers import SimpleRouter

from syncing.api.views import (
    ConflictViewSet,
    DeadLetterViewSet,
    OutboundChangeViewSet,
    PushRuleViewSet,
    RecordChangeViewSet,
    RecordViewSet,
    SyncRunViewSet,
    SyncTaskViewSet,
)

router = SimpleRouter()
router.register("sync-tasks", SyncTaskViewSet, basename="sync-task")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
# Before records/: "changes" would otherwise be read as a record id.
router.register("records/changes", RecordChangeViewSet, basename="record-change")
router.register("records", RecordViewSet, basename="record")
router.register("conflicts", ConflictViewSet, basename="conflict")
router.register("outbound-changes", OutboundChangeViewSet, basename="outbound-change")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
router.register("push-rules", PushRuleViewSet, basename="push-rule")

urlpatterns = router.urls
