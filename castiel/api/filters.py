"""Shared pieces of the API's django-filter FilterSets.

Related objects are filtered by id with :func:`id_filter` (a UUID compared in SQL), never
with django-filter's default ``ModelChoiceFilter``: that validates the id against every
row of the table, so ``?integration=<another tenant's id>`` would answer 200 (empty) where
an unknown id answers 400 — telling a caller which ids exist in other tenants. The viewset's
queryset is tenant-scoped already, so a foreign id simply matches nothing.
"""

from __future__ import annotations

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


def id_filter(field_name: str, help_text: str = "") -> django_filters.UUIDFilter:
    return django_filters.UUIDFilter(field_name=field_name, help_text=help_text or None)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC before it reaches the database.

    ISO 8601 allows offsets up to ±23:59; PostgreSQL refuses anything beyond ±15:59 (a 500
    for ``?created_after=2025-01-01T00:00:00+17:00``). In UTC every offset is fine, and a
    time that leaves the representable range on conversion is a 400, not a crash.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


def after(field_name: str) -> UtcDateTimeFilter:
    return UtcDateTimeFilter(
        field_name=field_name, lookup_expr="gte", help_text=f"{field_name} ≥ this ISO 8601 time"
    )


def before(field_name: str) -> UtcDateTimeFilter:
    return UtcDateTimeFilter(
        field_name=field_name, lookup_expr="lt", help_text=f"{field_name} < this ISO 8601 time"
    )
