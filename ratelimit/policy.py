"""What is limited, and how much: plain values shared by every backend (no database access)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

TENANT, INTEGRATION, OPERATION = "tenant", "integration", "operation"
LEVELS = (TENANT, INTEGRATION, OPERATION)
STANDARD_OPERATIONS = ("fetch", "create", "update", "delete")
MAX_WINDOW_SECONDS = 86_400


@dataclass(frozen=True)
class Limit:
    """``limit`` units per sliding ``window`` seconds."""

    limit: int
    window: float
    source: str = "default"

    def __post_init__(self):
        if self.limit < 1:
            raise ValueError("a limit must admit at least one request")
        if not 0 < self.window <= MAX_WINDOW_SECONDS:
            raise ValueError(f"a window must be between 1 ms and {MAX_WINDOW_SECONDS} s")

    @property
    def window_ms(self) -> int:
        return max(1, round(self.window * 1000))

    def shared_by(self, processes: int) -> Limit:
        """This limit split between ``processes`` independent limiters (degraded mode)."""
        return replace(self, limit=max(1, math.floor(self.limit / max(1, processes))))


def within(limit: Limit, bound: Limit) -> bool:
    """True when ``limit`` never admits more than ``bound`` in any window of ``bound``'s length.

    A window of the bound's length overlaps at most ``ceil(bound.window / limit.window)``
    windows of ``limit`` (one when ``limit``'s window is the longer), each admitting
    ``limit.limit``: comparing rates alone would let 200 per 45 s pass for 300 per minute,
    though two of those windows fit in a minute (400).
    """
    windows = max(1, math.ceil(bound.window / limit.window - 1e-9))
    return limit.limit * windows <= bound.limit


@dataclass(frozen=True)
class Policy:
    """The limits that apply to one integration: its own, per operation, and its tenant's."""

    tenant: Limit
    integration: Limit
    operations: Mapping[str, Limit] = field(default_factory=dict)
    # Operations not listed above share this limit (adapters may name their own operations).
    default_operation: Limit | None = None

    def for_operation(self, operation: str) -> Limit:
        found = self.operations.get(operation) or self.default_operation
        if found is None:
            raise KeyError(f"no limit for operation {operation!r}")
        return found

    def shared_by(self, processes: int) -> Policy:
        return Policy(
            tenant=self.tenant.shared_by(processes),
            integration=self.integration.shared_by(processes),
            operations={op: lim.shared_by(processes) for op, lim in self.operations.items()},
            default_operation=(
                self.default_operation.shared_by(processes) if self.default_operation else None
            ),
        )


@dataclass(frozen=True)
class Subject:
    """Who is asking: ids as strings, so the limiter never needs a database row."""

    tenant_id: str
    integration_id: str
    operation: str
