"""A chat inbox for the demo: accepts Slack- and Teams-style webhooks and shows what arrived.

``POST /sandbox/<account>/chat/slack/`` takes what a Slack incoming webhook takes (``text``,
``blocks``) and answers ``ok``; ``POST /sandbox/<account>/chat/teams/`` takes a Teams
Workflows message (an Adaptive Card attachment) and answers 202. ``GET
/sandbox/<account>/chat/`` shows the messages, newest first, as a chat client would (a plain
page that refreshes itself). A message re-sent with the same ``X-Castiel-Message-Id`` (a
sender's retry after it lost our answer) is shown once. Messages are sandbox objects of the
collection ``chat-inbox``.
"""

from __future__ import annotations

import json
import re

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sandbox.models import SandboxAccount, SandboxObject

# The shortcodes Castiel's messages use, drawn with glyphs every system font has (colour
# emoji fonts are often missing on servers and in headless browsers) and coloured by CSS.
EMOJI = {
    ":rotating_light:": ("\N{BLACK LARGE CIRCLE}", "critical"),
    ":red_circle:": ("\N{BLACK LARGE CIRCLE}", "error"),
    ":warning:": ("\N{WARNING SIGN}", "warning"),
    ":information_source:": ("\N{INFORMATION SOURCE}", "info"),
    ":white_check_mark:": ("\N{HEAVY CHECK MARK}", "ok"),
}
BOLD = re.compile(r"\*([^*\n]+)\*")
LINK = re.compile(r"&lt;(https?://[^|&]+)\|([^&]+)&gt;")
COLLECTION = "chat-inbox"
MAX_BODY = 256 * 1024
SHOWN = 100


def _lines_from_slack(payload: dict) -> tuple[str, list[str]]:
    title, lines = str(payload.get("text") or ""), []
    for block in payload.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, dict) and block.get("type") == "header":
            title = str(text.get("text") or title)
        elif isinstance(text, dict):
            lines.append(str(text.get("text") or ""))
        for field in block.get("fields") or []:
            if isinstance(field, dict):
                lines.append(str(field.get("text") or "").replace("\n", ": ", 1))
    return title, lines


def _lines_from_card(payload: dict) -> tuple[str, list[str]]:
    texts: list[str] = []

    def walk(element):
        if isinstance(element, dict):
            if element.get("type") == "TextBlock":
                texts.append(str(element.get("text") or ""))
            if element.get("type") == "FactSet":
                texts.extend(
                    f"{f.get('title')}: {f.get('value')}" for f in element.get("facts") or []
                )
            for key in ("body", "items"):
                for child in element.get(key) or []:
                    walk(child)

    for attachment in payload.get("attachments") or []:
        if isinstance(attachment, dict):
            walk(attachment.get("content") or {})
    return (texts[0] if texts else ""), texts[1:]


def _receive(request, account: str, style: str):
    acct = get_object_or_404(SandboxAccount, slug=account)
    if len(request.body) > MAX_BODY:
        return JsonResponse({"error": "too large"}, status=413)
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return HttpResponse("invalid_payload", status=400, content_type="text/plain")
    if not isinstance(payload, dict):
        return HttpResponse("invalid_payload", status=400, content_type="text/plain")
    message_id = request.headers.get("X-Castiel-Message-Id", "")[:100]
    seen = (
        message_id
        and SandboxObject.objects.filter(
            account=acct, collection=COLLECTION, data__message_id=message_id
        ).exists()
    )
    if not seen:
        title, lines = (_lines_from_slack if style == "slack" else _lines_from_card)(payload)
        SandboxObject.objects.create(
            account=acct,
            collection=COLLECTION,
            data={
                "style": style,
                "title": title[:500],
                "lines": [line[:2000] for line in lines[:60]],
                "message_id": message_id,
                "payload": payload,
            },
        )
    if style == "slack":
        return HttpResponse("ok", content_type="text/plain")
    return HttpResponse(status=202)


@csrf_exempt
@require_POST
def slack(request, account: str):
    return _receive(request, account, "slack")


@csrf_exempt
@require_POST
def teams(request, account: str):
    return _receive(request, account, "teams")


def drawn(text: str) -> SafeString:
    """Slack mrkdwn as a chat client draws it: emoji shortcodes, *bold*, <url|label> links —
    everything else escaped."""
    html = escape(text)
    for code, (glyph, tone) in EMOJI.items():
        html = html.replace(code, f'<span class="emoji {tone}">{glyph}</span>')
    html = BOLD.sub(r"<b>\1</b>", html)
    html = LINK.sub(r'<a href="\1">\2</a>', html)
    return mark_safe(html)  # noqa: S308  (built from escaped text above)


@require_GET
def inbox(request, account: str):
    acct = get_object_or_404(SandboxAccount, slug=account)
    messages = SandboxObject.objects.filter(
        account=acct, collection=COLLECTION, deleted_at__isnull=True
    ).order_by("-id")[:SHOWN]
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(
            {
                "messages": [
                    {"id": m.pk, "received_at": m.created_at.isoformat(), **m.data}
                    for m in messages
                ]
            }
        )
    shown = [
        {
            "style": m.data.get("style", ""),
            "message_id": m.data.get("message_id", ""),
            "created_at": m.created_at,
            "title": drawn(str(m.data.get("title") or "")),
            "lines": [drawn(str(line)) for line in m.data.get("lines") or []],
        }
        for m in messages
    ]
    return render(request, "sandbox/chat.html", {"account": acct, "messages": shown})
