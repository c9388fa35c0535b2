"""Conflict resolution: both the local copy and the remote changed since the last sync.

"Changed" is measured against the record's *base* — the remote version stored at the last
sync — so a conflict is ``local != base`` and ``remote != base`` and ``local != remote``.

When no *field* changed on both sides to different values (each side edited other fields,
or both made the same edit — our own push seen again before its answer was recorded), the
three-way merge loses nothing: every strategy takes it, winner ``merged`` with no conflicting
fields, and no operator is asked about it. The strategies decide real conflicts only
(per task, ``SyncTask.conflict_strategy`` + ``conflict_config``):

* ``remote_wins`` / ``local_wins``: that side's value for every field changed on both sides;
  a field only one side changed keeps that change (an e-mail edited locally survives a
  remote win on the phone number — nothing is lost that did not conflict).
* ``last_write_wins``: the later of the local edit time and the remote updated-at wins the
  conflicting fields; within ``skew_seconds`` (default 5) the clocks cannot be trusted to
  order them, so the configured ``tie`` side wins (``remote`` by default). A missing
  timestamp is a tie.
* ``field_merge``: three-way per field against the base: a field changed on one side takes
  that side; changed on both sides to different values goes to ``fields[name]`` or
  ``default`` (``remote``, ``local`` or ``manual``).
* ``manual``: no automatic answer; a ``Conflict`` row is opened and the record is untouched.

Everything here is pure (dicts in, decision out), so it is tested table-driven.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from syncing.records.diff import conflicting_fields

SIDES = ("remote", "local")
_MISSING = object()


class ConflictConfigError(ValueError):
    pass


@dataclass
class Resolution:
    data: dict | None  # None: needs an operator (manual)
    winner: str  # remote | local | merged | manual
    fields: list[str] = field(default_factory=list)  # fields changed on both sides


def validate_config(strategy: str, config: dict | None) -> dict:
    config = config or {}
    if not isinstance(config, dict):
        raise ConflictConfigError("conflict config must be an object")
    if strategy == "last_write_wins":
        skew = config.get("skew_seconds", 5)
        if not isinstance(skew, int | float) or isinstance(skew, bool) or skew < 0:
            raise ConflictConfigError("skew_seconds must be a number ≥ 0")
        if config.get("tie", "remote") not in SIDES:
            raise ConflictConfigError("tie must be 'remote' or 'local'")
    elif strategy == "field_merge":
        if config.get("default", "remote") not in (*SIDES, "manual"):
            raise ConflictConfigError("default must be 'remote', 'local' or 'manual'")
        fields = config.get("fields", {})
        if not isinstance(fields, dict) or any(
            v not in (*SIDES, "manual") for v in fields.values()
        ):
            raise ConflictConfigError("fields must map field names to remote, local or manual")
    elif strategy not in ("remote_wins", "local_wins", "manual"):
        raise ConflictConfigError(f"unknown conflict strategy {strategy!r}")
    return config


def resolve(
    strategy: str,
    *,
    base: dict,
    local: dict,
    remote: dict,
    local_updated_at: datetime | None,
    remote_updated_at: datetime | None,
    config: dict | None = None,
) -> Resolution:
    config = validate_config(strategy, config)
    both = conflicting_fields(base, local, remote)
    if not both:
        merged, _manual = _field_merge(base, local, remote, {}, "remote")
        return Resolution(merged, "merged", [])
    if strategy == "manual":
        return Resolution(None, "manual", both)
    if strategy in ("remote_wins", "local_wins", "last_write_wins"):
        side = (
            _later_side(local_updated_at, remote_updated_at, config)
            if strategy == "last_write_wins"
            else strategy.removesuffix("_wins")
        )
        merged, _manual = _field_merge(base, local, remote, {}, side)
        return Resolution(merged, side, both)
    # field_merge
    merged, manual = _field_merge(
        base, local, remote, config.get("fields", {}), config.get("default", "remote")
    )
    if manual:
        return Resolution(None, "manual", both)
    return Resolution(merged, "merged", both)


def _later_side(local_updated_at, remote_updated_at, config: dict) -> str:
    skew = float(config.get("skew_seconds", 5))
    tie = config.get("tie", "remote")
    if local_updated_at is None or remote_updated_at is None:
        return tie
    delta = (remote_updated_at - local_updated_at).total_seconds()
    return tie if abs(delta) <= skew else ("remote" if delta > 0 else "local")


def _field_merge(base, local, remote, per_field: dict, default: str) -> tuple[dict, list[str]]:
    """Three-way merge per field; fields changed on both sides go to ``per_field[name]`` or
    ``default`` (``manual`` ones are listed and keep the local value)."""
    merged: dict = {}
    manual: list[str] = []
    for name in sorted(set(base) | set(local) | set(remote)):
        b, lo, r = base.get(name, _MISSING), local.get(name, _MISSING), remote.get(name, _MISSING)
        if lo == r or r == b:
            value = lo
        elif lo == b:
            value = r
        else:
            side = per_field.get(name, default)
            if side == "manual":
                manual.append(name)
                value = lo
            else:
                value = r if side == "remote" else lo
        if value is not _MISSING:
            merged[name] = value
    return merged, manual
