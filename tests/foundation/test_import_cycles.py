"""No import cycles between files, anywhere in the project.

import-linter (CI) keeps the apps layered; this keeps every module's imports acyclic too, so a
module can always be understood — and tested — from the modules below it. Function-local
imports count: a cycle deferred to call time is still a cycle.
"""

from __future__ import annotations

import grimp

from tests.support.graphs import strongly_connected

PACKAGES = (
    "castiel",
    "integrations",
    "credentials",
    "ratelimit",
    "webhooks",
    "syncing",
    "sandbox",
    "notifications",
    "console",
)


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES)
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    cycles = [sorted(group) for group in strongly_connected(edges) if len(group) > 1]
    assert cycles == [], f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, strongly_connected(edges))) == [["a", "b", "c"], ["d"]]
