"""Tracing's cost: ``webhooks`` and ``inbound`` with tracing on (OTLP to a local receiver) vs off.

Each benchmark runs in its own process (``python -m bench NAME``) alternately without and
with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a receiver in this process, which reads and
acknowledges every export (the protobuf is not decoded: that is the collector's cost, not
Castiel's). ``value`` is the traced throughput, ``baseline`` the untraced one, both the
median over the rounds, so ``ratio`` is what tracing leaves (goal: ≥ 0.9). The receiver
shares the machine with the servers here, unlike a collector in production, so the ratio is
a pessimistic one. Off costs nothing measurable by construction: nothing of OpenTelemetry is
imported (tests/observability/test_tracing.py); ``--off-twice`` measures off against off to
show the noise.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import support


def add_arguments(parser):
    parser.add_argument("--rounds", type=int, default=2, help="off/on alternations per bench")
    parser.add_argument("--webhook-seconds", type=float, default=6.0)
    parser.add_argument("--webhook-rounds", type=int, default=2)
    parser.add_argument("--records", type=int, default=30_000, help="inbound records")
    parser.add_argument("--only", choices=("webhooks", "inbound"), default=None)
    parser.add_argument("--off-twice", action="store_true", help="measure off against off")
    parser.add_argument(
        "--sample",
        type=float,
        default=None,
        help="traced with parentbased_traceidratio at this ratio (default: every trace)",
    )
    parser.add_argument(
        "--disable",
        default="",
        help="instrumentations left out while traced (OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)",
    )


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    exported = 0

    def log_message(self, *args):
        return

    def do_POST(self):
        _Sink.exported += len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def run(args) -> dict:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sink.daemon_threads = True
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATION"))}
    traced = {
        **base,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
        "OTEL_SERVICE_NAME": "castiel-bench",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": args.disable,
    }
    if args.sample is not None:
        traced["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        traced["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample)
    on = base if args.off_twice else traced
    benches = support.hot_path_benches(args)
    try:
        results = support.alternate(benches, base, on, args.rounds)
    finally:
        sink.shutdown()
    return {
        **support.worst_of(results, "traced/untraced throughput (worst bench)"),
        "exported_bytes": _Sink.exported,
        "disabled_instrumentations": args.disable,
        "sampled": args.sample,
    }
