"""Microsoft Graph change notifications.

Graph does not sign notifications (unless rich notifications with encrypted content are
used); it echoes the ``clientState`` the subscription was created with in every item of
``value``, so that shared secret is what a delivery is verified against (constant time).

Subscription validation: Graph POSTs with ``?validationToken=…`` and expects the token back
as ``text/plain`` with 200 within 10 seconds; that request carries no clientState, so it is
answered before verification (echoing a token proves nothing and leaks nothing). Accepted
notifications are answered 202, as Graph documents.
"""

from __future__ import annotations

import re

from django.http import HttpResponse

from webhooks.schemes.base import (
    BAD_SIGNATURE,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    equal,
)

_CLIENT_STATE = re.compile(rb'("clientState"\s*:\s*)"(?:[^"\\]|\\.)*"')


class MicrosoftGraphScheme(Scheme):
    slug = "msgraph"
    label = "Microsoft Graph (clientState, validationToken)"
    receiver_chooses_secret = True
    accepted_status = 202

    def handshake_before_verification(self, incoming, *, config):
        token = incoming.query_value("validationToken")
        if token is None:
            return None
        return HttpResponse(token, content_type="text/plain; charset=utf-8", status=200)

    def verify(self, incoming, keys, *, config, tolerance, now):
        data = incoming.json
        items = data.get("value") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise VerificationFailed(MISSING_SIGNATURE)
        states = [item.get("clientState") if isinstance(item, dict) else None for item in items]
        if any(not isinstance(state, str) or not state for state in states):
            raise VerificationFailed(MISSING_SIGNATURE)
        keys = list(keys)

        def label_for(state: str) -> str | None:
            for key in keys:
                if equal(key.value.encode(), state.encode()):
                    return key.label
            return None

        labels = [label_for(state) for state in states]
        if any(label is None for label in labels):
            raise VerificationFailed(BAD_SIGNATURE)
        return Verified(labels[0])

    def display_body(self, body: bytes) -> bytes:
        return _CLIENT_STATE.sub(rb'\1"***"', body)
