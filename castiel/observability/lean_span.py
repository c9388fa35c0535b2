"""The receiver's server span, recorded without the SDK's ``Span`` object.

At the receiver's full rate the OpenTelemetry SDK's span lifecycle was most of what tracing
cost on the request's thread (docs/benchmarks.md, session 13): ``Tracer.start_span`` builds
a ``_Span`` with a lock, bounded attribute and event containers (each attribute validated
one by one, under the lock), calls every processor's ``on_start``, and ``end`` copies it all
into a ``ReadableSpan`` for the processors' ``on_end``. A :class:`LeanSpan` keeps the span's
fields in plain slots while the request runs and builds that same ``ReadableSpan`` once, at
its end, so the exporters receive exactly what the SDK would have given them.

It follows ``Tracer.start_span`` (opentelemetry-sdk, pinned in requirements/base.txt) step by
step: the tracer's enabled check, trace id or parent's, the tracer's sampler (with its
attributes and trace state), the random-trace-id flag, a new span id. Only where that is
exactly equivalent: :func:`recorder_for` returns None — and the receiver uses the SDK's span
— unless the tracer is the SDK's and each of its processors is a plain
``BatchSpanProcessor``, whose ``on_start`` and ``_on_ending`` do nothing (Castiel's own OTLP
set-up; the Azure Monitor distro adds processors of its own, so it keeps the SDK's span).
Two of the SDK's extras are not reproduced, and need not be for this one span: its count
limits on a span's attributes and events (128 each by default; this span holds about a dozen
attributes and no events) and its self-monitoring span metrics, which count only when an
OpenTelemetry ``MeterProvider`` is installed — Castiel's OTLP set-up installs none.

tests/observability/test_lean_span.py compares a lean span with the SDK's for the same
request, field by field and encoded, so a new SDK release that changes the contract fails
there first.
"""

from __future__ import annotations

from time import time_ns

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes, _clean_attribute_value
from opentelemetry.sdk.trace import Event, ReadableSpan, SynchronousMultiSpanProcessor, Tracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

_UNSET = Status(StatusCode.UNSET)
_PLAIN = frozenset((bool, int, float))


class Recorder:
    """Starts lean SERVER spans for one SDK tracer (see :func:`recorder_for`)."""

    def __init__(self, tracer: Tracer):
        self._tracer = tracer
        self.on_end = tracer.span_processor.on_end
        self.limits = tracer._span_limits
        self.max_length = tracer._span_limits.max_span_attribute_length

    def start(self, name: str, context, attributes: dict) -> trace.Span:
        tracer = self._tracer
        parent = trace.get_current_span(context).get_span_context()
        if not tracer._is_enabled():
            return trace.NonRecordingSpan(context=parent)
        ids = tracer.id_generator
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = ids.generate_trace_id()
            random_trace_id = ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        kind = SpanKind.SERVER
        sampling = tracer.sampler.should_sample(context, trace_id, name, kind, attributes)
        flags = TraceFlags.SAMPLED if sampling.decision.is_sampled() else TraceFlags.DEFAULT
        if random_trace_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        span_context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=sampling.trace_state,
        )
        if not sampling.decision.is_recording():
            return trace.NonRecordingSpan(context=span_context)
        # The SDK's span keeps the sampler's attributes only: the start attributes reach the
        # sampler, which returns those it keeps (all of them, for the built-in samplers).
        span = LeanSpan(self, name, span_context, parent)
        span.set_attributes(sampling.attributes)
        return span


def recorder_for(tracer) -> Recorder | None:
    """A :class:`Recorder` where a lean span is exactly equivalent to the SDK's, else None."""
    if not isinstance(tracer, Tracer):
        return None
    processor = tracer.span_processor
    if type(processor) is not SynchronousMultiSpanProcessor:
        return None
    processors = processor._span_processors
    if not processors or any(type(each) is not BatchSpanProcessor for each in processors):
        return None
    return Recorder(tracer)


class LeanSpan(trace.Span):
    """A recording SERVER span used by one request's thread (so it needs no lock)."""

    __slots__ = (
        "_attributes", "_context", "_end", "_events", "_name", "_parent", "_recorder",
        "_start", "_status",
    )  # fmt: skip

    def __init__(self, recorder: Recorder, name, context, parent):
        self._recorder = recorder
        self._name = name
        self._context = context
        self._parent = parent
        self._attributes: dict = {}
        self._events: list[Event] = []
        self._status = _UNSET
        self._start = time_ns()
        self._end: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end is None

    def set_attribute(self, key: str, value) -> None:
        # The SDK's BoundedAttributes rules: a key must be a non-empty string; strings are cut
        # at the span limits' length, sequences become tuples, other values their text.
        if self._end is not None or not key or type(key) is not str:
            return
        if type(value) is str:
            limit = self._recorder.max_length
            if limit is not None and len(value) > limit:
                value = value[:limit]
        elif type(value) not in _PLAIN:
            value = _clean_attribute_value(value, self._recorder.max_length)
        self._attributes[key] = value

    def set_attributes(self, attributes) -> None:
        # set_attribute's rules, inlined: a call per attribute was a measurable share of
        # the receiver's traced CPU.
        if self._end is not None:
            return
        limit = self._recorder.max_length
        kept = self._attributes
        for key, value in attributes.items():
            if not key or type(key) is not str:
                continue
            if type(value) is str:
                if limit is not None and len(value) > limit:
                    value = value[:limit]
            elif type(value) not in _PLAIN:
                value = _clean_attribute_value(value, limit)
            kept[key] = value

    def add_event(self, name: str, attributes=None, timestamp: int | None = None) -> None:
        if self._end is None:  # the SDK's event: its attributes cleaned, bounded and frozen
            limits = self._recorder.limits
            attributes = BoundedAttributes(
                limits.max_event_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            )
            self._events.append(Event(name, attributes, timestamp))

    def record_exception(self, exception, attributes=None, timestamp=None, escaped=False):
        # The type only, as Castiel's spans do everywhere: a message may quote data.
        self.add_event("exception", {"exception.type": type(exception).__name__}, timestamp)

    def update_name(self, name: str) -> None:
        if self._end is None:
            self._name = name

    def set_status(self, status, description: str | None = None) -> None:
        # The SDK's rules: OK is final, UNSET is never set.
        if self._end is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def end(self, end_time: int | None = None) -> None:
        if self._end is not None:
            return
        self._end = end_time if end_time is not None else time_ns()
        tracer = self._recorder._tracer
        self._recorder.on_end(
            ReadableSpan(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=tracer.resource,
                attributes=self._attributes,
                events=tuple(self._events),
                kind=SpanKind.SERVER,
                status=self._status,
                start_time=self._start,
                end_time=self._end,
                instrumentation_scope=tracer._instrumentation_scope,
            )
        )
