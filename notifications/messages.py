"""What a notification says, independent of the channel (each channel type renders it).

A message is a plain JSON-able dict stored on its delivery, so a replay sends exactly what
was planned, and every channel renders the same facts:

* ``kind``: ``alert`` | ``reminder`` | ``resolved`` | ``digest`` | ``test``;
* ``title``, ``summary`` (one line), ``severity`` (``info`` … ``critical``), ``link`` (the
  admin page, absolute when a base URL is configured, else empty);
* ``fields``: ``[[label, value], …]`` facts shown as a list;
* ``incident`` (incident messages): its id, kind, state, fingerprint, tenant, integration,
  subject, occurrences and times, for machines (signed webhooks);
* ``groups`` (digests): per tenant and integration, the counts and the incidents.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from castiel.events import CATALOGUE, Severity
from notifications.models import Incident

PREFIX = {"alert": "", "reminder": "Reminder: ", "resolved": "Resolved: ", "test": ""}
MAX_INCIDENTS_PER_GROUP = 20


def link_base() -> str:
    return (settings.CASTIEL_NOTIFY_LINK_BASE_URL or "").rstrip("/")


def admin_link(view: str, *args, query: str = "") -> str:
    base = link_base()
    if not base:
        return ""
    try:
        url = base + reverse(view, args=args)
    except NoReverseMatch:
        return ""
    return f"{url}?{query}" if query else url


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _names(incident: Incident) -> tuple[str, str]:
    from castiel.tenancy.models import Tenant
    from integrations.models import Integration

    tenant = ""
    if incident.tenant_id:
        tenant = Tenant.objects.filter(pk=incident.tenant_id).values_list("name", flat=True)
        tenant = next(iter(tenant), "") or str(incident.tenant_id)
    integration = ""
    if incident.integration_id:
        found = Integration.objects.filter(pk=incident.integration_id).values_list(
            "name", flat=True
        )
        integration = next(iter(found), "") or str(incident.integration_id)
    return tenant, integration


def severity_label(value: int) -> str:
    try:
        return Severity(value).label
    except ValueError:
        return str(value)


def for_incident(incident: Incident, kind: str) -> dict:
    """The message for an incident change: alert, reminder or resolved."""
    spec = CATALOGUE.get(incident.kind)
    title = spec.title if spec else incident.kind
    tenant, integration = _names(incident)
    subject = incident.subject_label or incident.subject_id
    summary = incident.message or (spec.description if spec else "")
    if kind == "resolved":
        summary = f"{title} is resolved ({incident.resolved_by or 'resolved'})."
    fields = [["Subject", subject]]
    if tenant:
        fields.append(["Tenant", tenant])
    if integration:
        fields.append(["Integration", integration])
    fields += [
        ["Severity", severity_label(incident.severity)],
        ["Occurrences", str(incident.occurrences)],
        ["First seen", iso(incident.first_seen_at)],
    ]
    if kind == "resolved" and incident.resolved_at:
        fields.append(["Resolved", iso(incident.resolved_at)])
    return {
        "kind": kind,
        "title": f"{PREFIX.get(kind, '')}{title}: {subject}",
        "summary": summary,
        "severity": "info" if kind == "resolved" else severity_label(incident.severity),
        "link": admin_link("admin:notifications_incident_change", incident.pk),
        "fields": fields,
        "incident": {
            "id": str(incident.pk),
            "kind": incident.kind,
            "state": incident.state,
            "fingerprint": incident.fingerprint,
            "severity": severity_label(incident.severity),
            "tenant_id": str(incident.tenant_id) if incident.tenant_id else None,
            "integration_id": str(incident.integration_id) if incident.integration_id else None,
            "subject": {
                "type": incident.subject_type,
                "id": incident.subject_id,
                "label": incident.subject_label,
            },
            "occurrences": incident.occurrences,
            "first_seen_at": iso(incident.first_seen_at),
            "last_seen_at": iso(incident.last_seen_at),
            "resolved_at": iso(incident.resolved_at),
            "details": incident.details or {},
        },
    }


def for_test(channel) -> dict:
    return {
        "kind": "test",
        "title": f"Test notification from Castiel to {channel.name}",
        "summary": "If you can read this, the channel works.",
        "severity": "info",
        "link": admin_link("admin:notifications_channel_change", channel.pk),
        "fields": [["Channel", channel.name], ["Type", channel.get_type_display()]],
    }


def for_digest(*, period_start, period_end, groups: list[dict], totals: dict) -> dict:
    """A digest over ``[period_start, period_end)``; ``groups`` from notifications/digests.py."""
    title = (
        f"Castiel digest: {totals['opened']} opened, {totals['resolved']} resolved, "
        f"{totals['still_open']} still open"
    )
    return {
        "kind": "digest",
        "title": title,
        "summary": f"From {iso(period_start)} to {iso(period_end)}.",
        "severity": "info",
        "link": admin_link("admin:notifications_incident_changelist"),
        "fields": [
            ["Opened", str(totals["opened"])],
            ["Resolved", str(totals["resolved"])],
            ["Still open", str(totals["still_open"])],
        ],
        "period": {"start": iso(period_start), "end": iso(period_end)},
        "totals": totals,
        "groups": groups,
    }
