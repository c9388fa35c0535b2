"""Pagination styles shared by REST adapters.

Each style turns a stored cursor (a small JSON dict, or ``None`` for the first page) into the
request to make, and a response into the next cursor (``None`` when there are no more pages):

========  ==========================================  ======================================
style     request                                     next page
========  ==========================================  ======================================
cursor    ``?cursor=<token>&limit=N``                 token at ``next_cursor_path`` in body
offset    ``?offset=K&limit=N``                       K + records, until a short page
page      ``?page=P&per_page=N``                      ``next_page_path`` in body (json-server
                                                      1.0 ``next``) or P+1 until a short page
link      first ``?page=1&per_page=N``, then the URL  ``Link: <…>; rel="next"`` (RFC 8288,
          from the previous ``Link`` header           json-server 0.17, GitHub)
since     ``?updated_since=T&limit=N`` sorted by      T = last record's updated-at; records at
          updated-at ascending                        T already seen are remembered by id
none      one request                                 —
========  ==========================================  ======================================
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from integrations.adapters.base import AdapterConfigError, AdapterError, InvalidCursor
from integrations.jsonpath import get_path

STYLES = ("cursor", "offset", "page", "link", "since", "none")
MAX_PAGE_SIZE = 10_000


def dig(body: Any, path: str) -> Any:
    """``body`` at a dotted ``path`` ("" is the body itself); None if absent
    (:func:`integrations.jsonpath.get_path`, negative list indices included)."""
    return get_path(body, path)


class Paginator:
    style = "none"
    defaults: dict[str, Any] = {}

    def __init__(self, options: dict[str, Any]):
        self.options = {**self.defaults, **options}
        self.page_size = self.options.get("page_size", 100)

    def validate(self) -> None:
        size = self.page_size
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE_SIZE:
            raise AdapterConfigError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")

    def validate_cursor(self, cursor: dict | None) -> None:
        if cursor is not None and not isinstance(cursor, dict):
            raise InvalidCursor(f"cursor must be an object, not {type(cursor).__name__}")

    def request(self, cursor: dict | None, since: str | None) -> tuple[str | None, dict]:
        """(absolute URL to use instead of the list path, or None; query parameters)."""
        return None, {}

    def next_cursor(self, cursor, response, body, records) -> dict | None:
        return None

    def filter_records(self, cursor, records) -> list[dict]:
        return records

    def _int(self, cursor: dict, key: str, minimum: int = 0) -> int:
        value = cursor.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise InvalidCursor(f"cursor {key!r} must be an integer ≥ {minimum}, not {value!r}")
        return value


class NoPagination(Paginator):
    style = "none"


class CursorPagination(Paginator):
    style = "cursor"
    defaults = {"cursor_param": "cursor", "size_param": "limit", "next_cursor_path": "next_cursor"}

    def validate_cursor(self, cursor):
        super().validate_cursor(cursor)
        if cursor is not None and not isinstance(cursor.get("token"), str):
            raise InvalidCursor("cursor needs a string 'token'")

    def request(self, cursor, since):
        params = {self.options["size_param"]: self.page_size}
        if cursor:
            params[self.options["cursor_param"]] = cursor["token"]
        return None, params

    def next_cursor(self, cursor, response, body, records):
        token = dig(body, self.options["next_cursor_path"])
        if token in (None, "", False):
            return None
        if not isinstance(token, str | int):
            raise AdapterError(
                f"next cursor at {self.options['next_cursor_path']!r} is not a string"
            )
        return {"token": str(token)}


class OffsetPagination(Paginator):
    style = "offset"
    defaults = {"offset_param": "offset", "size_param": "limit", "total_path": ""}

    def validate_cursor(self, cursor):
        super().validate_cursor(cursor)
        if cursor is not None:
            self._int(cursor, "offset")

    def request(self, cursor, since):
        offset = cursor["offset"] if cursor else 0
        return None, {
            self.options["offset_param"]: offset,
            self.options["size_param"]: self.page_size,
        }

    def next_cursor(self, cursor, response, body, records):
        offset = (cursor["offset"] if cursor else 0) + len(records)
        total = dig(body, self.options["total_path"]) if self.options["total_path"] else None
        if isinstance(total, int):
            return {"offset": offset} if offset < total and records else None
        return {"offset": offset} if len(records) >= self.page_size else None


class PageNumberPagination(Paginator):
    style = "page"
    defaults = {
        "page_param": "page",
        "size_param": "per_page",
        "start_page": 1,
        "next_page_path": "",
    }

    def validate_cursor(self, cursor):
        super().validate_cursor(cursor)
        if cursor is not None:
            self._int(cursor, "page", minimum=0)

    def request(self, cursor, since):
        page = cursor["page"] if cursor else self.options["start_page"]
        return None, {self.options["page_param"]: page, self.options["size_param"]: self.page_size}

    def next_cursor(self, cursor, response, body, records):
        page = cursor["page"] if cursor else self.options["start_page"]
        path = self.options["next_page_path"]
        if path:
            nxt = dig(body, path)
            if nxt in (None, "", False):
                return None
            try:
                nxt = int(nxt)
            except (TypeError, ValueError):
                raise AdapterError(f"next page at {path!r} is not a number: {nxt!r}") from None
            return {"page": nxt} if nxt > page else None
        return {"page": page + 1} if len(records) >= self.page_size else None


class LinkHeaderPagination(Paginator):
    """RFC 8288 ``Link`` headers; the next URL must stay on the integration's origin."""

    style = "link"
    defaults = {"page_param": "page", "size_param": "per_page", "start_page": 1}

    def __init__(self, options, *, origin: str = ""):
        super().__init__(options)
        self.origin = origin

    def validate_cursor(self, cursor):
        super().validate_cursor(cursor)
        if cursor is not None:
            url = cursor.get("url")
            if not isinstance(url, str) or not self._same_origin(url):
                raise InvalidCursor("cursor needs a 'url' on the integration's own origin")

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and (
            not self.origin or f"{parts.scheme}://{parts.netloc}" == self.origin
        )

    def request(self, cursor, since):
        if cursor:
            return cursor["url"], {}
        params = {self.options["size_param"]: self.page_size}
        if self.options["page_param"]:
            params[self.options["page_param"]] = self.options["start_page"]
        return None, params

    def next_cursor(self, cursor, response, body, records):
        nxt = (response.links or {}).get("next", {}).get("url")
        if not nxt:
            return None
        if not self._same_origin(nxt):
            raise AdapterError("Link rel=next points at another origin; refusing to follow it")
        return {"url": nxt}


class SincePagination(Paginator):
    """Keyset paging on the updated-at field (``>=`` the last value, ids at it remembered).

    The provider must sort by updated-at ascending (``sort_params``). ``>=`` rather than ``>``
    so records sharing the boundary timestamp are never skipped; the ids already taken at
    that timestamp are filtered out of the next page.
    """

    style = "since"
    defaults = {"since_param": "updated_since", "size_param": "limit"}

    def __init__(self, options, *, updated_at, external_id):
        super().__init__(options)
        self._updated_at = updated_at
        self._external_id = external_id

    def validate(self):
        super().validate()
        if not self.options.get("since_param"):
            raise AdapterConfigError("since pagination needs 'since_param'")

    def validate_cursor(self, cursor):
        super().validate_cursor(cursor)
        if cursor is not None:
            if not isinstance(cursor.get("since"), str) or not cursor["since"]:
                raise InvalidCursor("cursor needs a non-empty string 'since'")
            if not isinstance(cursor.get("seen", []), list):
                raise InvalidCursor("cursor 'seen' must be a list")

    def request(self, cursor, since):
        params = {self.options["size_param"]: self.page_size}
        value = cursor["since"] if cursor else since
        if value:
            params[self.options["since_param"]] = value
        return None, params

    def filter_records(self, cursor, records):
        if not cursor:
            return records
        seen = set(cursor.get("seen", []))
        return [
            r
            for r in records
            if not (self._updated_at(r) == cursor["since"] and self._external_id(r) in seen)
        ]

    def next_cursor(self, cursor, response, body, records):
        # ``records`` is the page as received (before filter_records): its size decides
        # whether more may follow.
        if len(records) < self.page_size:
            return None
        last = self._updated_at(records[-1])
        if not last:
            raise AdapterError("since pagination needs an updated-at value on every record")
        at_last = {self._external_id(r) for r in records if self._updated_at(r) == last}
        if cursor and cursor["since"] == last:
            previously = set(cursor.get("seen", []))
            if at_last <= previously:
                # A full page of records all at the boundary timestamp, all seen before:
                # keyset paging cannot move on without skipping records.
                raise AdapterError(
                    f"more than page_size ({self.page_size}) records share updated-at "
                    f"{last}; raise page_size or use another pagination style"
                )
            at_last |= previously
        return {"since": last, "seen": sorted(at_last)}


def paginator_for(options: dict[str, Any], *, origin: str, updated_at, external_id) -> Paginator:
    style = options.get("style", "page")
    if style == "cursor":
        return CursorPagination(options)
    if style == "offset":
        return OffsetPagination(options)
    if style == "page":
        return PageNumberPagination(options)
    if style == "link":
        return LinkHeaderPagination(options, origin=origin)
    if style == "since":
        return SincePagination(options, updated_at=updated_at, external_id=external_id)
    if style == "none":
        return NoPagination(options)
    raise AdapterConfigError(f"pagination style must be one of {', '.join(STYLES)}, not {style!r}")
