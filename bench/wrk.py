"""HTTP load from wrk, a native load generator: the figure is the server's, not a Python
client's (on this 2-core machine the Python client of the first webhook bench topped out near
the rate it was meant to measure).

Every request is a distinct, pre-signed GitHub delivery: :func:`write_deliveries` signs them
here and writes one file per wrk thread, which ``wrk_deliveries.lua`` streams. ``pause_ms``
paces each connection (wrk's ``delay()``) for a steady rate instead of full speed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_deliveries.lua")


def available() -> str | None:
    return shutil.which("wrk")


def write_deliveries(
    folder: Path, *, count: int, threads: int, body_template: str, secret: str, prefix: str
) -> None:
    """``count`` distinct signed deliveries, split over ``threads`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    key = secret.encode()
    files = [open(folder / f"deliveries-{n}.bin", "wb") for n in range(threads)]
    try:
        for i in range(count):
            delivery = f"{prefix}-{i}"
            body = body_template.replace('"opened"', f'"opened", "_d": "{delivery}"', 1).encode()
            signature = hmac.new(key, body, hashlib.sha256).hexdigest()
            out = files[i % threads]
            out.write(f"{delivery} {signature} {len(body)}\n".encode())
            out.write(body)
            out.write(b"\n")
    finally:
        for out in files:
            out.close()


def run(
    base: str,
    path: str,
    folder: Path,
    *,
    threads: int,
    connections: int,
    seconds: float,
    pause_ms: float = 0,
) -> dict:
    """One wrk run; its summary (requests, status classes, latency percentiles in µs …)."""
    command = [
        available() or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        base,
        "--",
        str(folder),
        path,
        str(int(pause_ms)),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["rate"] = summary["requests"] / (summary["duration_us"] / 1e6)
    return summary
