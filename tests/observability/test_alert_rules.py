"""deploy/prometheus/alerts.yml: valid (promtool check rules), each alert fired and not fired
by its unit tests (promtool test rules), and built only on metrics Castiel exports."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.support.processes import REPO
from tests.support.services import require_executable

RULES = REPO / "deploy" / "prometheus"


def _alerts() -> dict[str, str]:
    groups = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_promtool_checks_and_unit_tests_pass():
    promtool = require_executable("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        out = subprocess.run(
            [promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_quiet_case():
    tests = yaml.safe_load((RULES / "alerts_test.yml").read_text())["tests"]
    fired, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == set(_alerts()) and quiet == set(_alerts())


def test_alerts_use_only_metrics_castiel_exports():
    sources = "\n".join(
        path.read_text()
        for folder in ("castiel", "syncing", "webhooks", "credentials", "ratelimit")
        for path in (REPO / folder).rglob("*.py")
    )
    for alert, expr in _alerts().items():
        for name in set(re.findall(r"\bcastiel_[a-z_]+", expr)):
            exported = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert f'"{exported}' in sources, f"{alert}: {name} is not a Castiel metric"
