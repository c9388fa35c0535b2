"""Keep this process's policy cache honest when overrides or integrations change."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from integrations.models import Integration
from ratelimit.models import RateLimitOverride
from ratelimit.selectors import forget_policies


@receiver([post_save, post_delete], sender=RateLimitOverride, dispatch_uid="ratelimit-override")
def _override_changed(sender, instance, **kwargs):
    forget_policies(tenant_id=instance.tenant_id)


@receiver([post_save, post_delete], sender=Integration, dispatch_uid="ratelimit-integration")
def _integration_changed(sender, instance, **kwargs):
    # The catalogue limit can depend on the config (Stripe test mode).
    forget_policies(tenant_id=instance.tenant_id)
