"""Configuration Salesforce returns with its tokens.

The token response names the org's API host (``instance_url``) and the connected user
(``id``: ``https://login.salesforce.com/id/<org id>/<user id>``). Castiel keeps both on the
integration: every API call goes to ``instance_url``, and records last modified by that user
are our own writes coming back (echo suppression).
https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm
"""

from __future__ import annotations


def config_from_token(fields: dict) -> dict:
    updates = {}
    instance_url = fields.get("instance_url") or ""
    if instance_url.startswith("https://"):
        updates["instance_url"] = instance_url.rstrip("/")
    identity = (fields.get("id") or "").rstrip("/")
    if "/id/" in identity:
        updates["integration_user_id"] = identity.rsplit("/", 1)[-1]
    return updates
