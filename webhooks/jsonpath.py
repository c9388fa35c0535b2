"""Dotted paths into parsed JSON: ``data.object.id``, ``items.0.id``.

Deliberately tiny (no JSONPath library): registrations only need to name one value, and a
dotted path is what operators can type into a form without reading a spec.
"""

from __future__ import annotations

from typing import Any

MISSING = object()


def get_path(data: Any, path: str, default: Any = None) -> Any:
    current = data
    for part in path.split(".") if path else []:
        if isinstance(current, dict):
            current = current.get(part, MISSING)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else MISSING
        else:
            current = MISSING
        if current is MISSING:
            return default
    return current


def valid_path(path: str) -> bool:
    return bool(path) and all(part for part in path.split("."))
