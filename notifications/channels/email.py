"""Email: plain text + HTML through Django's email backend (the SMTP server is the operator's).

The SMTP server comes from settings (``EMAIL_HOST``, ``EMAIL_PORT``, ``EMAIL_HOST_USER``,
``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS`` / ``EMAIL_USE_SSL``, ``EMAIL_TIMEOUT``,
``DEFAULT_FROM_EMAIL``), never from a tenant, so no SSRF guard applies; tenants only choose
the recipients. A refused connection, a timeout or a 4xx SMTP reply is retried; a 5xx reply
(recipient or sender refused, authentication failed) is permanent.
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.utils.html import format_html, format_html_join

from castiel.http.errors import OutboundError, TransportError
from notifications.channels.base import ChannelType, Sent

MAX_RECIPIENTS = 20


class SmtpError(OutboundError):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


def text_for(message: dict) -> str:
    lines = [message["title"], ""]
    if message.get("summary"):
        lines += [message["summary"], ""]
    lines += [f"{label}: {value}" for label, value in message.get("fields") or [] if value]
    for group in message.get("groups") or []:
        where = " / ".join(p for p in (group.get("tenant"), group.get("integration")) if p)
        lines += [
            "",
            f"{where or 'Platform'}: {group['opened']} opened, {group['resolved']} resolved, "
            f"{group['still_open']} still open",
        ]
        for item in group.get("incidents") or []:
            tail = f" — {item['link']}" if item.get("link") else ""
            lines.append(f"  - {item['title']} ({item['state']}, {item['occurrences']}x){tail}")
        if group.get("more"):
            lines.append(f"  …and {group['more']} more")
    if message.get("link"):
        lines += ["", f"Open in Castiel: {message['link']}"]
    return "\n".join(lines) + "\n"


def html_for(message: dict) -> str:
    fields = format_html_join(
        "",
        "<tr><th align='left'>{}</th><td>{}</td></tr>",
        ((label, value) for label, value in message.get("fields") or [] if value),
    )
    groups = []
    for group in message.get("groups") or []:
        where = " / ".join(p for p in (group.get("tenant"), group.get("integration")) if p)
        items = format_html_join(
            "",
            "<li>{}</li>",
            (
                (
                    format_html('<a href="{}">{}</a>', item["link"], item["title"])
                    if item.get("link")
                    else item["title"],
                )
                for item in group.get("incidents") or []
            ),
        )
        groups.append(
            format_html(
                "<h3>{}</h3><p>{} opened, {} resolved, {} still open</p><ul>{}</ul>",
                where or "Platform",
                group["opened"],
                group["resolved"],
                group["still_open"],
                items,
            )
        )
    link = (
        format_html('<p><a href="{}">Open in Castiel</a></p>', message["link"])
        if message.get("link")
        else ""
    )
    return format_html(
        "<html><body><h2>{}</h2><p>{}</p><table>{}</table>{}{}</body></html>",
        message["title"],
        message.get("summary") or "",
        fields,
        format_html_join("", "{}", ((g,) for g in groups)),
        link,
    )


class Email(ChannelType):
    type = "email"
    default_rate = (1, 1.0)

    def clean(self, data: dict, *, channel=None, tenant=None):
        errors, public = {}, {}
        if "recipients" in data or channel is None:
            recipients = data.get("recipients")
            if isinstance(recipients, str):
                recipients = [r.strip() for r in recipients.replace(";", ",").split(",")]
            if not isinstance(recipients, list) or not [r for r in recipients if r]:
                errors["recipients"] = "Give one or more email addresses."
            else:
                recipients = [str(r).strip() for r in recipients if str(r).strip()]
                bad = []
                for address in recipients:
                    try:
                        validate_email(address)
                    except ValidationError:
                        bad.append(address)
                if bad:
                    errors["recipients"] = "Not an email address: " + ", ".join(bad[:5])
                elif len(recipients) > MAX_RECIPIENTS:
                    errors["recipients"] = f"At most {MAX_RECIPIENTS} recipients."
                else:
                    public["recipients"] = recipients
        return public, {}, errors

    def hint(self, public: dict, secret: dict) -> str:
        recipients = public.get("recipients") or []
        return ", ".join(recipients[:3]) + (" …" if len(recipients) > 3 else "")

    def render(self, message: dict, delivery=None) -> dict:
        return {
            "subject": message["title"][:200],
            "text": text_for(message),
            "html": html_for(message),
        }

    def send(self, channel, delivery, secrets: dict) -> Sent:
        rendered = self.render(delivery.message, delivery)
        email = EmailMultiAlternatives(
            subject=rendered["subject"],
            body=rendered["text"],
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=list(channel.recipients or []),
            headers={"X-Castiel-Message-Id": str(delivery.message_id)},
        )
        email.attach_alternative(rendered["html"], "text/html")
        try:
            connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
            sent = connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise SmtpError(
                f"recipients refused: {_codes(exc.recipients)}", retryable=False
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise SmtpError(
                f"SMTP {exc.smtp_code}: {_decode(exc.smtp_error)}"[:500],
                retryable=400 <= exc.smtp_code < 500,
                status=exc.smtp_code,
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"SMTP server unreachable: {exc.__class__.__name__}") from None
        return Sent(250 if sent else None, f"sent to {len(channel.recipients or [])} recipient(s)")


def _decode(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _codes(recipients: dict) -> str:
    return ", ".join(
        f"{address} ({code})" for address, (code, _msg) in list(recipients.items())[:5]
    )
