"""factory-boy factories and the registry the tenant-isolation test uses.

Every model exposed by a tenant API endpoint registers a maker: ``make(tenant) -> instance``
owned by that tenant. App test packages add theirs in ``tests/<app>/factories.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import factory

from castiel.tenancy.models import Tenant
from integrations.models import Integration

ISOLATION_MAKERS: dict[type, Callable] = {}


def isolation_maker(model: type):
    def decorator(make: Callable):
        ISOLATION_MAKERS[model] = make
        return make

    return decorator


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Integration

    tenant = factory.SubFactory(TenantFactory)
    provider = "generic_rest"
    name = factory.Sequence(lambda n: f"Integration {n}")
    config = factory.LazyFunction(lambda: {"base_url": "http://127.0.0.1:9/"})


@isolation_maker(Integration)
def make_integration(tenant):
    return IntegrationFactory(tenant=tenant)
