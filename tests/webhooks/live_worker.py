"""``python -m tests.webhooks.live_worker``: a real qcluster with recording actions registered.

The sync engine's actions live on another branch; the live tests register stand-ins that
return what they saw (stored on the event's ``actions``), then run the ordinary qcluster.
"""

from __future__ import annotations

import django


def record(name):
    def action(event, context):
        return {
            "action": name,
            "external_id": event.external_id,
            "entity_type": event.entity_type,
            "email": event.payload.get("email"),
        }

    return action


def main() -> None:
    django.setup()
    from django.core.management import call_command

    from webhooks import routing

    for name in (
        routing.UPSERT_RECORD,
        routing.DELETE_RECORD,
        routing.FETCH_ENTITY,
        routing.EVALUATE_RULES,
    ):
        routing.register_action(name, record(name))
    call_command("qcluster")


if __name__ == "__main__":
    main()
