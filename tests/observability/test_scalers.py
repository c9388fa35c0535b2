"""The example scalers in deploy/ (KEDA, Azure Container Apps) say what the settings' defaults
say: the same bounds and per-instance thresholds for every work kind."""

from __future__ import annotations

import re

import yaml
from django.conf import settings

from tests.support.processes import REPO

SCALED = ("inbound", "outbound", "webhooks")


def _kind(query: str) -> str:
    return re.fullmatch(r'max\(castiel_scaling_backlog\{kind="(\w+)"\}\)', query).group(1)


def test_keda_scaled_objects_match_the_settings():
    docs = list(yaml.safe_load_all((REPO / "deploy/keda/scaledobjects.yaml").read_text()))
    seen = set()
    for doc in docs:
        assert doc["kind"] == "ScaledObject"
        [trigger] = doc["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        kind = _kind(trigger["metadata"]["query"])
        bounds = settings.CASTIEL_SCALING[kind]
        assert doc["spec"]["minReplicaCount"] == bounds["min"], kind
        assert doc["spec"]["maxReplicaCount"] == bounds["max"], kind
        assert int(trigger["metadata"]["threshold"]) == bounds["per_instance"], kind
        seen.add(kind)
    assert seen == set(SCALED)


def test_container_apps_scale_rules_match_the_settings():
    apps = yaml.safe_load((REPO / "deploy/azure-container-apps/scale-rules.yaml").read_text())
    seen = set()
    for name, app in apps["apps"].items():
        scale = app["scale"]
        for rule in scale.get("rules", []):
            if "custom" not in rule:
                continue
            assert rule["custom"]["type"] == "prometheus"
            kind = _kind(rule["custom"]["metadata"]["query"])
            bounds = settings.CASTIEL_SCALING[kind]
            assert name == f"castiel-worker-{kind}"
            assert (scale["minReplicas"], scale["maxReplicas"]) == (bounds["min"], bounds["max"])
            assert int(rule["custom"]["metadata"]["threshold"]) == bounds["per_instance"]
            seen.add(kind)
    assert seen == set(SCALED)
    maintenance = apps["apps"]["castiel-worker-maintenance"]["scale"]
    bounds = settings.CASTIEL_SCALING["maintenance"]
    assert (bounds["min"], bounds["max"]) == (1, 1)
    assert (maintenance["minReplicas"], maintenance["maxReplicas"]) == (1, 1)
