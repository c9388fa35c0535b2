"""OTLP/HTTP span export with a faster encoder than the library's (``OTLPSpanExporter``).

The official exporter builds one protobuf object per span, attribute and value in Python and
then serializes them, in a thread of the web process: several times the cost of writing the
bytes directly (docs/benchmarks.md, "Session 10"). We deliberately write the bytes ourselves
instead, for the one message the exporter sends (``ExportTraceServiceRequest``): the wire
format is small and stable (OTLP 1.x, proto3), and this encoder gives **the very bytes** the
library's ``encode_spans(…).SerializePartialToString()`` gives, field by field in
field-number order, including its choices: the status always present, empty scope and
resource messages, array and map values, unencodable attributes left out with a logged error
(ours names the key and the error's type, never the value).
tests/observability/test_otlp_encoding.py holds it to that, byte for byte, across every field
and value type. Everything else — HTTP, retries, compression, size limit, the exporter's own
metrics — is the library's.

``CASTIEL_OTLP_ENCODER=library`` goes back to the library's encoder.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

_logger = logging.getLogger(__name__)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
# Span flags (trace.proto): the context's remoteness is known; the parent is remote.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((n,)) for n in range(0x80)]


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return tag + _varint(len(payload)) + payload


def _value(value: Any) -> bytes:
    """An ``AnyValue``'s fields, in the library's order of type checks (bool before int)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError("int value out of the int64 range")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _value(item)) for item in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _field(b"\x32", pairs)
    raise TypeError(f"invalid type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    name = _field(b"\x0a", key.encode()) if key else b""
    return name + _field(b"\x12", _value(value))


@functools.lru_cache(maxsize=4096, typed=True)  # typed: True and 1 are different values
def _scalar_attribute(tag: bytes, key: str, value: bool | int | float) -> bytes:
    """One attribute with a number or a boolean, as a field: most recur from span to span
    (an HTTP status), so the least recently used are kept encoded."""
    return _field(tag, _key_value(key, value))


_SCALARS = frozenset((bool, int, float))
# Attributes with a text value, encoded, by (tag, key, value): most recur from span to span
# (method, route, tenant, outcome). A plain dict, emptied when full, not an LRU cache: the
# least-recently-used bookkeeping cost as much as encoding the values that do not recur.
_TEXTS: dict[tuple[bytes, str, str], bytes] = {}
_TEXTS_KEPT = 4096
# A key's encoded ``KeyValue.key`` field followed by the ``value`` tag, by key.
_KEY_FIELDS: dict[str, bytes] = {}


def _text_attribute(tag: bytes, key: str, value: str) -> bytes:
    """One attribute with a text value, as a field (``_field(tag, _key_value(key, value))``)."""
    key_field = _KEY_FIELDS.get(key)
    if key_field is None:
        key_field = (_field(b"\x0a", key.encode()) if key else b"") + b"\x12"
        if len(_KEY_FIELDS) < _TEXTS_KEPT:
            _KEY_FIELDS[key] = key_field
    text = value.encode()
    size = len(text)
    any_value = (b"\x0a" + _SMALL[size] if size < 0x80 else b"\x0a" + _varint(size)) + text
    size = len(any_value)
    pair = key_field + (_SMALL[size] if size < 0x80 else _varint(size)) + any_value
    size = len(pair)
    return tag + (_SMALL[size] if size < 0x80 else _varint(size)) + pair


def _attributes(tag: bytes, attributes) -> bytes:
    """Repeated ``KeyValue`` fields under ``tag``; one that cannot be encoded is left out."""
    if not attributes:
        return b""
    out = []
    texts = _TEXTS
    for key, value in attributes.items():
        try:
            if type(value) is str:
                cached = texts.get((tag, key, value))
                if cached is None:
                    if len(texts) >= _TEXTS_KEPT:
                        texts.clear()
                    cached = texts[(tag, key, value)] = _text_attribute(tag, key, value)
                out.append(cached)
            elif type(value) in _SCALARS:
                out.append(_scalar_attribute(tag, key, value))
            else:
                out.append(_field(tag, _key_value(key, value)))
        except Exception as error:
            # The key and the error's type only: a value could be anything, and some errors
            # quote it (scrub() has run already).
            _logger.error("Failed to encode key %s: %s", key, type(error).__name__)
    return b"".join(out)


def _optional(tag: bytes, text: str | None) -> bytes:
    return _field(tag, text.encode()) if text else b""


def _count(tag: bytes, number: int) -> bytes:
    return tag + _varint(number) if number else b""


_LOCAL_PARENT = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)
_REMOTE_PARENT = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)


def _trace_state(trace_state) -> bytes:
    if not trace_state:  # None, or empty (most spans): nothing is written either way
        return b""
    return _optional(b"\x1a", ",".join(f"{k}={v}" for k, v in trace_state.items()))


def _event(event) -> bytes:
    return b"".join(
        (
            b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b"",
            _optional(b"\x12", event.name),
            _attributes(b"\x1a", event.attributes),
            _count(b"\x20", event.dropped_attributes),
        )
    )


def _link(link) -> bytes:
    context = link.context
    return b"".join(
        (
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
            _attributes(b"\x22", link.attributes),
            _count(b"\x28", link.dropped_attributes),
            b"\x35" + _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if context.is_remote else 0)),
        )
    )


def _status(status) -> bytes:
    if status is None:
        return b""
    key = (status.status_code, status.description)
    encoded = _STATUSES.get(key)
    if encoded is None:
        encoded = _field(
            b"\x7a",
            _optional(b"\x12", status.description) + _count(b"\x18", status.status_code.value),
        )
        if len(_STATUSES) < 256:  # descriptions are error types: a handful in practice
            _STATUSES[key] = encoded
    return encoded


# Encoded statuses by (code, description): nearly every span's is one of a few.
_STATUSES: dict[tuple[Any, str | None], bytes] = {}


def encode_span(span) -> bytes:
    """One ``Span`` message's fields (trace.proto, fields 1 to 16 in order)."""
    context = span.get_span_context()
    parent = span.parent
    name = span.name
    encoded_name = _NAMES.get(name)
    if encoded_name is None:
        encoded_name = _optional(b"\x2a", name)
        if len(_NAMES) < 1024:  # span names are routes and task names: a few dozen
            _NAMES[name] = encoded_name
    start, end = span.start_time, span.end_time
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        _trace_state(context.trace_state),
        b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent else b"",
        encoded_name,
        _encoded_kind(span.kind),
        b"\x39" + _FIXED64(start) if start else b"",
        b"\x41" + _FIXED64(end) if end else b"",
        _attributes(b"\x4a", span.attributes),
        _count(b"\x50", span.dropped_attributes),
    ]
    if span.events:
        parts.extend(_field(b"\x5a", _event(event)) for event in span.events)
    parts.append(_count(b"\x60", span.dropped_events))
    if span.links:
        parts.extend(_field(b"\x6a", _link(link)) for link in span.links)
    parts.append(_count(b"\x70", span.dropped_links))
    parts.append(_encoded_status(span.status))
    parts.append(_REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT)
    return b"".join(parts)


# Encoded span names, by name.
_NAMES: dict[str, bytes] = {}


def _scope(scope) -> bytes:
    if scope is None:
        return b""
    return b"".join(
        (
            _optional(b"\x0a", scope.name),
            _optional(b"\x12", scope.version),
            _attributes(b"\x1a", scope.attributes),
        )
    )


class _Encoded:
    """The encoding of an immutable object many spans share (the ``Resource`` of a provider,
    the ``InstrumentationScope`` of a tracer, a span kind, a status), computed once per
    object and found again by identity."""

    def __init__(self, encode):
        self.encode = encode
        self.cache: dict[int, tuple[Any, bytes]] = {}

    def __call__(self, item) -> bytes:
        hit = self.cache.get(id(item))
        if hit is not None and hit[0] is item:
            return hit[1]
        encoded = self.encode(item)
        if len(self.cache) >= 64:
            self.cache.clear()
        self.cache[id(item)] = (item, encoded)  # holds the item: its id is not reused
        return encoded


_encoded_resource = _Encoded(lambda resource: _attributes(b"\x0a", resource.attributes))
# The SDK's kinds are the protocol's minus one (an enum's ``value`` and hash are Python calls).
_encoded_kind = _Encoded(lambda kind: b"\x30" + _SMALL[kind.value + 1])
_encoded_scope = _Encoded(_scope)
# A span's status: most spans share one of a few Status objects (the receiver's lean span
# always does), so it is looked up by identity first, then by its code and description.
_encoded_status = _Encoded(_status)


def _group(spans) -> list[tuple[Any, list[tuple[Any, list[Any]]]]]:
    """Spans by resource, then by instrumentation scope, both compared as the library does
    (by equality, in order of first appearance)."""
    groups: list[tuple[Any, list[tuple[Any, list[Any]]]]] = []
    last_resource = last_scope = last_list = None
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        if resource is last_resource and scope is last_scope:
            last_list.append(span)
            continue
        scopes = next((s for r, s in groups if r is resource), None)
        if scopes is None:
            scopes = next((s for r, s in groups if r == resource), None)
        if scopes is None:
            scopes = []
            groups.append((resource, scopes))
        spans_of_scope = next((kept for s, kept in scopes if s is scope or s == scope), None)
        if spans_of_scope is None:
            spans_of_scope = []
            scopes.append((scope, spans_of_scope))
        spans_of_scope.append(span)
        last_resource, last_scope, last_list = resource, scope, spans_of_scope
    return groups


def encode_spans(spans) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` of ``spans``: the bytes the library's
    ``encode_spans(spans).SerializePartialToString()`` gives."""
    out = []
    for resource, scopes in _group(spans):
        scope_spans = []
        for scope, members in scopes:
            body = _field(b"\x0a", _encoded_scope(scope))
            body += b"".join(_field(b"\x12", encode_span(span)) for span in members)
            body += _optional(b"\x1a", scope.schema_url if scope else None)
            scope_spans.append(_field(b"\x12", body))
        resource_spans = (
            _field(b"\x0a", _encoded_resource(resource))
            + b"".join(scope_spans)
            + _optional(b"\x1a", resource.schema_url)
        )
        out.append(_field(b"\x0a", resource_spans))
    return b"".join(out)


@functools.cache
def exporter_class():
    """``OTLPSpanExporter`` (OTLP/HTTP, protobuf) with :func:`encode_spans` as its encoder.

    Its ``export`` is the library's (opentelemetry-exporter-otlp-proto-http 1.45, pinned in
    requirements/base.txt) with one line changed: the request's bytes come from
    :func:`encode_spans`. The size limit, the HTTP client and the exporter's own metrics are
    the library's objects. tests/observability/test_otlp_encoding.py sends the same spans
    through both exporters to a local receiver and compares the bodies."""
    from opentelemetry.exporter.otlp.proto.http._common import (
        RequestPayloadTooLargeError,
        _is_request_too_large,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

    library_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")

    class CastielOTLPSpanExporter(OTLPSpanExporter):
        def export(self, spans) -> SpanExportResult:
            if self._shutdown:
                library_logger.warning("Exporter already shutdown, ignoring batch")
                return SpanExportResult.FAILURE
            with self._metrics.export_operation(len(spans)) as result:
                try:
                    serialized_data = encode_spans(spans)
                except Exception as error:
                    library_logger.error("Failed to encode span batch: %s", error)
                    result.error = error
                    return SpanExportResult.FAILURE
                if _is_request_too_large(serialized_data, self._max_request_size):
                    library_logger.warning(
                        "Dropping span batch: serialized size %d bytes exceeds "
                        "max_request_size %d bytes.",
                        len(serialized_data),
                        self._max_request_size,
                    )
                    result.error = RequestPayloadTooLargeError(
                        f"Serialized span request size {len(serialized_data)} bytes exceeds "
                        f"max_request_size {self._max_request_size} bytes."
                    )
                    return SpanExportResult.FAILURE
                export_result = self._client.export(serialized_data)
                if not export_result.success:
                    result.error = export_result.error
                    result.error_attrs = (
                        {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                        if export_result.status_code is not None
                        else None
                    )
                    return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    return CastielOTLPSpanExporter
