"""The one interface every channel type implements, and what the types share.

A channel type:

* ``clean(data, channel=None)`` checks what an operator or tenant submitted and splits it into
  the row's public fields and its secret fields (kept in the secret store, never shown again);
  problems are a ``{field: message}`` dict — nothing is saved when there is one;
* ``render(message, delivery)`` turns the neutral message (notifications/messages.py) into the
  exact payload the channel receives;
* ``send(channel, delivery, secrets)`` sends it and returns :class:`Sent`, or raises an
  ``OutboundError`` whose ``retryable`` flag and ``retry_after`` decide what happens next.

HTTP channels post through :func:`post` — the guarded outbound client (SSRF guard at connect
time, typed errors, metrics and logs) with the per-channel rate limit of the shared limiter
(:class:`ChannelGate`). A webhook URL that *is* a secret (Slack's path, a Teams Workflows
``sig``) never reaches a log line or an error message: the client is handed a stand-in URL on
the same origin, and the real one is swapped in by the transport adapter just before sending.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from castiel.http import OutboundClient, ssrf
from castiel.http.errors import NotSentDeferred, SsrfBlockedError, parse_retry_after
from castiel.http.transport import GuardedAdapter

MAX_URL_LENGTH = 2000
RESPONSE_EXCERPT = 1000


@dataclass
class Sent:
    status: int | None
    body: str = ""
    external_ref: str = ""  # the message's address at the channel, when it has one


class ChannelType:
    type: str = ""
    # The per-channel limit when the channel sets none: (messages, per seconds).
    default_rate: tuple[int, float] = (1, 1.0)
    secret_fields: tuple[str, ...] = ()

    def clean(self, data: dict, *, channel=None, tenant=None) -> tuple[dict, dict, dict]:
        """``(public fields, secret fields, errors)`` for submitted ``data`` (``tenant``: the
        channel's owner, None for an operator channel)."""
        raise NotImplementedError

    def render(self, message: dict, delivery) -> object:
        raise NotImplementedError

    def send(self, channel, delivery, secrets: dict) -> Sent:
        raise NotImplementedError

    def hint(self, public: dict, secret: dict) -> str:
        """A harmless description of the target for lists and admin pages."""
        return ""


# -- validation shared by the HTTP channels ------------------------------------------------------


def url_error(url, *, field: str = "url") -> str | None:
    """Why ``url`` cannot be a channel URL, or None. Refuses: not an absolute http(s) URL,
    user info in it, http when ``CASTIEL_NOTIFY_ALLOW_HTTP`` is off (production), and any
    host that is (or resolves to) an address outbound calls may not reach."""
    if not isinstance(url, str) or not url.strip():
        return "A URL is required."
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        return f"The URL is longer than {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid URL."
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter an absolute https:// URL."
    if parts.scheme != "https" and not settings.CASTIEL_NOTIFY_ALLOW_HTTP:
        return "The URL must use https."
    if parts.username or parts.password:
        return "The URL must not contain a user name or password."
    if any(c.isspace() for c in url):
        return "The URL must not contain spaces."
    try:
        ssrf.check_url(url, proxied=True)
    except SsrfBlockedError as exc:
        return f"Outbound calls may not reach this address ({exc})."
    except UnicodeError:
        return "This is not a valid host name."
    return None


def origin_hint(url: str) -> str:
    parts = urlsplit(url)
    tail = parts.path.rstrip("/")[-4:]
    return (
        f"{parts.scheme}://{parts.netloc}/…{tail}" if tail else f"{parts.scheme}://{parts.netloc}"
    )


# -- sending -------------------------------------------------------------------------------------


class _SwapUrlAdapter(GuardedAdapter):
    """The guarded adapter, sending to ``real`` what the client addressed to ``stand_in``."""

    def __init__(self, stand_in: str, real: str):
        super().__init__()
        self.stand_in = stand_in
        self.real = real

    def send(self, request, **kwargs):
        if request.url == self.stand_in:
            request.url = self.real
        return super().send(request, **kwargs)


class ChannelGate:
    """The shared limiter, per channel: ``acquire`` waits in-process up to
    ``CASTIEL_NOTIFY_MAX_INLINE_WAIT`` or defers the delivery; a 429 with ``Retry-After``
    blocks the channel for every process."""

    def __init__(self, channel, channel_type: ChannelType, *, max_wait: float | None = None):
        from ratelimit.policy import Limit, Policy, Subject

        owner = str(channel.tenant_id) if channel.tenant_id else "platform"
        self.subject = Subject(f"notify-{owner}", f"notify-{channel.pk.hex}", "send")
        if channel.rate_limit_per_minute:
            limit = Limit(channel.rate_limit_per_minute, 60.0, source="channel")
        else:
            count, window = channel_type.default_rate
            limit = Limit(count, window, source=f"{channel_type.type} default")
        self.policy = Policy(
            tenant=Limit(1_000_000, 60.0), integration=limit, default_operation=limit
        )
        self.provider = f"notify-{channel_type.type}"
        self.max_wait = settings.CASTIEL_NOTIFY_MAX_INLINE_WAIT if max_wait is None else max_wait

    def acquire(self, operation: str, cost: int = 1) -> None:
        from ratelimit.limiter import get_limiter

        started = time.monotonic()
        while True:
            decision = get_limiter().acquire(
                self.subject, self.policy, cost, provider=self.provider
            )
            if decision.allowed:
                return
            left = self.max_wait - (time.monotonic() - started)
            if decision.wait > left:
                raise NotSentDeferred(
                    f"channel rate limit: room again in {decision.wait:.1f}s",
                    retry_after=decision.wait,
                )
            time.sleep(decision.wait + random.uniform(0, 0.01))  # noqa: S311 - jitter

    def feedback(self, response: requests.Response) -> None:
        if response.status_code != 429:
            return
        from ratelimit.backends.base import Adjustment
        from ratelimit.limiter import get_limiter

        wait = parse_retry_after(response.headers.get("retry-after")) or 1.0
        try:
            get_limiter().adjust(
                self.subject.tenant_id,
                self.subject.integration_id,
                Adjustment(block=wait),
                notify=False,  # a channel's own limit is not a provider quota
            )
        except Exception:  # advice only: the delivery's own retry honours Retry-After anyway
            return


def post(
    channel,
    channel_type: ChannelType,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    secret_url: bool,
) -> Sent:
    """POST ``body`` to ``url`` through the guarded client; errors raise (typed)."""
    session = requests.Session()
    target = url
    if secret_url:
        parts = urlsplit(url)
        target = f"{parts.scheme}://{parts.netloc}/(channel-url)"
        session.mount(f"{parts.scheme}://{parts.netloc}/", _SwapUrlAdapter(target, url))
    client = OutboundClient(
        provider=f"notify-{channel_type.type}",
        gate=ChannelGate(channel, channel_type),
        session=session,
        timeout=(settings.CASTIEL_OUTBOUND_CONNECT_TIMEOUT, settings.CASTIEL_NOTIFY_TIMEOUT),
    )
    try:
        response = client.post(
            target,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            operation="send",
        )
        return Sent(response.status_code, _text(response))
    finally:
        session.close()


def _text(response: requests.Response) -> str:
    try:
        return response.text[:RESPONSE_EXCERPT]
    except Exception:
        return ""
