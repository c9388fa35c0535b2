"""The sandbox served by a live Castiel server (pytest-django's ``live_server``)."""

from __future__ import annotations

import pytest

from sandbox import services
from sandbox.demo import demo_contacts
from sandbox.models import SandboxAccount, SandboxObject


class Sandbox:
    def __init__(self, url: str):
        self.url = url

    def account(self, slug: str = "acme", **fields) -> SandboxAccount:
        return services.account_create(slug=slug, **fields)

    def seed(self, account: SandboxAccount, n: int, collection: str = "contacts") -> None:
        services.objects_seed(account=account, collection=collection, rows=demo_contacts(n))

    def expected(self, account: SandboxAccount, collection: str = "contacts") -> dict[str, dict]:
        """What a sync must hold: every live object, exactly as the API serialises it."""
        return {
            str(obj.pk): services.serialize(obj)
            for obj in SandboxObject.objects.filter(
                account=account, collection=collection, deleted_at__isnull=True
            )
        }

    def faults(self, account: SandboxAccount, **faults) -> None:
        services.account_configure(account=account, faults=faults)


@pytest.fixture
def sandbox(live_server) -> Sandbox:
    return Sandbox(live_server.url)
