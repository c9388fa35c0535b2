"""The API's JSON parser: valid JSON that no database column can store is refused up front.

JSON allows ``\\u0000`` and unpaired surrogates (``\\ud800``) in strings; PostgreSQL cannot
store NUL in text or jsonb, and no database can store a string that is not valid Unicode.
Refusing them here, once, gives every endpoint a clear 400 instead of a 500 from deep inside a
write (found by schemathesis).

Nesting is bounded too: Python's json raises ``RecursionError`` (not ``ValueError``) past about
a thousand levels, and a document just under that still breaks whatever walks it later
(serializers, ``json.dumps`` into the database). No Castiel payload nests more than
``MAX_DEPTH`` levels; deeper is a 400 ``parse_error`` before anything else sees it.
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_DEPTH = 100


def _check(value, path: str = "", depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON may not nest more than {MAX_DEPTH} levels deep.")
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ParseError(
                f"JSON strings may not contain NUL characters or unpaired surrogates"
                f"{f' (at {path})' if path else ''}."
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, path, depth + 1)
            _check(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)


class StorableJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON may not nest more than {MAX_DEPTH} levels deep.") from None
        _check(data)
        return data
