"""Shared pieces of the API's django-filter FilterSets.

Related objects are filtered by id with :func:`id_filter` (a UUID compared in SQL), never
with django-filter's default ``ModelChoiceFilter``: that validates the id against every
row of the table, so ``?integration=<another tenant's id>`` would answer 200 (empty) where
an unknown id answers 400 — telling a caller which ids exist in other tenants. The viewset's
queryset is tenant-scoped already, so a foreign id simply matches nothing.
"""

from __future__ import annotations

import django_filters


def id_filter(field_name: str, help_text: str = "") -> django_filters.UUIDFilter:
    return django_filters.UUIDFilter(field_name=field_name, help_text=help_text or None)


def after(field_name: str) -> django_filters.IsoDateTimeFilter:
    return django_filters.IsoDateTimeFilter(
        field_name=field_name, lookup_expr="gte", help_text=f"{field_name} ≥ this ISO 8601 time"
    )


def before(field_name: str) -> django_filters.IsoDateTimeFilter:
    return django_filters.IsoDateTimeFilter(
        field_name=field_name, lookup_expr="lt", help_text=f"{field_name} < this ISO 8601 time"
    )
