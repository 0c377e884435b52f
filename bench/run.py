"""Run every benchmark in turn: ``make bench`` or ``python -m bench.run``.

Each entry of ``BENCHMARKS`` is a module with ``main(argv) -> int``; add new ones to the list.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "bench.ingest",
    "bench.requests_per_call",
    "bench.worker_throughput",
    "bench.worker_modes",
    "bench.burst",
    "bench.console",
    "bench.reconcile",
]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        if importlib.import_module(name).main([]) != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
