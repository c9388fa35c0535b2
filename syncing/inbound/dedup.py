"""Deduplication: which stored record (if any) an incoming remote record is.

Every strategy first matches by the record's own external id (the stable uuid5). A record
that is new by id may still be a duplicate of a stored record — or of another new record on
the same page — by the strategy's *match keys*:

* ``external_id``: no keys; only repeats of the same id collapse.
* ``composite_key``: one key from configured fields (``{"fields": ["email", "company"]}``).
* ``normalized_match``: one key per rule, tried in order — ``email`` (case/whitespace),
  ``phone`` (E.164 via ``phonenumbers``), ``domain`` (company web domain); config
  ``{"rules": [{"rule": "email", "field": "email"}, {"rule": "phone", "field": "phone",
  "region": "US"}]}``.
* ``content_hash``: identical content (ignoring id/updated-at fields) collapses.

Failure modes, deliberately: a key carried by two or more distinct stored records is
*ambiguous* and never merges anything (recorded as ``ambiguous:<rule>``, next rule tried), so a
shared mailbox never glues two customers together; records that already exist under their
own id are never re-matched by key. Every decision records the rule that matched, and the
run sums them in ``SyncRun.dedup_rules``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from integrations.adapters.normalize import normalize_domain, normalize_email, normalize_phone
from integrations.adapters.pagination import dig
from syncing.records.hashing import canonical_json, content_hash
from syncing.records.stores.base import RecordStore, Scope, StoredRecord


class DedupConfigError(ValueError):
    pass


@dataclass
class Incoming:
    """One remote record after mapping."""

    position: int
    external_id: str
    record_id: UUID
    data: dict
    content_hash: str
    remote_updated_at: datetime | None
    deleted: bool
    match_keys: list[str] = field(default_factory=list)
    remote_version: str = ""
    # The provider says Castiel's own integration user made this version (our own write).
    by_self: bool = False
    data_json: str | None = None  # ``data`` as the canonical JSON its content hash is of

    def newer_than(self, other: Incoming) -> bool:
        """Latest remote update wins; on a tie (or no timestamps) the later position wins."""
        mine, theirs = self.remote_updated_at, other.remote_updated_at
        if mine and theirs and mine != theirs:
            return mine > theirs
        return self.position > other.position


@dataclass
class Decision:
    incoming: Incoming  # the winning remote version for the target
    existing: StoredRecord | None  # the stored record it lands on (None: create)
    target_id: UUID
    rule: str  # which rule matched: external_id, email, composite, content, new, …
    duplicates: int = 0  # other incoming records collapsed into this one
    external_id: str = ""  # the target's external id (the first seen, for new targets)

    def __post_init__(self):
        if not self.external_id:
            self.external_id = (
                self.existing.external_id if self.existing else self.incoming.external_id
            )


class Strategy:
    name = "external_id"
    # Whether records may match by keys (then finding them needs the key index, not only a
    # unique violation on the record's own id or external id).
    uses_keys = False

    def __init__(self, config: dict | None, *, identity_fields: tuple[str, ...] = ()):
        self.config = config or {}
        self.identity_fields = identity_fields
        if not isinstance(self.config, dict):
            raise DedupConfigError("dedup config must be an object")
        self.validate()

    def validate(self) -> None:
        pass

    def keys(self, data: dict) -> list[str]:
        return []


class ExternalIdStrategy(Strategy):
    name = "external_id"


class CompositeKeyStrategy(Strategy):
    name = "composite_key"
    uses_keys = True

    def validate(self):
        fields = self.config.get("fields")
        if (
            not isinstance(fields, list)
            or not fields
            or not all(isinstance(f, str) and f for f in fields)
        ):
            raise DedupConfigError("composite_key needs 'fields': a non-empty list of field names")
        self.fields = fields
        self.case_insensitive = bool(self.config.get("case_insensitive", True))

    def keys(self, data):
        values = []
        for name in self.fields:
            value = dig(data, name)
            if value in (None, ""):
                return []  # an incomplete key matches nothing
            if isinstance(value, str):
                value = " ".join(value.split())
                if self.case_insensitive:
                    value = value.casefold()
            values.append(value)
        return ["composite:" + canonical_json(values)]


_NORMALIZERS = {
    "email": lambda value, rule: normalize_email(value),
    "phone": lambda value, rule: normalize_phone(value, rule.get("region") or "US"),
    "domain": lambda value, rule: normalize_domain(value),
}
DEFAULT_RULES = [{"rule": "email", "field": "email"}, {"rule": "phone", "field": "phone"}]


class NormalizedMatchStrategy(Strategy):
    name = "normalized_match"
    uses_keys = True

    def validate(self):
        rules = self.config.get("rules", DEFAULT_RULES)
        if not isinstance(rules, list) or not rules:
            raise DedupConfigError("normalized_match needs 'rules': a non-empty list")
        for rule in rules:
            if not isinstance(rule, dict) or rule.get("rule") not in _NORMALIZERS:
                raise DedupConfigError(
                    f"each rule needs 'rule' (one of {', '.join(_NORMALIZERS)}) and 'field'"
                )
            if not isinstance(rule.get("field"), str) or not rule["field"]:
                raise DedupConfigError(f"rule {rule['rule']!r} needs a 'field'")
        self.rules = rules

    def keys(self, data):
        keys = []
        for rule in self.rules:
            normalized = _NORMALIZERS[rule["rule"]](dig(data, rule["field"]), rule)
            if normalized:
                keys.append(f"{rule['rule']}:{normalized}")
        return keys


class ContentHashStrategy(Strategy):
    name = "content_hash"
    uses_keys = True

    def validate(self):
        ignore = self.config.get("ignore_fields")
        if ignore is not None and (
            not isinstance(ignore, list) or not all(isinstance(f, str) for f in ignore)
        ):
            raise DedupConfigError("content_hash 'ignore_fields' must be a list of field names")
        self.ignore = set(ignore if ignore is not None else self.identity_fields)

    def keys(self, data):
        return ["content:" + content_hash({k: v for k, v in data.items() if k not in self.ignore})]


STRATEGIES = {
    cls.name: cls
    for cls in (
        ExternalIdStrategy,
        CompositeKeyStrategy,
        NormalizedMatchStrategy,
        ContentHashStrategy,
    )
}


def strategy_for(name: str, config: dict | None, *, identity_fields=()) -> Strategy:
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise DedupConfigError(f"unknown dedup strategy {name!r}") from None
    return cls(config, identity_fields=identity_fields)


def rule_of(key: str) -> str:
    return key.split(":", 1)[0]


def deduplicate(
    incoming: list[Incoming],
    *,
    store: RecordStore,
    scope: Scope,
    lock: bool = True,
    assume_new: bool = False,
) -> tuple[list[Decision], Counter]:
    """Group a page's records onto targets (stored records or new ones).

    Returns one decision per target and a count of the rules that matched. ``assume_new``
    skips the store: every target is new (the caller writes them as creates, which the store
    refuses if one exists after all — see ``PagePipeline.apply``).
    """
    rules: Counter = Counter()
    # 1. Same external id repeated on the page (offset pages shifting, retries): keep newest.
    by_id: dict[UUID, Incoming] = {}
    repeats: Counter = Counter()
    for item in incoming:
        current = by_id.get(item.record_id)
        if current is not None:
            repeats[item.record_id] += 1
            if item.newer_than(current):
                by_id[item.record_id] = item
        else:
            by_id[item.record_id] = item
    if assume_new:
        rules["new"] = len(by_id)
        return [Decision(i, None, rid, "new", repeats[rid]) for rid, i in by_id.items()], rules
    existing = store.get_many(scope, list(by_id), lock=lock)
    # A record created locally keeps the id it had before the provider named it (see
    # syncing/outbound/local_changes.py): its external id, not its uuid, is how the pull finds
    # it.
    renamed: dict[UUID, StoredRecord] = {}
    unknown = [i for rid, i in by_id.items() if rid not in existing]
    if unknown:
        by_external = store.find_by_external_ids(scope, [i.external_id for i in unknown], lock=lock)
        for item in unknown:
            record = by_external.get(item.external_id)
            if record is not None:
                renamed[item.record_id] = record

    # 2. New-by-id records may match stored ones (or earlier new ones) by key.
    candidates = [i for rid, i in by_id.items() if rid not in existing and rid not in renamed]
    stored_by_key = store.find_by_keys(scope, {k for i in candidates for k in i.match_keys})
    extra_ids = {rid for ids in stored_by_key.values() for rid in ids} - set(existing)
    if extra_ids:
        existing.update(store.get_many(scope, extra_ids, lock=lock))

    decisions: dict[UUID, Decision] = {}
    for rid, item in by_id.items():
        if rid in existing:
            decisions[rid] = Decision(item, existing[rid], rid, "external_id", repeats[rid])
            rules["external_id"] += 1
        elif rid in renamed:
            record = renamed[rid]
            decisions[record.id] = Decision(item, record, record.id, "external_id", repeats[rid])
            rules["external_id"] += 1
    page_keys: dict[str, UUID] = {}  # key → target id of a new record earlier on this page
    for item in candidates:
        target, rule = None, "new"
        for key in item.match_keys:
            stored = stored_by_key.get(key, set())
            if len(stored) > 1:
                rules[f"ambiguous:{rule_of(key)}"] += 1
                continue
            if len(stored) == 1:
                target, rule = next(iter(stored)), rule_of(key)
                break
            if key in page_keys:
                target, rule = page_keys[key], rule_of(key)
                break
        rules[rule] += 1
        if target is None:
            target = item.record_id
            decisions[target] = Decision(item, None, target, "new", repeats[item.record_id])
            for key in item.match_keys:
                page_keys.setdefault(key, target)
            continue
        decision = decisions.get(target)
        if decision is None:
            decisions[target] = Decision(
                item, existing.get(target), target, rule, 1 + repeats[item.record_id]
            )
        else:
            decision.duplicates += 1 + repeats[item.record_id]
            if item.newer_than(decision.incoming):
                decision.incoming = item
    return list(decisions.values()), rules
