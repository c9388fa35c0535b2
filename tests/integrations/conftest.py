"""Fixtures of the integrations tests: sync and push helpers, and throw-away provider
packages for the copy-a-folder tests."""

import sys
import uuid

import pytest

from integrations.providers import registry
from tests.syncing.fixtures import enqueued, json_server  # noqa: F401  (fixtures)
from tests.syncing.outbound_support import pushes  # noqa: F401  (fixture)


@pytest.fixture
def isolated_registry(monkeypatch):
    """A registry copy for this test, restored afterwards (other tests see the real one)."""
    monkeypatch.setattr(registry, "_providers", dict(registry._providers))
    return registry


@pytest.fixture
def provider_package(tmp_path, monkeypatch):
    """A fresh importable package ``<name>`` under tmp_path; returns (name, path)."""
    name = f"castiel_test_providers_{uuid.uuid4().hex[:12]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text('"""Throw-away provider package for a test."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, package
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]
