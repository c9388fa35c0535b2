"""Signature schemes, one small class per provider scheme, in one explicit registry.

The registry is a plain dict filled here (no discovery by import side effects): adding a
scheme is adding a module and a line below.
"""

from __future__ import annotations

from webhooks.schemes.base import (
    REASONS,
    Incoming,
    Scheme,
    SigningKey,
    VerificationFailed,
    Verified,
)
from webhooks.schemes.generic import GenericHmacScheme
from webhooks.schemes.github import GitHubScheme
from webhooks.schemes.hubspot import HubSpotScheme
from webhooks.schemes.msgraph import MicrosoftGraphScheme
from webhooks.schemes.sendgrid import SendGridScheme
from webhooks.schemes.shopify import ShopifyScheme
from webhooks.schemes.slack import SlackScheme
from webhooks.schemes.square import SquareScheme
from webhooks.schemes.standard import StandardWebhooksScheme
from webhooks.schemes.stripe import StripeScheme
from webhooks.schemes.twilio import TwilioScheme

SCHEMES: dict[str, Scheme] = {
    scheme.slug: scheme
    for scheme in (
        GitHubScheme(),
        StripeScheme(),
        SlackScheme(),
        ShopifyScheme(),
        StandardWebhooksScheme(),
        TwilioScheme(),
        HubSpotScheme(),
        MicrosoftGraphScheme(),
        SquareScheme(),
        SendGridScheme(),
        GenericHmacScheme(),
    )
}


class UnknownScheme(KeyError):
    pass


def get_scheme(slug: str) -> Scheme:
    try:
        return SCHEMES[slug]
    except KeyError:
        raise UnknownScheme(slug) from None


def choices() -> list[tuple[str, str]]:
    return [(slug, scheme.label) for slug, scheme in SCHEMES.items()]


__all__ = [
    "REASONS",
    "SCHEMES",
    "Incoming",
    "Scheme",
    "SigningKey",
    "UnknownScheme",
    "VerificationFailed",
    "Verified",
    "choices",
    "get_scheme",
]
