"""The trace context a queued message carries (:func:`castiel.observability.tracing.inject`).

Every accepted webhook delivery queues its processing with the receiver's trace context, so
this runs at the receiver's full rate. Through ``opentelemetry.propagate.inject`` it walks
the global composite propagator, which looks up the current context and span once per
propagator, checks the span's type, formats the ids through helper functions and copies the
baggage into a read-only view to find it empty: about a tenth of what tracing cost the
receiver's thread (docs/benchmarks.md, session 14). :func:`inject` writes the same carrier
directly, and only where that is exactly equivalent: when the global propagator is the
default one (``OTEL_PROPAGATORS`` unset or ``tracecontext,baggage``: a
``CompositePropagator`` of exactly a ``TraceContextTextMapPropagator`` and a
``W3CBaggagePropagator``, in that order). Any other propagator, and any baggage, go through
the library itself. tests/observability/test_carrier.py compares the two carriers.
"""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Span
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_DEFAULT = [TraceContextTextMapPropagator, W3CBaggagePropagator]
# The global propagator last found to be the default one (it is set once per process).
_known_default: object = None


def _is_default(textmap) -> bool:
    return (
        type(textmap) is CompositePropagator
        and [type(each) for each in textmap._propagators] == _DEFAULT
    )


def library_inject() -> dict[str, str] | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def inject() -> dict[str, str] | None:
    """The current trace context as a message's carrier (``traceparent``, ``tracestate``,
    ``baggage``), or None when there is none: what :func:`library_inject` returns."""
    global _known_default
    textmap = propagate.get_global_textmap()
    if textmap is not _known_default:
        if not _is_default(textmap):
            return library_inject()
        _known_default = textmap
    context = get_current()
    carrier: dict[str, str] = {}
    # TraceContextTextMapPropagator.inject, with get_current_span's checks.
    span = context.get(_SPAN_KEY)
    if span is not None and isinstance(span, Span):
        ids = span.get_span_context()
        if ids != INVALID_SPAN_CONTEXT:
            trace_id, span_id, flags = ids.trace_id, ids.span_id, ids.trace_flags
            carrier["traceparent"] = f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"
            if ids.trace_state:
                carrier["tracestate"] = ids.trace_state.to_header()
    if context.get(_BAGGAGE_KEY):  # rare: the baggage propagator itself
        textmap._propagators[1].inject(carrier, context)
    return carrier or None
