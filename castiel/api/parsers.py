"""The API's JSON parser: valid JSON that no database column can store is refused up front.

JSON allows ``\\u0000`` and unpaired surrogates (``\\ud800``) in strings; PostgreSQL cannot
store NUL in text or jsonb, and no database can store a string that is not valid Unicode.
Refusing them here, once, gives every endpoint a clear 400 instead of a 500 from deep inside a
write (found by schemathesis).
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check(value, path: str = "") -> None:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ParseError(
                f"JSON strings may not contain NUL characters or unpaired surrogates"
                f"{f' (at {path})' if path else ''}."
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, path)
            _check(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")


class StorableJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check(data)
        return data
