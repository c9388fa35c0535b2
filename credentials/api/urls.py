from rest_framework.routers import SimpleRouter

from credentials.api.views import CredentialViewSet, TokenRefreshAuditViewSet

router = SimpleRouter()
router.register("credentials", CredentialViewSet, basename="credential")
router.register("token-refresh-audits", TokenRefreshAuditViewSet, basename="token-refresh-audit")

urlpatterns = router.urls
