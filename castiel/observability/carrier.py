"""The trace context in and out of carriers, and the current span, on the receiver's path.

Every accepted webhook delivery reads its request's trace context, names its span's ids and
queues its processing with the receiver's trace context, so this runs at the receiver's
full rate. Through the propagation API, injecting walks the global composite propagator,
which looks up the current context and span once per propagator, checks the span's type,
formats the ids through helper functions and copies the baggage into a read-only view to
find it empty; extracting asks each propagator for its header; each look-up of the current
span passes through four functions. Together about a fifth of what tracing cost the
receiver's thread (docs/benchmarks.md, session 14). The functions here give the same
results directly, and only where that is exactly equivalent: when the global propagator is
the default one (``OTEL_PROPAGATORS`` unset or ``tracecontext,baggage``: a
``CompositePropagator`` of exactly a ``TraceContextTextMapPropagator`` and a
``W3CBaggagePropagator``, in that order) and the runtime context is the default
contextvars one. Any other propagator, any baggage and any incoming trace header go through
the library itself. tests/observability/test_carrier.py compares each with the library.
"""

from __future__ import annotations

from opentelemetry import context as context_api
from opentelemetry import propagate
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import INVALID_SPAN, INVALID_SPAN_CONTEXT, Span
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_DEFAULT = [TraceContextTextMapPropagator, W3CBaggagePropagator]
# The global propagator last found to be the default one (it is set once per process).
_known_default: object = None


def _is_default(textmap) -> bool:
    global _known_default
    if textmap is _known_default:
        return True
    if (
        type(textmap) is CompositePropagator
        and [type(each) for each in textmap._propagators] == _DEFAULT
    ):
        _known_default = textmap
        return True
    return False


def _current_context_getter():
    runtime = context_api._RUNTIME_CONTEXT
    if type(runtime) is ContextVarsRuntimeContext:
        return runtime._current_context.get  # what its get_current() returns
    return context_api.get_current


# opentelemetry.context.get_current, without the three calls in between.
current_context = _current_context_getter()


def current_span():
    """``opentelemetry.trace.get_current_span()``: the current context's span, or the invalid
    span when there is none (or the value is not a span)."""
    span = current_context().get(_SPAN_KEY)
    if span is None or not isinstance(span, Span):
        return INVALID_SPAN
    return span


def library_extract_wsgi(environ) -> Context:
    return propagate.extract(environ, getter=wsgi_getter)


def extract_wsgi(environ) -> Context:
    """The trace context of a WSGI request's headers: what :func:`library_extract_wsgi`
    returns. Without a ``traceparent`` or ``baggage`` header the default propagators give
    a new, empty context (their ``extract`` with no context starts from one)."""
    if (
        "HTTP_TRACEPARENT" not in environ
        and "HTTP_BAGGAGE" not in environ
        and _is_default(propagate.get_global_textmap())
    ):
        return Context()
    return library_extract_wsgi(environ)


def library_inject() -> dict[str, str] | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def inject() -> dict[str, str] | None:
    """The current trace context as a message's carrier (``traceparent``, ``tracestate``,
    ``baggage``), or None when there is none: what :func:`library_inject` returns."""
    textmap = propagate.get_global_textmap()
    if not _is_default(textmap):
        return library_inject()
    context = current_context()
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
