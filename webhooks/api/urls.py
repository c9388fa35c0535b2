from rest_framework.routers import SimpleRouter

from webhooks.api.views import WebhookEventViewSet, WebhookRegistrationViewSet

router = SimpleRouter()
router.register(
    "webhook-registrations", WebhookRegistrationViewSet, basename="webhook-registration"
)
router.register("webhook-events", WebhookEventViewSet, basename="webhook-event")

urlpatterns = router.urls
