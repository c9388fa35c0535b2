"""``python -m bench`` lists benchmarks; ``python -m bench NAME [options]`` runs one."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIRED = ("bench", "value", "baseline", "unit", "ratio")


def available() -> dict[str, str]:
    found = {}
    for info in pkgutil.iter_modules([str(HERE)]):
        if info.name.startswith("_") or info.name in ("support",):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "run"):
            found[info.name] = (module.__doc__ or "").strip().splitlines()[0]
    return found


def main(argv: list[str]) -> int:
    benches = available()
    if not argv or argv[0] in ("-h", "--help", "list"):
        print("benchmarks (python -m bench NAME):")
        for name, summary in sorted(benches.items()):
            print(f"  {name:<16} {summary}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in benches:
        print(f"bench: unknown benchmark {name!r} (known: {', '.join(sorted(benches))})")
        return 2
    module = importlib.import_module(f"bench.{name}")
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=module.__doc__)
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    args = parser.parse_args(rest)
    started = time.perf_counter()
    result = module.run(args)
    result.setdefault("bench", name)
    result["seconds"] = round(time.perf_counter() - started, 2)
    missing = [key for key in REQUIRED if key not in result]
    if missing:
        print(f"bench: {name} did not report {missing}")
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main(sys.argv[1:]))
