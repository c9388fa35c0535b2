"""GitHub events: ``X-GitHub-Event`` names the event, ``action`` in the body refines it.

``issues`` → entity ``issues`` (the payload carries the whole issue: upsert; ``deleted``
removes it). ``push`` → entity ``repositories`` (commits changed: the repository's data must be
fetched). Entity names come from the provider catalogue's ``webhook_events``. Other events
are parsed generically (``<event>.<action>``, the object named like the event when there is
one) so routes can be added without a parser change.
"""

from __future__ import annotations

from webhooks.parsers.base import (
    Delivery,
    NormalisedEvent,
    ParseError,
    catalogue_entity,
    parse_time,
)

PROVIDER = "github"


def parse(delivery: Delivery) -> list[NormalisedEvent]:
    name = delivery.header("X-GitHub-Event")
    body = delivery.body
    if not name:
        raise ParseError("X-GitHub-Event header missing")
    if not isinstance(body, dict):
        raise ParseError("GitHub payload is not a JSON object")
    action = body.get("action")
    event_type = f"{name}.{action}" if isinstance(action, str) and action else name
    event_id = delivery.header("X-GitHub-Delivery") or ""

    if name == "issues":
        issue = body.get("issue")
        if not isinstance(issue, dict) or "id" not in issue:
            raise ParseError("issues event without an issue")
        payload = dict(issue)
        if isinstance(body.get("repository"), dict):
            payload.setdefault("repository_full_name", body["repository"].get("full_name"))
        return [
            NormalisedEvent(
                provider=PROVIDER,
                type=event_type,
                entity_type=catalogue_entity(PROVIDER, name, "issues"),
                external_id=str(issue["id"]),
                payload=payload,
                occurred_at=parse_time(issue.get("updated_at")),
                complete=action != "deleted",
                deleted=action == "deleted",
                event_id=event_id,
            )
        ]

    if name == "push":
        repository = body.get("repository")
        if not isinstance(repository, dict) or "id" not in repository:
            raise ParseError("push event without a repository")
        head = body.get("head_commit") if isinstance(body.get("head_commit"), dict) else {}
        return [
            NormalisedEvent(
                provider=PROVIDER,
                type=event_type,
                entity_type=catalogue_entity(PROVIDER, name, "repositories"),
                external_id=str(repository["id"]),
                payload={
                    "repository": repository,
                    "ref": body.get("ref"),
                    "before": body.get("before"),
                    "after": body.get("after"),
                    "commits": body.get("commits") or [],
                },
                occurred_at=parse_time(head.get("timestamp")),
                complete=False,
                event_id=event_id,
            )
        ]

    subject = body.get(name)
    if isinstance(subject, dict) and "id" in subject:
        return [
            NormalisedEvent(
                provider=PROVIDER,
                type=event_type,
                entity_type=name,
                external_id=str(subject["id"]),
                payload=subject,
                occurred_at=parse_time(subject.get("updated_at")),
                event_id=event_id,
            )
        ]
    return [NormalisedEvent(provider=PROVIDER, type=event_type, event_id=event_id)]
