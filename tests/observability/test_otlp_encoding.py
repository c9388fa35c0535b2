"""Castiel's OTLP encoder gives the library's bytes, byte for byte, for every field and value
type a span can carry; and its exporter sends them over HTTP like the library's does."""

from __future__ import annotations

import logging

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as LibraryExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from castiel.observability import otlp, tracing
from tests.observability.otlp_receiver import running_receiver


class _Keep(SpanExporter):
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _provider(resource: Resource, limits: SpanLimits | None = None):
    kept = _Keep()
    provider = TracerProvider(resource=resource, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(kept))
    return provider, kept


REMOTE = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(1),
    trace_state=TraceState([("castiel", "a1"), ("vendor", "x=y")]),
)


def _sdk_spans() -> list:
    """Spans made by the real SDK: every kind, remote and local parents, events, links,
    statuses, dropped counts, and the attribute types the SDK accepts."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context

    first, kept = _provider(
        Resource.create({"service.name": "castiel", "deployment": "test"}, schema_url="https://s/1")
    )
    second, kept_too = _provider(
        Resource.create({"service.name": "other"}), SpanLimits(max_attributes=2, max_events=1)
    )
    tracer = first.get_tracer("castiel")
    scoped = first.get_tracer(
        "castiel.scoped", "1.2.3", schema_url="https://s/2", attributes={"scope.flag": True}
    )
    remote = set_span_in_context(NonRecordingSpan(REMOTE))
    with tracer.start_as_current_span(
        "POST webhooks/<uuid:registration_id>/",
        context=remote,
        kind=SpanKind.SERVER,
        attributes={
            "http.method": "POST",
            "http.status_code": 202,
            "castiel.tenant": "0b8e6c1e-5a7f-4c35-9d1e-2f7f0e4b8a11",
            "empty": "",
            "zero": 0,
            "negative": -5,
            "int64.max": 2**63 - 1,
            "int64.min": -(2**63),
            "false": False,
            "true": True,
            "ratio": 0.25,
            "float.zero": 0.0,
            "unicode": "résumé ✓",
            "bytes": b"\x00\xff",
            "ids": ("a", "b"),
            "counts": (1, -2, 3),
            "flags": (True, False),
            "floats": (1.5, -0.0),
            "none.in.list": ("a", None),
            "no.items": (),
            "long": "x" * 300,
        },
    ) as parent:
        parent.add_event("retry", {"attempt": 2, "reason": "timeout"})
        parent.add_event("bare")
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "ConnectionError"))
        with scoped.start_as_current_span(
            "linked",
            kind=SpanKind.PRODUCER,
            links=[Link(REMOTE, {"link.kind": "batch"}), Link(REMOTE)],
        ) as linked:
            linked.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("consumer", kind=SpanKind.CONSUMER):
            pass
    with tracer.start_as_current_span("root internal", start_time=1, end_on_exit=False) as root:
        root.end(end_time=2)
    other = second.get_tracer("other")
    with other.start_as_current_span("limited", attributes={"a": 1, "b": 2, "c": 3}) as limited:
        limited.add_event("one")
        limited.add_event("two")
    with other.start_as_current_span(""):
        pass
    trace.get_tracer_provider()  # the global provider is left as it was
    return kept.spans + kept_too.spans


def _odd_spans() -> list:
    """Spans the SDK's validation would not make but an exporter can be handed (instrumentation
    building a ReadableSpan): maps, nested arrays, out-of-range ints, unencodable values."""
    resource = Resource({"service.name": "odd"})
    context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    return [
        ReadableSpan(
            name="odd",
            context=context,
            parent=SpanContext(trace_id=1, span_id=3, is_remote=False),
            resource=resource,
            attributes={
                "map": {"k": "v", "n": 1, "nested": {"deep": [1, "two"]}},
                "nested.list": [[1, 2], ["a"]],
                "too.big": 2**64,
                "unencodable": object(),
                "none": None,
                "": "empty key",
            },
            events=[Event("e", {"x": 1}, timestamp=5)],
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.UNSET),
            start_time=10,
            end_time=20,
            instrumentation_scope=None,
        ),
        ReadableSpan(
            name="no status",
            context=context,
            resource=Resource({"service.name": "odd"}),  # equal, not the same object
            attributes=None,
            status=None,
            start_time=10,
            end_time=20,
            instrumentation_scope=InstrumentationScope("x", None, None),
        ),
    ]


def test_every_status_encodes_like_the_librarys():
    """Statuses are kept encoded by code and description: each pair must stay its own."""
    context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    statuses = [
        Status(StatusCode.ERROR, "ConnectionError"),
        Status(StatusCode.ERROR, "Timeout"),
        Status(StatusCode.ERROR),
        Status(StatusCode.OK),
        Status(StatusCode.UNSET),
        Status(StatusCode.ERROR, "ConnectionError"),
        None,
    ]
    spans = [
        ReadableSpan(name="s", context=context, resource=Resource({}), status=status)
        for status in statuses
    ]
    for span in spans:
        assert otlp.encode_spans([span]) == library_encode([span]).SerializePartialToString()
    assert otlp.encode_spans(spans) == library_encode(spans).SerializePartialToString()


def test_the_encoder_gives_the_librarys_bytes_for_sdk_spans():
    spans = _sdk_spans()
    assert len(spans) == 7
    ours = otlp.encode_spans(spans)
    assert ours == library_encode(spans).SerializePartialToString()
    # And it is the request a collector reads: every span, in its resource and scope.
    decoded = ExportTraceServiceRequest.FromString(ours)
    names = [
        span.name
        for resource in decoded.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(names) == sorted(span.name for span in spans)


def test_the_encoder_gives_the_librarys_bytes_for_odd_values(caplog):
    spans = _odd_spans()
    with caplog.at_level(logging.ERROR):
        ours = otlp.encode_spans(spans)
    # What cannot be encoded (an int beyond int64, an object) is left out and logged by both.
    assert "too.big" in caplog.text and "unencodable" in caplog.text
    # Castiel's log lines name the key, never the value.
    ours_logged = [r.getMessage() for r in caplog.records if r.name == otlp.__name__]
    assert len(ours_logged) == 2 and not any(str(2**64) in line for line in ours_logged)
    assert ours == library_encode(spans).SerializePartialToString()


def test_the_encoder_gives_the_librarys_bytes_for_one_span_at_a_time_and_none():
    for span in _sdk_spans() + _odd_spans():
        assert otlp.encode_spans([span]) == library_encode([span]).SerializePartialToString()
    assert otlp.encode_spans([]) == library_encode([]).SerializePartialToString() == b""


def test_the_exporter_sends_the_librarys_request_over_http():
    spans = _sdk_spans()
    with running_receiver() as receiver:
        endpoint = f"{receiver.url}/v1/traces"
        assert otlp.exporter_class()(endpoint=endpoint).export(spans) == SpanExportResult.SUCCESS
        assert LibraryExporter(endpoint=endpoint).export(spans) == SpanExportResult.SUCCESS
    ours, theirs = receiver.bodies
    assert ours == theirs


def test_the_exporter_fails_like_the_librarys_when_nobody_listens(unused_port):
    endpoint = f"http://127.0.0.1:{unused_port}/v1/traces"
    exporter = otlp.exporter_class()(endpoint=endpoint, timeout=1)
    assert exporter.export(_sdk_spans()[:1]) == SpanExportResult.FAILURE


def test_tracing_exports_with_castiels_encoder_unless_told_otherwise(settings):
    assert isinstance(tracing._otlp_exporter(settings), otlp.exporter_class())
    settings.CASTIEL_OTLP_ENCODER = "library"
    assert type(tracing._otlp_exporter(settings)) is LibraryExporter


def test_text_attributes_encode_like_the_librarys_at_every_length_and_past_the_cache(
    monkeypatch, caplog
):
    """Text attributes are kept encoded (a dict emptied when full): lengths around the one-byte
    length limit at every nesting level, keys of every size, more texts than the dict keeps,
    and a text that is not valid UTF-8 (left out and logged, like the library does)."""
    monkeypatch.setattr(otlp, "_TEXTS_KEPT", 16)
    monkeypatch.setattr(otlp, "_TEXTS", {})
    monkeypatch.setattr(otlp, "_KEY_FIELDS", {})
    context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    resource = Resource({"service.name": "texts"})
    spans = []
    for key in ("k", "key." * 30, "ü" * 70):
        attributes = {f"{key}{size}": "v" * size for size in (0, 1, 100, 110, 120, 125, 127, 128)}
        attributes["é"] = "é" * 64  # 128 bytes of UTF-8
        spans += [
            ReadableSpan(name=f"s{turn}", context=context, resource=resource, attributes=attributes)
            for turn in range(3)
        ]
    spans.append(
        ReadableSpan(
            name="bad", context=context, resource=resource, attributes={"a": "x", "bad": "\ud800"}
        )
    )
    with caplog.at_level(logging.ERROR):
        ours = otlp.encode_spans(spans)
    assert ours == library_encode(spans).SerializePartialToString()
    assert otlp.encode_spans(spans) == ours  # again, from what the dict kept
    assert len(otlp._TEXTS) <= 16 and len(otlp._KEY_FIELDS) <= 16
    ours_logged = [r.getMessage() for r in caplog.records if r.name == otlp.__name__]
    assert ours_logged == ["Failed to encode key bad: UnicodeEncodeError"] * 2
