"""Small display helpers shared by the apps' admin modules (links, JSON, badges, durations).

Everything returns safe HTML built with ``format_html`` (values are escaped), so admin
columns can show them directly.
"""

from __future__ import annotations

import json

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

# Status values → badge colour class (castiel/static/castiel/admin.css).
BADGE_CLASSES = {
    "ok": (
        "active",
        "succeeded",
        "processed",
        "accepted",
        "refreshed",
        "resolved",
        "replayed",
        "idle",
        "created",
    ),
    "running": ("running", "queued", "processing", "received", "pending", "retrying"),
    "warn": (
        "deferred",
        "paused",
        "expiring",
        "skipped",
        "ignored",
        "duplicate",
        "conflict",
        "open",
        "superseded",
        "transient_error",
        "updated",
        "restored",
    ),
    "bad": (
        "failed",
        "lost",
        "error",
        "reauth_required",
        "revoked",
        "rejected",
        "dead",
        "discarded",
        "deleted",
    ),
}
_CLASS_OF = {value: css for css, values in BADGE_CLASSES.items() for value in values}


def badge(value: str, label: str | None = None) -> SafeString:
    """A status badge; ``value`` is a status (coloured by BADGE_CLASSES) or a tone itself."""
    css = value if value in BADGE_CLASSES else _CLASS_OF.get(value, "plain")
    return format_html('<span class="castiel-badge castiel-{}">{}</span>', css, label or value)


def admin_url(app_label: str, model: str, pk) -> str | None:
    try:
        return reverse(f"admin:{app_label}_{model}_change", args=[pk])
    except NoReverseMatch:
        return None


def link(app_label: str, model: str, pk, label) -> SafeString | str:
    url = admin_url(app_label, model, pk) if pk else None
    if not url:
        return format_html("{}", label)
    return format_html('<a href="{}">{}</a>', url, label)


def changelist_link(app_label: str, model: str, label, **filters) -> SafeString:
    from urllib.parse import urlencode

    url = reverse(f"admin:{app_label}_{model}_changelist")
    if filters:
        url += "?" + urlencode(filters)
    return format_html('<a href="{}">{}</a>', url, label)


def pretty_json(value, *, limit: int = 20_000) -> SafeString:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > limit:
        text = text[:limit] + "\n…"
    return format_html('<pre class="castiel-json">{}</pre>', text)


def short_json(value, *, limit: int = 120) -> str:
    """One line of JSON for a table cell (strings without their quotes)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def progress(value: int, estimate: int | None, label: str) -> SafeString:
    """A native ``<progress>``: a share of ``estimate`` when known (capped below 100 %, as
    an estimate can be short), indeterminate (animated) otherwise."""
    if estimate:
        share = min(0.99, value / estimate)
        return format_html(
            '<progress class="castiel-progress" max="100" value="{}" title="{}"></progress> '
            '<span class="castiel-progress-label">{}</span>',
            f"{share * 100:.0f}",
            f"about {share:.0%} of the last complete run",
            label,
        )
    return format_html(
        '<progress class="castiel-progress" title="running"></progress> '
        '<span class="castiel-progress-label">{}</span>',
        label,
    )


# -- compact list cells ------------------------------------------------------------------------
# A change list has to fit beside the navigation sidebar and the filter column (about 700 px
# at 1280 px wide): long values are cut with the whole value on hover (and for screen readers
# in the title), secondary facts go on a second, quieter line of the same cell.


def truncate(value, limit: int = 32) -> SafeString | str:
    """``value`` cut to ``limit`` characters; the whole value in the title attribute."""
    if value in (None, ""):
        return "—"
    text = str(value)
    if len(text) <= limit:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: limit - 1])


def two_lines(main, secondary=None) -> SafeString:
    """A cell's main value and, below it, a quieter secondary one (tenant, external id …)."""
    if secondary in (None, ""):
        return format_html("{}", main)
    return format_html('{}<div class="castiel-sub">{}</div>', main, secondary)


def when(value) -> SafeString | str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (local time), the exact time on hover."""
    if value is None:
        return "—"
    from django.utils import timezone

    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" title="{}" class="castiel-when">{}</time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        local.strftime("%Y-%m-%d %H:%M"),
    )


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 task``, ``3 tasks``: the counts in action messages."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
