"""Dotted paths into parsed JSON: ``data.object.id``, ``items.0.id``, ``items.-1.id``.

The one implementation every app uses: field mappings and the generic REST adapter's options
(``integrations.adapters``), the webhook parsers' record ids and the generic parser's options
(``integrations.webhook_events``), webhook dedupe rules and sync dedup rules.

Deliberately tiny (no JSONPath library): each use names one value, and a dotted path is what
operators can type into a form without reading a spec.

* On an object a part is a key (``"-1"`` and ``"0"`` are keys there too).
* On a list a part is an index: ASCII digits, optionally negative — ``-1`` is the last item,
  as in Python. An index outside the list, or any other part on a list, is absent.
* ``""`` is the value itself. Absent values give ``default`` (a present ``null`` is ``None``).
"""

from __future__ import annotations

import re
from typing import Any

MISSING = object()
_INDEX = re.compile(r"-?[0-9]+")


def get_path(data: Any, path: str, default: Any = None) -> Any:
    current = data
    for part in path.split(".") if path else ():
        if isinstance(current, dict):
            current = current.get(part, MISSING)
        elif isinstance(current, list) and _INDEX.fullmatch(part):
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else MISSING
        else:
            current = MISSING
        if current is MISSING:
            return default
    return current


def valid_path(path: str) -> bool:
    """A non-empty path without empty parts (``a..b``, ``.a``, ``a.`` are not paths)."""
    return bool(path) and all(part for part in path.split("."))
