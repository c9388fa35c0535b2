from rest_framework.routers import SimpleRouter

from notifications.api.event_subscriptions import EventSubscriptionViewSet
from notifications.api.views import (
    ChannelViewSet,
    DeliveryViewSet,
    IncidentViewSet,
    SubscriptionViewSet,
)

router = SimpleRouter()
router.register("notification-channels", ChannelViewSet, basename="notification-channel")
router.register(
    "notification-subscriptions", SubscriptionViewSet, basename="notification-subscription"
)
router.register(
    "event-subscriptions", EventSubscriptionViewSet, basename="notification-event-subscription"
)
router.register("incidents", IncidentViewSet, basename="incident")
router.register("notification-deliveries", DeliveryViewSet, basename="notification-delivery")

urlpatterns = router.urls
