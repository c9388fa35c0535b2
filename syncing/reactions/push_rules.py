"""Push rules: a webhook about one integration's record writes a record of another.

``push.evaluate_rules`` (registered in ``SyncingConfig.ready()``) is the webhook action behind
every routed event (``webhooks.routing``: ``auto`` routes end with it). For each enabled
:class:`~syncing.models.PushRule` of the event's integration and entity type whose
``event_types`` match, the event's payload is mapped with the rule's ``field_mapping``
(target local field → source path; the sync tasks' mapping language,
:class:`integrations.adapters.mapping.FieldMapping`), the target record is found by
``match_field`` and updated — or created when none matches and ``create_missing`` is on —
through :mod:`syncing.outbound.local_changes` with ``origin="rule"``. The outbox row commits
with the record, so the change is pushed to the target provider exactly like an API or admin edit.

Idempotent, as webhook actions must be: a replayed or retried event maps to the same data, so
the update changes nothing and queues no push; a record created by an earlier run is found by
its match key. Evaluations of one rule are serialised (row lock on the rule, and SQLite
serialises writers), so two deliveries of a new key cannot both create it.

Outcomes per rule: ``created``, ``updated``, ``unchanged``, ``no_match`` (nothing matched and
``create_missing`` is off), ``skipped`` (a deletion: rules never delete). Without rules the
action answers ``{"outcome": "no_rules"}`` and the event is processed, not failed. A payload
the mapping cannot use, no value for the match field, or several records with the same key
(ambiguous: nothing is written, as dedup does) fail the event with the reason — after the
other rules were applied.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from django.db import transaction
from django.utils import timezone

from castiel.observability.logging import get_logger
from integrations.adapters.mapping import FieldMapping, MappingError, RecordMappingError
from syncing.models import OutboundChange, PushRule, Record
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope

log = get_logger(__name__)

ACTION = "push.evaluate_rules"
EXTERNAL_ID = "external_id"
# A top-level field name (it becomes a JSON key lookup on the ORM store; "__" would split it).
MATCH_FIELD = re.compile(r"^(?!.*__)[A-Za-z_][A-Za-z0-9_\-]{0,99}$")


class RuleError(Exception):
    """This rule cannot be applied to this event; retrying cannot help."""

    retryable = False


class RuleRetry(Exception):
    """A transient clash (the target record changed while it was written): retry later."""

    retryable = True


# -- configuration -----------------------------------------------------------------------------


def push_rule_config_errors(
    *,
    source_integration,
    source_entity_type: str,
    event_types,
    target_integration,
    target_entity_type: str,
    field_mapping,
    match_field: str,
) -> dict[str, str]:
    """Everything a rule's configuration can get wrong, as field errors."""
    errors: dict[str, str] = {}
    mapping = None
    try:
        mapping = FieldMapping(field_mapping)
    except MappingError as exc:
        errors["field_mapping"] = str(exc)
    if not isinstance(event_types, list) or not all(isinstance(p, str) and p for p in event_types):
        errors["event_types"] = "A list of event type patterns (e.g. contacts.*)."
    if not MATCH_FIELD.match(match_field or ""):
        errors["match_field"] = "A top-level field name (letters, digits, _ and -)."
    elif mapping is not None and not mapping.is_identity and match_field != EXTERNAL_ID:
        if match_field not in (field_mapping or {}):
            errors["match_field"] = "The field mapping must produce this field."
    if (
        source_integration is not None
        and target_integration is not None
        and source_integration.pk == target_integration.pk
        and source_entity_type == target_entity_type
    ):
        errors["target_entity_type"] = (
            "A rule cannot write the records it listens to (source and target are the same)."
        )
    if target_integration is not None:
        provider = target_integration.provider_info
        if not provider.adapter:
            errors["target_integration"] = f"provider {provider.slug!r} cannot be pushed to"
        elif provider.entity_types and target_entity_type not in provider.entity_types:
            errors["target_entity_type"] = (
                f"{provider.name} has {', '.join(provider.entity_types)}, "
                f"not {target_entity_type!r}"
            )
    return errors


def rule_matches(rule: PushRule, event_type: str) -> bool:
    patterns = rule.event_types or []
    return not patterns or any(fnmatchcase(event_type, p) for p in patterns)


# -- the webhook action ------------------------------------------------------------------------


def evaluate_rules(event, context) -> dict:
    """``push.evaluate_rules``: apply every matching rule (see the module docstring)."""
    if not context.integration_id or not event.entity_type:
        return {"outcome": "no_rules"}
    rules = [
        rule
        for rule in PushRule.objects.filter(
            tenant_id=context.tenant_id,
            source_integration_id=context.integration_id,
            source_entity_type=event.entity_type,
            enabled=True,
        )
        .select_related("tenant", "target_integration")
        .order_by("name")
        if rule_matches(rule, event.type)
    ]
    if not rules:
        return {"outcome": "no_rules"}
    results, errors = [], []
    for rule in rules:
        try:
            result = apply_rule(rule, event)
        except RuleError as exc:
            _note(rule, f"error: {exc}")
            errors.append(f"rule {rule.name!r}: {exc}")
            results.append({"rule": str(rule.pk), "outcome": "error", "error": str(exc)})
            continue
        results.append({"rule": str(rule.pk), **result})
    if errors:
        # The other rules were applied (and are idempotent on a replay); the event fails with
        # the reason so an operator sees it.
        raise RuleError("; ".join(errors))
    return {"outcome": "applied", "rules": results}


def apply_rule(rule: PushRule, event) -> dict:
    """Apply one rule to one normalised event: {"outcome", "record"?, "change"?}."""
    # Nothing is written for a deactivated tenant or into a disabled integration (its push
    # would only wait): the rule says why it skipped, in the event's actions.
    if not rule.tenant.is_active:
        _note(rule, "skipped: the tenant is deactivated")
        return {"outcome": "skipped", "reason": "the tenant is deactivated"}
    if not rule.target_integration.enabled:
        _note(rule, "skipped: the target integration is disabled")
        return {"outcome": "skipped", "reason": "the target integration is disabled"}
    if event.deleted:
        _note(rule, "skipped: a deletion")
        return {"outcome": "skipped", "reason": "rules do not delete"}
    try:
        data = FieldMapping(rule.field_mapping).apply(event.payload or {})
    except (MappingError, RecordMappingError) as exc:
        raise RuleError(f"cannot map the payload: {exc}") from None
    key = event.external_id if rule.match_field == EXTERNAL_ID else data.get(rule.match_field)
    if key is None or key == "":
        raise RuleError(f"the mapped record has no {rule.match_field!r}")
    actor = f"rule:{rule.name}"[:200]
    with transaction.atomic():
        # One evaluation of a rule at a time: two deliveries of a new key must not both
        # create it (SQLite has no row locks but serialises writers anyway).
        PushRule.objects.select_for_update().filter(pk=rule.pk).first()
        matches = find_targets(rule, key)
        if len(matches) > 1:
            raise RuleError(
                f"{len(matches)} {rule.target_entity_type} records have "
                f"{rule.match_field} = {key!r}; nothing was written (ambiguous)"
            )
        try:
            if matches:
                change = local_changes.record_update(
                    tenant_id=rule.tenant_id,
                    record_id=matches[0],
                    data=data,
                    origin=OutboundChange.Origin.RULE,
                    actor=actor,
                )
                outcome = "updated" if change.change is not None else "unchanged"
            elif rule.create_missing:
                change = local_changes.record_create(
                    integration=rule.target_integration,
                    entity_type=rule.target_entity_type,
                    data=data,
                    origin=OutboundChange.Origin.RULE,
                    actor=actor,
                )
                outcome = "created"
            else:
                _note(rule, "no_match")
                return {"outcome": "no_match"}
        except local_changes.RecordChangeError as exc:
            if exc.status == 409:
                raise RuleRetry(str(exc)) from None
            raise RuleError(str(exc)) from None
        _note(rule, outcome)
    log.info(
        "rules.applied",
        rule_id=str(rule.pk),
        outcome=outcome,
        record_id=str(change.record.id),
        event_type=event.type,
    )
    result = {"outcome": outcome, "record": str(change.record.id)}
    if change.change is not None:
        result["change"] = str(change.change.pk)
    return result


def find_targets(rule: PushRule, key) -> list:
    """Ids of the live target records whose match field equals ``key`` (strings compare
    case-insensitively). The ORM store answers with one indexed-scope query; other stores
    are scanned (they have no query on record data)."""
    scope = Scope(rule.tenant_id, rule.target_integration_id, rule.target_entity_type)
    store = get_store()
    if rule.match_field == EXTERNAL_ID:
        found = store.find_by_external_ids(scope, [str(key)]).get(str(key))
        return [found.id] if found is not None and found.deleted_at is None else []
    if _is_orm(store):
        lookup = f"data__{rule.match_field}" + ("__iexact" if isinstance(key, str) else "")
        return list(
            Record.objects.filter(
                tenant_id=rule.tenant_id,
                integration_id=rule.target_integration_id,
                entity_type=rule.target_entity_type,
                deleted_at__isnull=True,
                **{lookup: key},
            ).values_list("id", flat=True)[:2]
        )
    wanted = _normal(key)
    return [
        record.id
        for record in store.iter_scope(scope)
        if _normal(record.data.get(rule.match_field)) == wanted
    ][:2]


def _is_orm(store) -> bool:
    from syncing.records.stores.orm import OrmRecordStore

    return isinstance(store, OrmRecordStore)


def _normal(value):
    return value.strip().lower() if isinstance(value, str) else value


def _note(rule: PushRule, outcome: str) -> None:
    PushRule.objects.filter(pk=rule.pk).update(
        last_fired_at=timezone.now(), last_outcome=outcome[:200]
    )


def register() -> None:
    from webhooks.routing import EVALUATE_RULES, register_action

    assert EVALUATE_RULES == ACTION
    register_action(ACTION, evaluate_rules)
