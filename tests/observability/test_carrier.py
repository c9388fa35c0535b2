"""A queued message's trace context (castiel/observability/carrier.py) is the carrier the
library's ``propagate.inject`` writes, in every context a message can be queued from, and
any propagator but the default one is the library's own."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from castiel.observability import carrier

REMOTE = SpanContext(
    0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
)  # fmt: skip


def _contexts():
    """(name, context) pairs: what a message can be queued from."""
    tracer = TracerProvider().get_tracer("test")
    root = tracer.start_span("root")
    unsampled = NonRecordingSpan(
        SpanContext(REMOTE.trace_id, 0x1234, is_remote=False, trace_flags=TraceFlags(0))
    )
    with_state = NonRecordingSpan(
        SpanContext(
            REMOTE.trace_id, 0x99, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=TraceState([("vendor", "v1"), ("castiel", "x:y")]),
        )
    )  # fmt: skip
    with_baggage = baggage.set_baggage("tenant", "acme", trace.set_span_in_context(root))
    yield "nothing", context.Context()
    yield "a recording span", trace.set_span_in_context(root)
    yield "a remote parent", trace.set_span_in_context(NonRecordingSpan(REMOTE))
    yield "unsampled", trace.set_span_in_context(unsampled)
    yield "trace state", trace.set_span_in_context(with_state)
    yield "the invalid span", trace.set_span_in_context(trace.INVALID_SPAN)
    yield "not a span", context.set_value(_SPAN_KEY, "not a span", context.Context())
    yield "baggage", with_baggage
    yield "baggage only", baggage.set_baggage("k", "v with spaces", context.Context())
    yield "empty baggage", baggage.clear(trace.set_span_in_context(root))


CONTEXTS = list(_contexts())


def _written(inject) -> list:
    written = []
    for name, ctx in CONTEXTS:
        token = context.attach(ctx)
        try:
            written.append((name, inject()))
        finally:
            context.detach(token)
    return written


@pytest.fixture
def textmap():
    previous = propagate.get_global_textmap()
    yield propagate.set_global_textmap
    propagate.set_global_textmap(previous)


def test_the_default_propagators_carrier_is_the_librarys(textmap):
    textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    ours = _written(carrier.inject)
    assert ours == _written(carrier.library_inject)
    kept = dict(ours)
    assert kept["nothing"] is None
    assert kept["a remote parent"] == {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    }
    assert kept["trace state"]["tracestate"] == "vendor=v1,castiel=x:y"
    assert kept["baggage"]["baggage"] == "tenant=acme"


@pytest.mark.parametrize(
    "propagators",
    [
        [TraceContextTextMapPropagator()],
        [W3CBaggagePropagator(), TraceContextTextMapPropagator()],
        [TraceContextTextMapPropagator(), W3CBaggagePropagator(), W3CBaggagePropagator()],
    ],
    ids=["trace context only", "reordered", "three"],
)
def test_any_other_propagator_is_the_librarys_own(textmap, propagators):
    textmap(CompositePropagator(propagators))
    assert _written(carrier.inject) == _written(carrier.library_inject)

    class Custom(TraceContextTextMapPropagator):
        def inject(self, carrier, context=None, setter=None):
            carrier["custom"] = "1"

    textmap(CompositePropagator([Custom(), W3CBaggagePropagator()]))
    assert dict(_written(carrier.inject))["nothing"] == {"custom": "1"}


def test_the_current_span_is_the_librarys():
    for name, ctx in CONTEXTS:
        token = context.attach(ctx)
        try:
            assert carrier.current_span() is trace.get_current_span(), name
        finally:
            context.detach(token)
    assert carrier.current_span() is trace.get_current_span() is trace.INVALID_SPAN


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ENVIRONS = {
    "no trace headers": {"HTTP_X_GITHUB_EVENT": "issues"},
    "traceparent": {"HTTP_TRACEPARENT": TRACEPARENT},
    "traceparent and tracestate": {"HTTP_TRACEPARENT": TRACEPARENT, "HTTP_TRACESTATE": "a=1"},
    "tracestate alone": {"HTTP_TRACESTATE": "a=1"},
    "malformed traceparent": {"HTTP_TRACEPARENT": "00-zz"},
    "empty traceparent": {"HTTP_TRACEPARENT": ""},
    "baggage": {"HTTP_BAGGAGE": "tenant=acme"},
    "empty baggage": {"HTTP_BAGGAGE": ""},
}


def _comparable(value):
    if isinstance(value, trace.Span):
        return type(value), value.get_span_context()
    return value


def _extracted(extract) -> dict:
    """Each environ's extracted context, as what a span started from it would see."""
    seen = {}
    for name, environ in ENVIRONS.items():
        extracted = extract(environ)
        seen[name] = (
            type(extracted),
            trace.get_current_span(extracted).get_span_context(),
            dict(baggage.get_all(extracted)),
            {key: _comparable(value) for key, value in extracted.items()},
        )
    return seen


@pytest.mark.parametrize("default", [True, False], ids=["default propagators", "other"])
def test_a_requests_extracted_context_is_the_librarys(textmap, default):
    if not default:
        textmap(CompositePropagator([TraceContextTextMapPropagator()]))
    for outside in CONTEXTS[:2]:  # what is current around the request changes nothing
        token = context.attach(outside[1])
        try:
            assert _extracted(carrier.extract_wsgi) == _extracted(carrier.library_extract_wsgi)
        finally:
            context.detach(token)
    remote = trace.get_current_span(carrier.extract_wsgi(ENVIRONS["traceparent"]))
    assert remote.get_span_context().trace_id == REMOTE.trace_id
