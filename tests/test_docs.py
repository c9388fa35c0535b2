"""The README keeps its promises: two quick-start commands, every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_quick_start_holds_exactly_two_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
    commands = [line for line in blocks[0].splitlines() if line.strip()]
    assert commands == ["scripts/run", "scripts/test"]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "\nscripts/test\n" in ci


def test_every_environment_variable_read_by_settings_is_documented():
    settings_text = (REPO / "castiel" / "settings.py").read_text()
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', settings_text))
    assert len(names) > 20
    undocumented = sorted(name for name in names if f"`{name}`" not in README)
    assert not undocumented, f"document these in README's configuration reference: {undocumented}"
