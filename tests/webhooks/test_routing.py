"""Default routes come from the providers' event tables; the routing they give is the one the
hand-written table gave before the tables existed (kept below, verbatim, as the reference)."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from integrations.webhook_events import PARSERS, Delivery, ParseError, get_parser
from webhooks import routing
from webhooks.routing import AUTO, EVALUATE_RULES, FETCH_ENTITY

pytestmark = pytest.mark.embedded

# webhooks/routing.py's DEFAULT_ROUTES before the event tables (commit fd23dd9).
HAND_WRITTEN = {
    "github": [("issues.*", AUTO), ("push", [FETCH_ENTITY, EVALUATE_RULES])],
    "stripe": [("customer.*", AUTO)],
    "generic": [("*", AUTO)],
    "hubspot": [("*", AUTO)],
    "slack": [("*", AUTO)],
}


def hand_written_actions(event, parser: str) -> list[str]:
    matching = [(p, a) for p, a in HAND_WRITTEN.get(parser, []) if fnmatchcase(event.type, p)]
    if not matching:
        return []
    _, actions = max(matching, key=lambda item: (item[0] == event.type, len(item[0])))
    return routing.auto_actions(event) if actions == AUTO else list(actions)


ISSUE = {"id": 9, "number": 2, "repository_url": "https://api.github.com/repos/o/r"}
REPOSITORY = {"id": 3, "full_name": "o/r"}


def github(event: str, action: str | None = None, **body):
    body = {"issue": ISSUE, "repository": REPOSITORY, **body}
    if action:
        body["action"] = action
    return Delivery(body=body, headers={"X-GitHub-Event": event}, config={})


def stripe(event_type: str, obj_type: str = "customer", **obj):
    obj = {"id": f"{obj_type[:3]}_1", "object": obj_type, **obj}
    body = {"id": "evt_1", "type": event_type, "created": 1, "data": {"object": obj}}
    return Delivery(body=body, headers={}, config={})


def hubspot(*kinds: str):
    items = [{"subscriptionType": k, "objectId": 5, "eventId": i} for i, k in enumerate(kinds)]
    return Delivery(body=items, headers={}, config={})


def slack(kind: str, **event):
    body = {"type": "event_callback", "event_id": "Ev1", "event": {"type": kind, **event}}
    return Delivery(body=body, headers={}, config={})


DELIVERIES = [
    ("github", github("issues", "opened")),
    ("github", github("issues", "edited")),
    ("github", github("issues", "deleted")),
    ("github", github("issues")),  # no action: not routed, then or now
    ("github", github("push", head_commit={"timestamp": "2024-01-01T00:00:00Z"})),
    ("github", github("ping", zen="Design for failure.")),
    ("github", github("milestone", "created", milestone={"id": 4})),
    ("stripe", stripe("customer.created")),
    ("stripe", stripe("customer.updated")),
    ("stripe", stripe("customer.deleted", deleted=True)),
    ("stripe", stripe("customer.subscription.updated", "subscription")),
    ("stripe", stripe("customer.subscription.deleted", "subscription")),
    ("stripe", stripe("customer.discount.created", "discount")),
    ("stripe", stripe("charge.succeeded", "charge")),
    ("stripe", stripe("charge.refund.deleted", "refund")),
    (
        "hubspot",
        hubspot(
            "contact.creation",
            "contact.propertyChange",
            "contact.deletion",
            "contact.restore",
            "contact.merge",
            "company.creation",
            "company.propertyChange",
            "company.deletion",
            "company.restore",
            "company.merge",
            "deal.creation",
            "deal.deletion",
            "contact.privacyDeletion",
        ),
    ),
    ("slack", slack("user_change", user={"id": "U1"})),
    ("slack", slack("team_join", user={"id": "U2"})),
    ("slack", slack("user_change", user="U1")),  # not the documented shape: names nothing
    ("slack", slack("channel_created", channel={"id": "C1", "name": "general"})),
    ("slack", slack("channel_rename", channel={"id": "C1", "name": "random"})),
    ("slack", slack("channel_archive", channel="C1")),
    ("slack", slack("channel_unarchive", channel="C1")),
    ("slack", slack("channel_deleted", channel="C1")),
    ("slack", slack("message", channel="C1", text="hi")),
    ("slack", slack("app_mention", channel="C1")),
    ("slack", Delivery(body={"type": "app_rate_limited"}, headers={}, config={})),
    ("generic", Delivery(body={"type": "contact.updated", "id": 7}, headers={}, config={})),
    ("generic", Delivery(body={"type": "contact.deleted", "id": 7}, headers={}, config={})),
    ("generic", Delivery(body={"type": "ping"}, headers={}, config={})),
]


@pytest.mark.parametrize(
    "parser, delivery", DELIVERIES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(DELIVERIES)]
)
def test_routing_is_what_the_hand_written_table_gave(parser, delivery):
    events = get_parser(parser)(delivery)
    assert events
    for event in events:
        assert routing.actions_for(event, parser=parser) == hand_written_actions(event, parser)


def test_the_default_routes_are_the_event_tables():
    assert routing.DEFAULT_ROUTES["github"] == [
        ("issues.*", AUTO),
        ("issues.deleted", AUTO),
        ("push", (FETCH_ENTITY, EVALUATE_RULES)),
    ]
    assert ("customer.*", AUTO) in routing.DEFAULT_ROUTES["stripe"]
    assert routing.DEFAULT_ROUTES["generic"] == [("*", AUTO)]
    assert ("contact.deletion", AUTO) in routing.DEFAULT_ROUTES["hubspot"]
    assert ("channel_deleted", AUTO) in routing.DEFAULT_ROUTES["slack"]
    # Every parser has its routes, and only parsers have routes.
    assert set(routing.DEFAULT_ROUTES) == set(PARSERS)
    with pytest.raises(KeyError):
        routing.DEFAULT_ROUTES["salesforce"]  # no webhooks: no parser, no routes


def test_parsers_are_the_generic_one_and_every_provider_with_an_event_table():
    assert set(PARSERS) == {"generic", "github", "stripe", "hubspot", "slack"}
    with pytest.raises(ParseError, match="unknown parser 'salesforce'"):
        get_parser("salesforce")
    # What the webhooks app validates registrations against is the same registry.
    from webhooks import validation

    assert validation.parsers.PARSERS is PARSERS


def test_a_registration_may_name_any_provider_parser():
    from webhooks.validation import registration_errors

    def errors(parser):
        return registration_errors(
            scheme="hubspot",
            scheme_config={},
            parser=parser,
            parser_config={},
            dedupe_rule={},
            event_types=[],
            routes={},
        )

    assert "parser" not in errors("hubspot")
    assert "Unknown parser 'salesforce'" in errors("salesforce")["parser"]
