"""Rate-limit headers of a generic REST API: every dialect the catalogue knows.

A generic REST integration may talk to any API — one of the catalogue's among them — so it
reads the generic families (``castiel.http.limit_headers``) and what each catalogue provider's
own reader finds (Salesforce's ``Sforce-Limit-Info``, HubSpot's ``X-HubSpot-RateLimit-*``,
GitHub's resource rule). The readers are found through the registry when a response arrives,
never imported: providers stay independent of each other. A quota several readers report is
kept once, as a side quota if any reader says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from castiel.http.limit_headers import Quota, generic_quotas


def read(headers: Mapping[str, str], now: float) -> list[Quota]:
    from integrations.providers import registry

    readers = [generic_quotas] + [
        provider.limit_headers
        for provider in registry.all_providers()
        if provider.limit_headers is not None
        and not getattr(provider.limit_headers, "reads_the_catalogue", False)
    ]
    merged: dict[tuple, Quota] = {}
    for reader in readers:
        for quota in reader(headers, now):
            key = (quota.limit, quota.remaining, quota.reset_after, quota.name)
            seen = merged.get(key)
            merged[key] = (
                quota if seen is None else dataclasses.replace(seen, side=seen.side or quota.side)
            )
    return list(merged.values())


# Not asked by another catalogue-wide reader (a copy of this folder), which would ask back.
read.reads_the_catalogue = True
