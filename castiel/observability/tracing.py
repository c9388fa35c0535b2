"""Traces with OpenTelemetry: off unless an exporter is configured, and free when off.

:func:`configure` runs once per process (``ObservabilityConfig.ready``). With no exporter
configured (``settings.CASTIEL_TRACING_EXPORTERS`` empty, the default) it returns at once:
no OpenTelemetry module is imported, no provider is installed, and every helper here costs
one ``None`` check. With one it installs:

* a tracer provider — Castiel's own for OTLP/HTTP (protobuf; endpoint, headers, timeout,
  sampler, batch sizes and resource from the standard ``OTEL_*`` variables), or the one
  Microsoft's ``azure-monitor-opentelemetry`` distro builds when
  ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (traces, and logs correlated to them);
* a batch span processor per exporter, its queue bounded (``OTEL_BSP_MAX_QUEUE_SIZE``):
  spans are handed over in memory and exported by a background thread, so an exporter
  outage never slows or fails a request. Spans lost to a full queue or a failed export are
  counted in ``castiel_trace_spans_dropped_total{reason}``;
* a span per request (``opentelemetry-instrumentation-django``), per outbound HTTP call
  (``-requests``: every hop of :class:`castiel.http.client.OutboundClient`) and per
  PostgreSQL statement inside them (``-psycopg``), and per queued task execution
  (:func:`task_span`, from :func:`castiel.queue.run`), and Castiel's own spans inside a task
  — a webhook action, a pushed change — through :func:`span` / :func:`span_of` (the latter
  free on hot paths while off). The trace context travels through the
  queue beside the correlation id (:func:`inject` at enqueue, extracted in the worker), so
  one webhook delivery is one trace across the web and worker processes.

Attributes never carry secrets or record data: URLs are recorded with secret-looking query
values redacted (the same rule as the logs), request and response headers and bodies are
not recorded, SQL is recorded with its placeholders, and Castiel's own attributes go through
:func:`set_span_attributes`, which accepts only named ids from an allow-list. Logs carry
``trace_id`` and ``span_id`` next to the correlation id, and request and task spans carry
``castiel.correlation_id``: either finds the other.

Over 400 lines on purpose: the exporters, the sampler and scrubbing rules, and the queue
propagation must be read together to trust that tracing is off, free and secret-free.
"""

from __future__ import annotations

import atexit
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from castiel.observability.logging import get_logger

log = get_logger(__name__)

# The tracer Castiel's own spans use; None while tracing is off (the only check on hot paths).
_tracer: Any = None
_configured = False


def _import_inject() -> dict[str, str] | None:
    from castiel.observability.carrier import inject

    return inject()


# The carrier's writer: castiel.observability.carrier.inject once configure() has run.
_inject: Callable[[], dict[str, str] | None] = _import_inject


def _import_current_span() -> Any:
    from opentelemetry import trace

    return trace.get_current_span()


# The current span: ``castiel.observability.carrier.current_span`` (``get_current_span``'s
# result, in one step) once :func:`configure` has run: the helpers on hot paths neither run
# an import statement per call nor pass through the context API's layers.
_current_span: Callable[[], Any] = _import_current_span

# Castiel's span attributes (``castiel.<name>``): ids and outcomes, nothing else.
ALLOWED_ATTRIBUTES = frozenset(
    {
        "tenant",
        "integration",
        "provider",
        "registration",
        "event",
        "task",
        "run",
        "change",
        "batch",
        "record",
        "entity_type",
        "operation",
        "outcome",
        "kind",
        "count",
        "attempt",
        "correlation_id",
        "execution_id",
    }
)
# An attribute value is an id, a code or a number: never free text (which could be data).
_VALUE = re.compile(r"^[A-Za-z0-9._:@/\-]{1,128}$")
# Attributes holding a URL or a query string, written by the HTTP instrumentations.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
_QUERY_ATTRIBUTES = ("url.query",)
_NULL = nullcontext()


def enabled() -> bool:
    return _tracer is not None


def tracer() -> Any:
    """Castiel's tracer, or None while tracing is off."""
    return _tracer


# -- Castiel's own spans and attributes --------------------------------------------------------


def set_span_attributes(**ids: Any) -> None:
    """Name what the current span works on: ``set_span_attributes(tenant=…, run=…)``.

    Only names in :data:`ALLOWED_ATTRIBUTES` are accepted (any other raises ``TypeError``,
    tracing on or off, so a wrong name fails in tests); values must be ids, codes or numbers
    — anything else (free text, which could be record data) is left out.
    """
    if not ids.keys() <= ALLOWED_ATTRIBUTES:
        unknown = ids.keys() - ALLOWED_ATTRIBUTES
        raise TypeError(f"not a span attribute: {', '.join(sorted(unknown))}")
    if _tracer is None:
        return
    span = _current_span()
    if span.is_recording():
        span.set_attributes(_clean(ids))


def span(name: str, **ids: Any) -> AbstractContextManager:
    """A child span around a block (``with tracing.span("castiel.push", change=…):``); a
    shared no-op context while tracing is off. An exception leaving the block marks the span
    failed with its type only (its message may quote data)."""
    unknown = ids.keys() - ALLOWED_ATTRIBUTES
    if unknown:
        raise TypeError(f"not a span attribute: {', '.join(sorted(unknown))}")
    if _tracer is None:
        return _NULL
    return _span(name, _clean(ids))


def span_of(describe: Callable[..., tuple[str, dict[str, Any]]], *subject: Any):
    """:func:`span` for a hot path: ``describe(*subject)`` returns the span's name and ids,
    and is called only while tracing is on — off, this is one ``None`` check (no name is
    formatted, no ids are gathered). ``with tracing.span_of(describe, change) as traced:``
    binds the span, or None while off (``if traced is not None:`` guards work for it)."""
    if _tracer is None:
        return _NULL
    name, ids = describe(*subject)
    return span(name, **ids)


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    with _tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            _failed(current, exc)
            raise


def record_error(exc: BaseException) -> None:
    """Mark the current span failed by ``exc`` (its type only) where the code handles the
    exception itself (a push failure becomes a retry or a dead letter, not a crash)."""
    if _tracer is None:
        return
    current = _current_span()
    if current.is_recording():
        _failed(current, exc)


def _failed(current, exc: BaseException) -> None:
    from opentelemetry import trace

    current.set_attribute("error.type", type(exc).__name__)
    current.set_attribute("castiel.outcome", "error")
    current.set_status(trace.StatusCode.ERROR, type(exc).__name__)


# ``castiel.<name>`` for each allowed name, built once (this runs on every traced delivery).
_ATTRIBUTE_KEYS = {name: f"castiel.{name}" for name in ALLOWED_ATTRIBUTES}


def _clean(ids: dict[str, Any]) -> dict[str, Any]:
    attributes = {}
    for key, value in ids.items():
        kind = type(value)
        if kind is uuid.UUID:  # most ids: always safe, no pattern to match
            attributes[_ATTRIBUTE_KEYS[key]] = str(value)
        elif kind is str:  # codes (an outcome) and ids that are not UUIDs
            if _VALUE.match(value):
                attributes[_ATTRIBUTE_KEYS[key]] = value
        elif isinstance(value, bool | int | float):
            attributes[_ATTRIBUTE_KEYS[key]] = value
        elif isinstance(value, list | tuple):  # ids of many (a provider batch's changes)
            kept = [str(v) for v in value if v is not None and _VALUE.match(str(v))]
            if kept:
                attributes[_ATTRIBUTE_KEYS[key]] = kept
        elif value is not None and _VALUE.match(str(value)):
            attributes[_ATTRIBUTE_KEYS[key]] = str(value)
    return attributes


# -- the queue ---------------------------------------------------------------------------------


def inject() -> dict[str, str] | None:
    """The current trace context as a small dict for a queued message (None when off)."""
    if _tracer is None:
        return None
    return _inject()


@contextmanager
def task_span(func_path: str, carrier: dict | None) -> Iterator[Any]:
    """The span of one queued task execution, a child of the context that queued it."""
    from django_q.conf import Conf
    from opentelemetry import propagate, trace

    from castiel.observability.context import get_correlation_id, get_execution_id

    parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
    attributes = _clean(
        {"correlation_id": get_correlation_id(), "execution_id": get_execution_id()}
    )
    attributes["castiel.task"] = func_path
    attributes["messaging.system"] = "django-q2"
    # The cluster this worker serves: its work kind when clusters are split.
    attributes["messaging.destination.name"] = Conf.CLUSTER_NAME or ""
    with _tracer.start_as_current_span(
        f"task {func_path}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            # The exception's type only: its message may quote data.
            _failed(current, exc)
            raise
        current.set_attribute("castiel.outcome", "ok")


# -- logs --------------------------------------------------------------------------------------


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span in hex, for the logs (tracing on only)."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# -- set-up ------------------------------------------------------------------------------------


def configure() -> None:
    """Install tracing in this process if an exporter is configured (once)."""
    global _configured, _current_span, _inject, _tracer
    from django.conf import settings

    if _configured:
        return
    _configured = True
    exporters = list(settings.CASTIEL_TRACING_EXPORTERS)
    if not exporters:
        return
    from opentelemetry import trace

    processors = []
    if "otlp" in exporters:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processors.append(watch(BatchSpanProcessor(CountingExporter(_otlp_exporter(settings)))))
    if "azure_monitor" in exporters:
        provider = _azure_monitor_provider(settings, processors)
    else:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider, sampling

        provider = TracerProvider(
            sampler=RootClientFilter(sampling._get_from_env_or_default()),
            resource=Resource.create({"service.name": "castiel"}).merge(Resource.create()),
            shutdown_on_exit=False,
        )
        for processor in processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
    _flush_at_exit(processors)
    # An unreachable exporter logs a warning per retry; what was lost is counted in
    # castiel_trace_spans_dropped_total, and the final failure of each batch still logs.
    import logging

    logging.getLogger("opentelemetry.exporter").setLevel(logging.ERROR)
    _instrument(settings)
    from castiel.observability import carrier

    _current_span = carrier.current_span
    _inject = carrier.inject
    _tracer = trace.get_tracer("castiel")
    from castiel.observability import logging as castiel_logging

    castiel_logging.set_trace_ids(current_ids)
    log.info("tracing.configured", exporters=exporters)


def _otlp_exporter(settings):
    """The OTLP/HTTP exporter, with Castiel's encoder and the library's urllib3 transport where
    it is equivalent (castiel/observability/otlp_transport.py), unless
    ``CASTIEL_OTLP_ENCODER=library``: then the library's exporter exactly as it comes."""
    if settings.CASTIEL_OTLP_ENCODER == "library":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from castiel.observability import otlp
    from castiel.observability.otlp_transport import use_lighter_transport

    return use_lighter_transport(otlp.exporter_class()())


# How long a process waits at exit for its last spans to be exported: an exporter outage must
# not hold a worker's recycling, or a cluster's stop, for longer.
EXIT_FLUSH_MILLIS = 5000


class _ExitFlush:
    """Exports the spans still queued when a process exits, within :data:`EXIT_FLUSH_MILLIS`.

    The process that configured tracing runs it from ``atexit``. Its multiprocessing children
    — django-q2's sentinel and its workers, forked — do not: they leave through
    ``multiprocessing``'s bootstrap, which ends in ``os._exit`` and skips ``atexit``, so a
    recycled worker, or every worker of a stopped cluster, lost the spans of the tasks it ran
    since the batch processor's last export. The bootstrap clears the finalizers inherited
    from the parent and then runs the after-fork hooks: :meth:`arm` is one, and registers a
    ``multiprocessing.util.Finalize``, which ``util._exit_function`` runs as the child exits
    normally (its task loop ended). A child killed by a signal still loses its spans.
    """

    def __init__(self, processors):
        self.processors = processors

    def __call__(self) -> None:
        for processor in self.processors:
            try:
                processor._batch_processor.shutdown(timeout_millis=EXIT_FLUSH_MILLIS)
            except Exception:  # noqa: S110 - best effort at exit
                pass

    def arm(self) -> None:
        from multiprocessing import util

        util.Finalize(None, self, exitpriority=10)


# Held here: multiprocessing keeps after-fork hooks by weak reference.
_exit_flush: _ExitFlush | None = None


def _flush_at_exit(processors) -> None:
    global _exit_flush
    from multiprocessing import util

    _exit_flush = _ExitFlush(processors)
    atexit.register(_exit_flush)
    util.register_after_fork(_exit_flush, _ExitFlush.arm)


def _instrument(settings) -> None:
    """Django, requests and psycopg, each unless listed in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS."""
    disabled = set(settings.CASTIEL_TRACING_DISABLED_INSTRUMENTATIONS)
    if "django" not in disabled:
        instrument_django(excluded_urls=settings.CASTIEL_TRACING_EXCLUDED_URLS)
    if "requests" not in disabled:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        if not RequestsInstrumentor().is_instrumented_by_opentelemetry:
            RequestsInstrumentor().instrument(request_hook=_client_request_hook)
    if "psycopg" not in disabled and settings.DB_IS_POSTGRES:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        if not PsycopgInstrumentor().is_instrumented_by_opentelemetry:
            PsycopgInstrumentor().instrument(skip_dep_check=True)


def instrument_django(**options) -> None:
    """``opentelemetry-instrumentation-django`` with Castiel's hooks, its middleware minus the
    webhook receiver, which opens its own, leaner span (django_middleware.py, server_span.py)."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if DjangoInstrumentor().is_instrumented_by_opentelemetry:
        return
    DjangoInstrumentor._opentelemetry_middleware = (
        "castiel.observability.django_middleware.TracingMiddleware"
    )
    DjangoInstrumentor().instrument(
        request_hook=_django_request_hook, response_hook=name_correlation_id, **options
    )


def _redact_url_attributes(span) -> None:
    from castiel.observability.redaction import redact_query, redact_url

    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, redact_url(value))
    for key in _QUERY_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            span.set_attribute(key, redact_query(value))


def _django_request_hook(span, request) -> None:
    if span.is_recording():
        _redact_url_attributes(span)


def name_correlation_id(span, request, response=None) -> None:
    """Put the request's correlation id on its server span (the Django instrumentation's
    response hook; the receiver's own span, castiel/observability/server_span.py)."""
    correlation_id = getattr(request, "correlation_id", None)
    if correlation_id and span.is_recording():
        span.set_attribute("castiel.correlation_id", correlation_id)


def _client_request_hook(span, request) -> None:
    if span.is_recording():
        _redact_url_attributes(span)


# -- Azure Monitor -----------------------------------------------------------------------------

# Instrumented by Castiel itself (with the redaction hooks above) or not wanted: urllib3 and
# urllib would repeat each requests span, and the web frameworks are not in use.
_DISTRO_INSTRUMENTATIONS_OFF = (
    "django",
    "requests",
    "psycopg",
    "psycopg2",
    "urllib",
    "urllib3",
    "flask",
    "fastapi",
)


def _azure_monitor_provider(settings, processors):
    """Let Microsoft's distro build the pipeline; then count its drops, keep orphan client
    spans out, and make its log handler send Castiel's redacted log lines."""
    import logging

    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    configure_azure_monitor(
        connection_string=settings.APPLICATIONINSIGHTS_CONNECTION_STRING,
        resource=Resource.create({"service.name": "castiel"}).merge(Resource.create()),
        span_processors=processors,
        enable_live_metrics=False,
        enable_performance_counters=False,
        instrumentation_options={name: {"enabled": False} for name in _DISTRO_INSTRUMENTATIONS_OFF},
        storage_directory=str(settings.DATA_DIR / "azure-monitor"),
    )
    provider = trace.get_tracer_provider()
    provider.sampler = RootClientFilter(provider.sampler)
    for processor in getattr(provider._active_span_processor, "_span_processors", ()):
        if isinstance(processor, BatchSpanProcessor) and processor not in processors:
            processor._batch_processor._exporter = CountingExporter(
                processor._batch_processor._exporter
            )
            watch(processor)
            processors.append(processor)
    _redacting_log_handler(logging.getLogger())
    return provider


def _redacting_log_handler(logger) -> None:
    """Swap the distro's log handler for one that sends the line Castiel's formatter renders
    (secrets redacted, ids included) and no raw record fields."""
    from opentelemetry._logs import get_logger_provider
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    from castiel.observability.logging import formatter_factory

    class RedactedLoggingHandler(LoggingHandler):
        def _get_attributes(self, record):
            attributes = {"code.function.name": record.funcName, "logger.name": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception.type"] = record.exc_info[0].__name__
            return attributes, None

    for handler in list(logger.handlers):
        if isinstance(handler, LoggingHandler):
            logger.removeHandler(handler)
    handler = RedactedLoggingHandler(logger_provider=get_logger_provider())
    handler.setFormatter(formatter_factory("json"))
    logger.addHandler(handler)


# -- the pipeline's pieces ---------------------------------------------------------------------


# The attribute in which the Azure distro's samplers record a span's sampling rate.
_SAMPLE_RATE = "microsoft.sample_rate"


def _root_client_filter_class():
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class _RootClientFilter(Sampler):
        """A trace starts where work starts (a request, a task): a client span with no
        parent — a query or a call outside any of them (heartbeats, broker polls) — is
        dropped. A span with a parent in this process follows it, so a trace is kept or
        dropped whole (the Azure distro's rate-limited sampler would otherwise decide again
        for every child, and drop the calls of a busy request). Roots and remote parents are
        decided by the configured sampler."""

        def __init__(self, inner: Sampler):
            self.inner = inner

        def should_sample(
            self,
            parent_context,
            trace_id,
            name,
            kind=None,
            attributes=None,
            links=None,
            trace_state=None,
        ):
            parent_span = trace.get_current_span(parent_context)
            parent = parent_span.get_span_context()
            if not parent.is_valid:
                if kind == trace.SpanKind.CLIENT:
                    return SamplingResult(Decision.DROP)
            elif not parent.is_remote:
                if not parent.trace_flags.sampled:
                    return SamplingResult(Decision.DROP, None, parent.trace_state)
                inherited = dict(attributes or {})
                rate = (getattr(parent_span, "attributes", None) or {}).get(_SAMPLE_RATE)
                if rate is not None:
                    inherited[_SAMPLE_RATE] = rate
                return SamplingResult(Decision.RECORD_AND_SAMPLE, inherited, parent.trace_state)
            return self.inner.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"CastielRootClientFilter{{{self.inner.get_description()}}}"

    return _RootClientFilter


def RootClientFilter(inner):
    return _root_client_filter_class()(inner)


def _counting_exporter_class():
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from castiel.observability import metrics

    class _CountingExporter(SpanExporter):
        """Counts exported and failed spans, and scrubs secret-looking attributes (a safety
        net behind the hooks) before the wrapped exporter sees them. Runs on the batch
        processor's thread, never on a request's."""

        def __init__(self, inner):
            self.inner = inner

        def export(self, spans):
            try:
                result = self.inner.export(scrub(spans))
            except Exception:
                log.warning("tracing.export_failed", exc_info=True)
                result = SpanExportResult.FAILURE
            if result == SpanExportResult.SUCCESS:
                metrics.SPANS_EXPORTED.inc(len(spans))
            else:
                metrics.SPANS_DROPPED.labels("export_failed").inc(len(spans))
            return result

        def shutdown(self):
            return self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    return _CountingExporter


def CountingExporter(inner):
    return _counting_exporter_class()(inner)


def watch(processor):
    """Count the spans a batch span processor drops because its queue is full."""
    from castiel.observability import metrics

    queue = processor._batch_processor._queue
    limit = queue.maxlen
    handed_over = processor.on_end
    dropped = metrics.SPANS_DROPPED.labels("queue_full")

    def on_end(span) -> None:
        if len(queue) >= limit and span.context.trace_flags.sampled:
            dropped.inc()
        handed_over(span)

    processor.on_end = on_end
    return processor


def scrub(spans):
    """``spans`` with secret-named attributes and URL query values redacted (copies only of
    the spans that need it)."""
    from castiel.observability.redaction import REDACTED, redact_query, redact_url

    cleaned = []
    rules = _SCRUB_RULES
    for item in spans:
        attributes = item.attributes or {}
        changes = {}
        for key, value in attributes.items():
            rule = rules.get(key)
            if rule is None:
                rule = _scrub_rule(key)
            if rule is _KEEP:
                continue
            if rule is _SECRET:
                changes[key] = REDACTED
            elif rule is _URL and isinstance(value, str) and "?" in value:
                redacted = redact_url(value)
                if redacted != value:
                    changes[key] = redacted
            elif rule is _QUERY and isinstance(value, str):
                redacted = redact_query(value)
                if redacted != value:
                    changes[key] = redacted
        cleaned.append(_copy(item, {**attributes, **changes}) if changes else item)
    return cleaned


# What scrub() does with an attribute, by key: the same few keys recur on every span, and one
# look-up here replaced three tests per attribute (docs/benchmarks.md, "Session 15").
_KEEP, _SECRET, _URL, _QUERY = "keep", "secret", "url", "query"
_SCRUB_RULES: dict[str, str] = {}


def _scrub_rule(key) -> str:
    from castiel.observability.redaction import is_secret_key

    if is_secret_key(key):
        rule = _SECRET
    elif key in _URL_ATTRIBUTES:
        rule = _URL
    elif key in _QUERY_ATTRIBUTES:
        rule = _QUERY
    else:
        rule = _KEEP
    if len(_SCRUB_RULES) < 4096:
        _SCRUB_RULES[key] = rule
    return rule


def _copy(item, attributes):
    from opentelemetry.sdk.trace import ReadableSpan

    return ReadableSpan(
        name=item.name,
        context=item.context,
        parent=item.parent,
        resource=item.resource,
        attributes=attributes,
        events=item.events,
        links=item.links,
        kind=item.kind,
        status=item.status,
        start_time=item.start_time,
        end_time=item.end_time,
        instrumentation_scope=item.instrumentation_scope,
    )
