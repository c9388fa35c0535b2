"""Recurring work, declared in code and written to django-q2's schedule table idempotently.

Apps declare their schedules with :func:`declare` in their ``schedules`` module (found in
every installed app, like ``admin`` modules). :func:`ensure_schedules` runs after every
``migrate`` (post_migrate) and from ``manage.py ensure_schedules``: it creates missing
schedules, updates changed ones, and deletes Castiel schedules no longer declared. Operators
never create these by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.module_loading import autodiscover_modules

from castiel.queue import cluster_for

PREFIX = "castiel:"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int
    kind: str = "maintenance"


_declared: dict[str, ScheduleSpec] = {}


def declare(name: str, func: str, *, minutes: int, kind: str = "maintenance") -> None:
    if minutes < 1:
        raise ValueError("django-q2 schedules run at most once a minute")
    _declared[name] = ScheduleSpec(name=name, func=func, minutes=minutes, kind=kind)


def declared() -> dict[str, ScheduleSpec]:
    autodiscover_modules("schedules")
    return dict(_declared)


def ensure_schedules(*, using: str = "default") -> dict[str, int]:
    from django_q.models import Schedule

    specs = declared()
    schedules = Schedule.objects.using(using)
    created = updated = 0
    for spec in specs.values():
        fields = {
            "func": "castiel.queue.run",
            "args": repr((spec.func, None, [], {})),
            "schedule_type": Schedule.MINUTES,
            "minutes": spec.minutes,
            "repeats": -1,
            "cluster": cluster_for(spec.kind) if _split() else None,
        }
        obj, was_created = schedules.get_or_create(name=PREFIX + spec.name, defaults=fields)
        if was_created:
            created += 1
            continue
        changed = [k for k, v in fields.items() if getattr(obj, k) != v]
        if changed:
            for key in changed:
                setattr(obj, key, fields[key])
            obj.save(update_fields=changed)
            updated += 1
    stale = schedules.filter(name__startswith=PREFIX).exclude(
        name__in=[PREFIX + name for name in specs]
    )
    deleted, _ = stale.delete()
    return {"created": created, "updated": updated, "deleted": deleted}


def missing() -> list[str]:
    """Declared schedules with no row: recurring work that never starts."""
    from django_q.models import Schedule

    names = {PREFIX + name for name in declared()}
    present = set(Schedule.objects.filter(name__in=names).values_list("name", flat=True))
    return sorted(names - present)


MISSING_HINT = "run manage.py migrate (or manage.py ensure_schedules)"


def health_check() -> tuple[str, str]:
    """``/healthz``: every declared schedule exists (else scheduled syncs, token refresh,
    reapers and retention never run)."""
    absent = missing()
    if absent:
        return "fail", f"missing recurring schedule(s): {', '.join(absent)}; {MISSING_HINT}"
    return "ok", f"{len(_declared)} recurring schedules"


def _split() -> bool:
    from django.conf import settings

    return bool(settings.Q_CLUSTER.get("ALT_CLUSTERS"))
