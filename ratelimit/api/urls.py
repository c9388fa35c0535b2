from rest_framework.routers import SimpleRouter

from ratelimit.api.views import RateLimitOverrideViewSet, RateLimitUsageViewSet

router = SimpleRouter()
router.register("rate-limits", RateLimitUsageViewSet, basename="rate-limit")
router.register("rate-limit-overrides", RateLimitOverrideViewSet, basename="rate-limit-override")

urlpatterns = router.urls
