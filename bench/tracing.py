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
    results = {}
    try:
        if "webhooks" in benches:
            results["webhooks"] = _paired_webhooks(benches.pop("webhooks"), base, on, args.rounds)
        results.update(support.alternate(benches, base, on, args.rounds))
    finally:
        sink.shutdown()
    return {
        **support.worst_of(results, "traced/untraced throughput (worst bench)"),
        "exported_bytes": _Sink.exported,
        "disabled_instrumentations": args.disable,
        "sampled": args.sample,
    }


# The traced server exports every half second (default: 5 s, or 512 spans): a phase's spans
# are exported within its own phase and the short pause after it, not during the next one.
PAIRED_SCHEDULE_DELAY_MS = "500"


def _paired_webhooks(bench_args: list[str], off: dict, on: dict, runs: int) -> dict:
    """``webhooks`` with two servers at once, untraced and traced, on the same database,
    their phases interleaved in each run (``bench webhooks --compare-env``): both sides see
    the same moments of a shared machine, which separate runs did not (their throughput
    differed by up to 40 % between runs, each side alike). The ratio is the median of the
    runs' ratios."""
    changes = {k: v for k, v in on.items() if off.get(k) != v}
    if changes:
        changes["OTEL_BSP_SCHEDULE_DELAY"] = PAIRED_SCHEDULE_DELAY_MS
    compare = [f"--compare-env={key}={value}" for key, value in sorted(changes.items())]
    if not compare:  # --off-twice: the second server is the same as the first
        compare = ["--compare-env=CASTIEL_BENCH_SIDE=b"]
    done = [support.bench_in_process("webhooks", [*bench_args, *compare], off) for _ in range(runs)]
    return {
        "off": [r["value"] for r in done],
        "on": [r["compare_value"] for r in done],
        "ratios": [r["compare_ratio"] for r in done],
        "ratio": round(support.median([r["compare_ratio"] for r in done]), 3),
        "cpu_unit": support.CPU_UNITS["webhooks"],
        "cpu_off": [r["cpu_ms"] for r in done],
        "cpu_on": [r["compare_cpu_ms"] for r in done],
        "cpu_ratio": round(support.median([r["compare_cpu_ratio"] for r in done]), 3),
        "paired": "one server untraced, one traced, phases interleaved in each run",
    }
