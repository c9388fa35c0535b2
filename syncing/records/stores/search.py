"""What shows a record to a person, and searching records by it.

Each provider's catalogue entry (or an integration's ``config.display_fields``) names display
fields per entity type (``ProviderInfo.display_fields``): the record list, the record page's
title, the API's ``display`` and search use them. Search (``?q=``) looks for every word of the
query, case-insensitively, in those fields of the records' data — on the ORM store, with one
JSON key lookup per field. The Cosmos DB store does not search (``supports_search`` is false):
the API answers 400 and the admin says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db.models import Q

from integrations.providers import registry
from integrations.providers.base import (
    FALLBACK_DISPLAY_FIELDS,
    ProviderInfo,
    display_paths,
    display_values,
)

SEARCH_UNSUPPORTED = "search is not supported with the {store} record store"
MAX_TERMS = 8


def _provider(slug: str) -> ProviderInfo | None:
    try:
        return registry.get(slug)
    except registry.UnknownProvider:  # a row whose provider folder was removed
        return None


def display_fields(integration, entity_type: str) -> tuple[str, ...]:
    provider = _provider(integration.provider) if integration is not None else None
    config = getattr(integration, "config", None) or {}
    if provider is None:
        configured = (config.get("display_fields") or {}).get(entity_type)
        return tuple(configured) if isinstance(configured, list | tuple) else ()
    return provider.display_fields_for(entity_type, config)


def display(record, integration) -> dict:
    """``{"title", "fields": {entry: text}}`` of one record (title: the first value found;
    the external id when the record has none of its display fields)."""
    values = display_values(display_fields(integration, record.entity_type), record.data or {})
    title = values[0][1] if values else (record.external_id or str(record.pk))
    return {"title": title, "fields": dict(values)}


def search_paths(integrations=None) -> list[str]:
    """Every data path a search looks in: each catalogue entry's display fields, those the
    integrations configure (default: every integration that configures some) and the
    fallbacks."""
    from integrations.models import Integration

    paths = set(display_paths(FALLBACK_DISPLAY_FIELDS))
    for provider in registry.all_providers():
        for entries in provider.display_fields.values():
            paths |= display_paths(entries)
    if integrations is None:
        integrations = Integration.objects.filter(config__has_key="display_fields")
    for config in integrations.values_list("config", flat=True):
        configured = (config or {}).get("display_fields") or {}
        if isinstance(configured, dict):
            for entries in configured.values():
                if isinstance(entries, list | tuple):
                    paths |= display_paths(e for e in entries if isinstance(e, str))
    return sorted(paths)


def orm_filter(query: str, paths: Iterable[str]) -> Q:
    """Records whose display fields contain every word of ``query`` (each word in any field)."""
    lookups = [f"data__{path.replace('.', '__')}__icontains" for path in paths]
    terms = query.split()[:MAX_TERMS]
    if not terms or not lookups:
        return Q()
    return reduce(
        lambda a, b: a & b,
        (reduce(or_, (Q(**{lookup: term}) for lookup in lookups)) for term in terms),
    )
