from rest_framework.routers import SimpleRouter

from syncing.api.views import ConflictViewSet, RecordViewSet, SyncRunViewSet, SyncTaskViewSet

router = SimpleRouter()
router.register("sync-tasks", SyncTaskViewSet, basename="sync-task")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("records", RecordViewSet, basename="record")
router.register("conflicts", ConflictViewSet, basename="conflict")

urlpatterns = router.urls
