from rest_framework.routers import SimpleRouter

from integrations.api.views import IntegrationViewSet

router = SimpleRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = router.urls
