"""The sync engine in the admin: one module per area (autodiscovered through this package)."""

from syncing.admin import conflicts, outbound, records, rules, runs, tasks  # noqa: F401
