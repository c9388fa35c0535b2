"""Field diffs between versions of a record's data: the one two-way diff (history, local
edits, pushes to queue) and the three-way "changed on both sides" test (conflicts)."""

from __future__ import annotations

_MISSING = object()


def changed_fields(before: dict, after: dict) -> list[str]:
    """Fields whose value differs between ``before`` and ``after``, sorted (a field missing
    on one side counts as ``None``)."""
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def conflicting_fields(base: dict, local: dict, remote: dict) -> list[str]:
    """Fields changed on both sides since ``base``, to different values, sorted (here a
    missing field differs from ``None``)."""
    both = []
    for name in sorted(set(base) | set(local) | set(remote)):
        b, lo, r = base.get(name, _MISSING), local.get(name, _MISSING), remote.get(name, _MISSING)
        if lo != b and r != b and lo != r:
            both.append(name)
    return both
