"""django-q2 entry points of the sandbox."""


def deliver_webhook(delivery_id: int):
    from sandbox.services import deliver

    return deliver(delivery_id=delivery_id)
