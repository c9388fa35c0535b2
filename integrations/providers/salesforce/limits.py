"""Salesforce's rate-limit header: ``Sforce-Limit-Info: api-usage=<used>/<allocation>``.

The org's rolling 24-hour allocation (shared by every app and user, no reset time given) and,
for connected apps with their own cap, ``per-app-api-usage=<used>/<cap>(appName=…)``; other
pairs (``api-bursts``) are not the allocation. Declared as ``PROVIDER.limit_headers``, so the
rate limiter and the adapter's pages read it the same way; the generic families still apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from castiel.http.limit_headers import Quota, generic_quotas

_PAIR = re.compile(r"(?P<name>[\w-]+)=(?P<used>\d+)/(?P<limit>\d+)")
ALLOCATIONS = ("api-usage", "per-app-api-usage")


def read(headers: Mapping[str, str], now: float) -> list[Quota]:
    quotas = generic_quotas(headers, now)
    for match in _PAIR.finditer(headers.get("sforce-limit-info") or ""):
        if match["name"] not in ALLOCATIONS:
            continue
        limit, used = int(match["limit"]), int(match["used"])
        # api-usage may exceed the allocation (Salesforce lets orgs burst past it).
        quotas.append(Quota(limit, max(0, limit - used), None, match["name"]))
    return quotas
