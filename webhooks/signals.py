"""Cache invalidation for registration lookups.

A signal rather than a call in each service, deliberately: registrations change through
services, the admin, and the shell, and a stale cached registration (a revoked secret still
accepted, a disabled endpoint still open) is a security bug, so every save path must
invalidate.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from castiel.tenancy.models import Tenant
from webhooks import lookup
from webhooks.models import WebhookRegistration


@receiver(post_save, sender=WebhookRegistration, dispatch_uid="webhooks.registration_saved")
@receiver(post_delete, sender=WebhookRegistration, dispatch_uid="webhooks.registration_deleted")
def registration_changed(sender, instance, **kwargs):
    lookup.invalidate(instance.pk)


@receiver(post_save, sender=Tenant, dispatch_uid="webhooks.tenant_saved")
def tenant_changed(sender, instance, **kwargs):
    # The snapshot carries the tenant's active flag.
    for registration_id in WebhookRegistration.objects.filter(tenant=instance).values_list(
        "pk", flat=True
    ):
        lookup.invalidate(registration_id)
