"""The operations dashboard: an admin page, its self-refreshing panels, and the figures as JSON.

The page polls its own panels (``?fragment=1``: the same server-rendered HTML and SVG) every
``REFRESH_SECONDS`` with a few lines of inline JavaScript, and falls back to a meta refresh
without JavaScript. ``data/`` serves the same figures as JSON for scripts and monitoring.
"""

from __future__ import annotations

import uuid

from django.contrib.admin import site
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from console.dashboard import charts, selectors
from console.dashboard.charts import COLOURS, Bar

REFRESH_SECONDS = 15
TENANT_CHOICES = 500


def _check(request) -> None:
    # Cross-tenant figures: for operators who may read sync runs (superusers included).
    if not request.user.has_perm("syncing.view_syncrun"):
        raise PermissionDenied


def _tenant_id(request):
    raw = request.GET.get("tenant") or ""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def dashboard(request):
    _check(request)
    tenant_id = _tenant_id(request)
    figures = selectors.figures(tenant_id=tenant_id)
    context = {
        **panels(figures),
        "refresh_seconds": REFRESH_SECONDS,
        "tenant_id": str(tenant_id) if tenant_id else "",
    }
    if request.GET.get("fragment"):
        template = "admin/dashboard/panels.html"
    else:
        from castiel.tenancy.models import Tenant

        template = "admin/dashboard/index.html"
        context.update(
            site.each_context(request),
            title="Operations dashboard",
            is_nav_sidebar_enabled=False,  # the charts want the width
            tenants=list(
                Tenant.objects.order_by("name").values_list("id", "name")[:TENANT_CHOICES]
            ),
        )
    return TemplateResponse(request, template, context)  # admin_view: never cached


def dashboard_data(request):
    _check(request)
    return JsonResponse(selectors.figures(tenant_id=_tenant_id(request)).as_dict())


# -- panels ----------------------------------------------------------------------------------


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def _headroom_colour(share: float) -> str:
    if share < 0.2:
        return COLOURS["bad"]
    return COLOURS["warn"] if share < 0.5 else COLOURS["ok"]


def panels(f: selectors.Figures) -> dict:
    """Everything the panels template shows, charts rendered."""
    records_total = sum(f.records.total(name) for name in ("created", "updated", "deleted"))
    runs_total = sum(f.runs.total(name) for name in ("succeeded", "failed", "other"))
    accepted, rejected = f.webhooks.total("accepted"), f.webhooks.total("rejected")
    received = accepted + rejected + f.webhooks.total("duplicate")
    queue_bars = [
        Bar(f"queue: {name}", depth or 0, "no answer" if depth is None else f"{depth} messages")
        for name, depth in f.backlog.clusters.items()
    ]
    queue_bars += [
        Bar("sync tasks queued", f.backlog.sync_tasks_queued, str(f.backlog.sync_tasks_queued)),
        Bar("sync tasks running", f.backlog.sync_tasks_running, str(f.backlog.sync_tasks_running)),
        Bar("outbound pending", f.backlog.outbound_pending, str(f.backlog.outbound_pending)),
        Bar(
            "webhook events pending",
            f.backlog.webhook_events_pending,
            str(f.backlog.webhook_events_pending),
        ),
    ]
    headroom_bars = [
        Bar(
            h.name,
            round(h.headroom * 100, 1),
            f"{h.headroom:.0%} left",
            _headroom_colour(h.headroom),
            title=(
                f"{h.name} ({h.provider}): tightest level {h.level}, {h.used} of {h.limit} "
                f"per {h.window:g}s used"
                + (
                    f"; limits at {h.multiplier:.0%} after provider feedback"
                    if h.multiplier < 1
                    else ""
                )
                + (f"; blocked for {h.blocked_for:.0f}s" if h.blocked_for else "")
                + ("; DEGRADED: local limits (Redis unreachable)" if h.degraded else "")
            ),
        )
        for h in f.headroom
    ]
    status_order = ("active", "expiring", "error", "reauth_required")
    credential_bars = [
        Bar(
            status.replace("_", " "),
            f.credential_statuses.get(status, 0),
            str(f.credential_statuses.get(status, 0)),
            COLOURS["ok" if status == "active" else "warn" if status == "expiring" else "bad"],
        )
        for status in status_order
    ]
    letters = f.dead_letters
    return {
        "figures": f,
        "records_total": records_total,
        "records_chart": charts.stacked_bars(f.records, label="Records synced per hour"),
        "records_legend": charts.legend(["created", "updated", "deleted"]),
        "runs_total": runs_total,
        "runs_failed": f.runs.total("failed"),
        "runs_failed_pct": _pct(f.runs.total("failed"), runs_total),
        "runs_chart": charts.stacked_bars(f.runs, label="Sync runs per hour"),
        "runs_legend": charts.legend(["succeeded", "failed", "other"]),
        "failures": [
            {**failure, "url": reverse("admin:syncing_syncrun_change", args=[failure["id"]])}
            for failure in f.failures
        ],
        "queue_chart": charts.horizontal_bars(queue_bars, label="Queue depth and backlog"),
        "webhooks_received": received,
        "webhooks_rejected": rejected,
        "webhooks_reject_pct": _pct(rejected, received),
        "webhooks_chart": charts.stacked_bars(f.webhooks, label="Webhook deliveries per hour"),
        "webhooks_legend": charts.legend(["accepted", "duplicate", "rejected"]),
        "headroom_chart": charts.horizontal_bars(
            headroom_bars,
            label="Rate-limit headroom per integration",
            maximum=100,
            empty="no integration has synced yet",
        ),
        "credential_chart": charts.horizontal_bars(credential_bars, label="Credentials by status"),
        "credentials": [
            {**c, "url": reverse("admin:credentials_credential_change", args=[c["id"]])}
            for c in f.credentials
        ],
        "dead_letters_open": letters["open"],
        "dead_letters_chart": charts.horizontal_bars(
            [
                Bar(f"{name} ({provider})", n, str(n), COLOURS["bad"])
                for name, provider, n in letters["by_integration"]
            ],
            label="Open dead letters per integration",
            empty="no open dead letters",
        ),
        "dead_letters_hourly": charts.stacked_bars(
            letters["per_hour"], label="New dead letters per hour", height=90
        ),
        "open_conflicts": f.open_conflicts,
    }
