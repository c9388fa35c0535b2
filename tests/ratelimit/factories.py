from ratelimit.models import RateLimitOverride
from tests.factories import IntegrationFactory, isolation_maker


@isolation_maker(RateLimitOverride)
def make_override(tenant):
    integration = IntegrationFactory(tenant=tenant)
    return RateLimitOverride.objects.create(
        tenant=tenant, integration=integration, level="integration", limit=10, window_seconds=60
    )
