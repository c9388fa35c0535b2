"""Tracing's pieces in one process: off costs nothing, attributes are ids only, secrets are
scrubbed, orphan client spans are not traced, a full queue is counted."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision

from castiel import queue
from castiel.observability import metrics, tracing
from tests.support.processes import REPO


def test_off_by_default_nothing_is_imported_and_messages_are_unchanged():
    code = (
        "import django, sys; django.setup()\n"
        "from castiel.observability import tracing\n"
        "from django.test import Client\n"
        "Client().get('/healthz')\n"
        "print(tracing.enabled(), sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {
        k: v for k, v in __import__("os").environ.items() if not k.startswith(("OTEL_", "APPLI"))
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False []"
    # A message queued while tracing is off is exactly what it was before tracing existed.
    assert tracing.inject() is None
    assert queue._origin() == queue.ensure_correlation_id()
    assert queue._run_args("a.b", "cid", [1], {}) == ("a.b", "cid", [1], {})
    assert queue._run_args("a.b", ("cid", {"traceparent": "x"}), [1], {}) == (
        "a.b",
        "cid",
        [1],
        {},
        {"traceparent": "x"},
    )


def test_span_attributes_are_named_ids_only():
    with pytest.raises(TypeError, match="email"):
        tracing.set_span_attributes(tenant="t1", email="ada@example.com")
    with pytest.raises(TypeError):
        tracing.span("x", payload="{}")
    assert tracing._clean(
        {
            "tenant": "0b8e6c1e-5a7f-4c35-9d1e-2f7f0e4b8a11",
            "count": 3,
            "outcome": "succeeded",
            "entity_type": "free text, maybe a record's name",
            "run": None,
        }
    ) == {
        "castiel.tenant": "0b8e6c1e-5a7f-4c35-9d1e-2f7f0e4b8a11",
        "castiel.count": 3,
        "castiel.outcome": "succeeded",
    }
    # Off: a shared no-op context and no cost beyond the check.
    assert tracing.span("castiel.push", change="c1") is tracing._NULL

    # A hot path's span: off, its name and ids are never even described.
    def describe(subject):
        raise AssertionError(f"{subject} described while tracing is off")

    assert tracing.span_of(describe, "a change") is tracing._NULL
    with tracing.span_of(describe, "a change") as traced:
        assert traced is None
    tracing.record_error(ValueError("off: nothing to mark"))
    # The ids of many (a provider batch's changes): each kept only if it is an id.
    assert tracing._clean({"change": ["c-1", "not an id!", None, "c-2"]}) == {
        "castiel.change": ["c-1", "c-2"]
    }


def _spans(**attributes):
    provider = TracerProvider()
    captured = []

    class Keep(SpanExporter):
        def export(self, spans):
            captured.extend(spans)
            return SpanExportResult.SUCCESS

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    with provider.get_tracer("t").start_as_current_span("s", attributes=attributes):
        pass
    return captured


def test_secret_attributes_and_query_values_are_scrubbed_before_export():
    [span] = _spans(
        **{
            "http.url": "https://api.example.com/v1/items?api_key=k-123&page=2",
            "url.query": "code=oauth-code&state=s",
            "http.request.header.authorization": "Bearer t0k3n",
            "http.method": "GET",
        }
    )
    [clean] = tracing.scrub([span])
    assert clean.attributes["http.url"] == (
        "https://api.example.com/v1/items?api_key=%5Bredacted%5D&page=2"
    )
    assert clean.attributes["url.query"] == "code=%5Bredacted%5D&state=s"
    assert clean.attributes["http.request.header.authorization"] == "[redacted]"
    assert clean.attributes["http.method"] == "GET"
    assert clean.context == span.context and clean.parent == span.parent
    [untouched] = _spans(**{"http.method": "GET"})
    assert tracing.scrub([untouched])[0] is untouched


def test_a_client_span_without_a_parent_starts_no_trace():
    sampler = tracing.RootClientFilter(ALWAYS_ON)
    assert sampler.should_sample(None, 1, "SELECT", trace.SpanKind.CLIENT).decision is (
        Decision.DROP
    )
    assert sampler.should_sample(None, 1, "GET /", trace.SpanKind.SERVER).decision is (
        Decision.RECORD_AND_SAMPLE
    )
    parent = trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(1, 2, is_remote=True, trace_flags=trace.TraceFlags(1))
        )
    )
    assert sampler.should_sample(parent, 1, "SELECT", trace.SpanKind.CLIENT).decision is (
        Decision.RECORD_AND_SAMPLE
    )
    # A child of a span of this process follows its parent, whatever the inner sampler says.
    never = tracing.RootClientFilter(ALWAYS_OFF)
    kept, dropped = (
        trace.set_span_in_context(
            trace.NonRecordingSpan(trace.SpanContext(1, 2, False, trace.TraceFlags(flags)))
        )
        for flags in (1, 0)
    )
    assert never.should_sample(kept, 1, "GET", trace.SpanKind.CLIENT).decision is (
        Decision.RECORD_AND_SAMPLE
    )
    assert tracing.RootClientFilter(ALWAYS_ON).should_sample(dropped, 1, "x").decision is (
        Decision.DROP
    )
    assert never.should_sample(None, 1, "GET /", trace.SpanKind.SERVER).decision is Decision.DROP


def test_spans_dropped_by_a_full_queue_or_a_failed_export_are_counted():
    release = threading.Event()

    class Stuck(SpanExporter):
        def export(self, spans):
            release.wait(5)
            return SpanExportResult.FAILURE

    queue_full = metrics.SPANS_DROPPED.labels("queue_full")
    failed = metrics.SPANS_DROPPED.labels("export_failed")
    before_full, before_failed = queue_full._value.get(), failed._value.get()
    processor = tracing.watch(
        BatchSpanProcessor(
            tracing.CountingExporter(Stuck()),
            max_queue_size=4,
            max_export_batch_size=1,
            schedule_delay_millis=10,
        )
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(20):
        with tracer.start_as_current_span("s"):
            pass
    assert queue_full._value.get() - before_full >= 10
    release.set()
    processor.shutdown()
    assert failed._value.get() > before_failed


def test_the_exit_flush_exports_queued_spans_and_gives_up_on_a_hung_exporter(monkeypatch):
    exported = []
    release = threading.Event()

    class Hung(SpanExporter):
        def export(self, spans):
            exported.extend(spans)
            release.wait(30)
            return SpanExportResult.SUCCESS

    monkeypatch.setattr(tracing, "EXIT_FLUSH_MILLIS", 300)
    # A schedule delay no test waits for: only the flush exports.
    processor = BatchSpanProcessor(Hung(), schedule_delay_millis=600_000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("last task"):
        pass
    assert not exported
    started = time.monotonic()
    tracing._ExitFlush([processor])()
    assert [span.name for span in exported] == ["last task"]
    # The exporter never answered: the process is let go after the bound, not held.
    assert time.monotonic() - started < 2.0
    release.set()
