"""Per-request decisions of the sandbox: rate limit (fixed window) and injected faults."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from sandbox.models import SandboxAccount

FAULTS = ("ok", "429", "500", "503", "timeout", "malformed", "latency", "lost")


@dataclass
class Admission:
    number: int  # this request's sequence number in the account
    fault: str  # "" or one of FAULTS
    limited: bool  # over the account's rate limit
    headers: dict[str, str]
    retry_after: int
    latency: float  # seconds to wait before answering
    timeout_seconds: float


def admit(account_id: int, method: str = "GET") -> Admission:
    """Count the request, apply the rate limit, pick the fault for it (one row lock)."""
    now = timezone.now()
    with transaction.atomic():
        account = SandboxAccount.objects.select_for_update().get(pk=account_id)
        account.request_count += 1
        number = account.request_count
        headers: dict[str, str] = {}
        limited = False
        retry_after = 0
        if account.rate_limit:
            window = timedelta(seconds=account.rate_window_seconds)
            if account.window_started_at is None or now - account.window_started_at >= window:
                account.window_started_at, account.window_count = now, 0
            account.window_count += 1
            reset_at = account.window_started_at + window
            reset_in = max(1, math.ceil((reset_at - now).total_seconds()))
            remaining = max(0, account.rate_limit - account.window_count)
            limited = account.window_count > account.rate_limit
            headers = {
                "X-RateLimit-Limit": str(account.rate_limit),
                "X-RateLimit-Remaining": str(remaining),
                # UTC epoch seconds to the millisecond (as Discord sends it): a whole-second
                # reset would be up to a second late, a whole short window.
                "X-RateLimit-Reset": f"{reset_at.timestamp():.3f}",
                # IETF draft header fields (delta-seconds reset).
                "RateLimit-Limit": str(account.rate_limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset_in),
            }
            if limited:
                retry_after = reset_in
        faults = account.faults or {}
        methods = faults.get("methods")
        faultable = not methods or method.upper() in {str(m).upper() for m in methods}
        script = list(faults.get("script") or []) if faultable else []
        fault = ""
        if script:
            fault = str(script.pop(0))
            account.faults = {**faults, "script": script}
        elif not limited and faultable:
            fault = _random_fault(faults, number)
        if fault == "ok":
            fault = ""
        account.save(
            update_fields=[
                "request_count",
                "window_started_at",
                "window_count",
                "faults",
            ]
        )
    if fault == "429":
        retry_after = int(faults.get("retry_after", 1))
    return Admission(
        number=number,
        fault=fault,
        limited=limited,
        headers=headers,
        retry_after=retry_after,
        latency=float(faults.get("latency_ms", 0)) / 1000,
        timeout_seconds=float(faults.get("timeout_seconds", 10)),
    )


def _random_fault(faults: dict, number: int) -> str:
    # Seeded by (seed, request number): the same configuration fails the same requests.
    rng = random.Random(f"{faults.get('seed', 0)}:{number}")  # noqa: S311 - simulation
    for name, key in (
        ("429", "rate_limit_rate"),
        ("503", "error_rate"),
        ("timeout", "timeout_rate"),
        ("malformed", "malformed_rate"),
        ("lost", "lost_rate"),
    ):
        rate = float(faults.get(key, 0) or 0)
        if rate and rng.random() < rate:
            return name
    return ""
