"""The receiver's lean span (castiel/observability/lean_span.py) against the SDK's own span:
the same request must give the exporters the same span, field by field and byte by byte, and
the lean span is used only where that holds."""

from __future__ import annotations

import itertools

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation import set_span_in_context

from castiel.observability import otlp
from castiel.observability.lean_span import LeanSpan, recorder_for

REMOTE_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_SPAN = 0x00F067AA0BA902B7


class _Counting(IdGenerator):
    """The same ids, in the same order, for the SDK's span and the lean one."""

    def __init__(self):
        self.reset()

    def reset(self):
        self._spans = itertools.count(0x1000)

    def generate_span_id(self) -> int:
        return next(self._spans)

    def generate_trace_id(self) -> int:
        return 0xABCDEF0123456789ABCDEF0123456789

    def is_trace_id_random(self) -> bool:
        return True


@pytest.fixture
def providers():
    made = []
    yield made
    for provider in made:
        provider.shutdown()  # its batch processor's thread


def _provider(made, sampler=None, limits=None):
    exporter = InMemorySpanExporter()
    ids = _Counting()
    provider = TracerProvider(
        sampler=sampler,
        id_generator=ids,
        span_limits=limits,
        resource=Resource.create({"service.name": "castiel-test"}),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    made.append(provider)
    return provider, exporter, ids


def _parent(flags):
    remote = SpanContext(REMOTE_TRACE, REMOTE_SPAN, is_remote=True, trace_flags=TraceFlags(flags))
    return set_span_in_context(trace.NonRecordingSpan(remote))


def _request(span):
    """What the receiver does to its span while a delivery runs."""
    span.set_attribute("http.status_code", 202)
    span.set_attributes({"castiel.tenant": "t-1", "castiel.outcome": "accepted"})
    span.set_attribute("castiel.batch", ["c-1", "c-2"])  # a sequence: kept as a tuple
    span.set_attribute("castiel.count", 3)
    span.set_status(StatusCode.ERROR, "RuntimeError")
    span.set_status(StatusCode.UNSET)  # never overrides, as a code or a Status
    span.set_status(Status(StatusCode.UNSET))
    span.add_event("retry", {"castiel.attempt": 2, "castiel.kind": "k" * 40}, timestamp=5)
    span.update_name("POST webhooks/<uuid:registration_id>/")
    span.end(end_time=2_000_000_000)
    span.set_attribute("http.status_code", 500)  # after the end: ignored


ATTRIBUTES = {"http.method": "POST", "http.route": "webhooks/<uuid>/", "http.target": "/w/" * 40}


@pytest.mark.parametrize(
    "parent_flags, sampler, limits",
    [
        (None, None, None),  # a root span
        (TraceFlags.SAMPLED, None, None),  # continuing a sampled caller
        (TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID, None, None),
        (TraceFlags.SAMPLED, None, SpanLimits(max_span_attribute_length=16)),  # cut values
        (TraceFlags.SAMPLED, None, SpanLimits(max_attribute_length=16)),  # events' values too
        (TraceFlags.DEFAULT, None, None),  # the caller did not sample: nothing recorded
        (None, sampling.ALWAYS_OFF, None),
        (None, sampling.TraceIdRatioBased(0.5), None),
    ],
)
def test_a_lean_span_is_the_span_the_sdk_gives_the_exporters(
    providers, parent_flags, sampler, limits
):
    provider, exporter, ids = _provider(providers, sampler, limits)
    tracer = provider.get_tracer("castiel")
    recorder = recorder_for(tracer)
    assert recorder is not None
    parent = None if parent_flags is None else _parent(parent_flags)

    sdk = tracer.start_span("POST w", parent, SpanKind.SERVER, dict(ATTRIBUTES))
    ids.reset()
    lean = recorder.start("POST w", parent, dict(ATTRIBUTES))
    assert type(lean) is (LeanSpan if sdk.is_recording() else trace.NonRecordingSpan)
    assert lean.get_span_context() == sdk.get_span_context()
    assert lean.is_recording() == sdk.is_recording()
    _request(sdk)
    _request(lean)
    provider.force_flush()
    finished = exporter.get_finished_spans()
    if not sdk.is_recording() and not sdk.get_span_context().trace_flags.sampled:
        assert finished == ()
        return
    from_sdk, from_lean = finished
    from_lean._start_time = from_sdk.start_time  # the one field that differs: when it began
    fields = (
        "name", "context", "parent", "kind", "start_time", "end_time", "resource",
        "instrumentation_scope", "links", "dropped_attributes", "dropped_events",
    )  # fmt: skip
    assert {f: getattr(from_lean, f) for f in fields} == {f: getattr(from_sdk, f) for f in fields}
    assert dict(from_lean.attributes) == dict(from_sdk.attributes)
    assert (from_lean.status.status_code, from_lean.status.description) == (
        from_sdk.status.status_code,
        from_sdk.status.description,
    )
    assert [(e.name, dict(e.attributes), e.timestamp) for e in from_lean.events] == [
        (e.name, dict(e.attributes), e.timestamp) for e in from_sdk.events
    ]
    assert otlp.encode_span(from_lean) == otlp.encode_span(from_sdk)
    assert (
        encode_spans([from_lean]).SerializeToString()
        == encode_spans([from_sdk]).SerializeToString()
    )


def test_an_exception_is_recorded_by_its_type_only(providers):
    provider, exporter, _ids = _provider(providers)
    span = recorder_for(provider.get_tracer("castiel")).start("POST w", None, {})
    span.record_exception(ValueError("ada@example.com"))
    span.end()
    provider.force_flush()
    [finished] = exporter.get_finished_spans()
    [event] = finished.events
    assert event.name == "exception"
    assert dict(event.attributes) == {"exception.type": "ValueError"}


def test_the_lean_span_only_where_it_is_equivalent(providers):
    provider, _exporter, _ids = _provider(providers)
    assert recorder_for(provider.get_tracer("castiel")) is not None
    # A processor that may act on a span as it starts (here a synchronous one) or none at all.
    synchronous = TracerProvider()
    synchronous.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert recorder_for(synchronous.get_tracer("castiel")) is None
    assert recorder_for(TracerProvider().get_tracer("castiel")) is None
    # Not the SDK's tracer at all (the API's no-op one).
    assert recorder_for(trace.NoOpTracer()) is None
