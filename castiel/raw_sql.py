"""Moved to :mod:`castiel.db.raw_sql`; this name stays until credentials/ imports it from there."""

from castiel.db.raw_sql import first, param, select

__all__ = ["first", "param", "select"]
