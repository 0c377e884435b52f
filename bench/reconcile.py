"""Reconciliation with Hamsa's call history: Hamsa API requests per sweep, and a 5,000-call backfill.

1. **Requests per sweep.** A sandbox Hamsa API holds N calls in the look-back window, of
   which N − M reached crmsync by webhook (stored by the web process's own ingest script,
   with a ``callId`` that differs from the conversation id) and M did not. One sweep
   (``crmsync.hamsa.sweep.sweep``, as the worker's job runs it) over a real Redis; the
   sandbox counts the requests. Goal: ⌈N/200⌉ list pages + M conversation fetches, nothing
   fetched for a call already received.
2. **A 5,000-call backfill.** 5,000 calls over the last three days, none received:
   ``crmsync backfill --since … --json`` as a real process (wall time, Hamsa requests, peak
   RSS from ``/usr/bin/time -v``), then the same window as one sweep in a real
   ``crmsync worker --burst`` (the Procfile's worker) whose peak RSS is read the same way,
   with 1,000 calls beside it to show that memory does not grow with the history (pages
   are streamed, one in memory at a time). The backfill uses the shipped mapping (each
   call is queued as an RQ job; no worker runs meanwhile); in the worker's run the mapping
   subscribes to no ``call.ended``, so the worker sweeps and stores the calls without
   syncing 5,000 calls into a CRM afterwards.

Run: ``.venv/bin/python -m bench.reconcile [--calls 5000]``
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis

from bench.common import BIN, FIXTURE, ROOT, crm_env, local_redis, machine, start_sandbox, table, write_results
from crmsync import events
from crmsync.hamsa.client import HamsaClient
from crmsync.hamsa.reconcile import Reconciler, Rules
from crmsync.hamsa.sweep import sweep
from crmsync.harness import procfile_argv
from crmsync.ingest import Ingest
from crmsync.sandbox.hamsa import LIST_PATH, HamsaSandbox
from crmsync.sub_settings import ReconcileSettings

SWEEPS = [(50, 0), (50, 5), (200, 20), (450, 45), (1000, 100), (1000, 0)]
DEDUPE_TTL = 7 * 24 * 3600  # seconds
LIST = f"GET {LIST_PATH}"
FETCH = "GET /v1/voice-agents/conversation/"


def webhook_event(conversation_id: str, index: int) -> dict[str, Any]:
    body = json.loads(FIXTURE.read_text())
    body = copy.deepcopy(body)
    body["callId"] = f"call_bench-{index}"
    body["data"]["data"]["conversationId"] = conversation_id
    return events.normalise(body, "SA")


def requests_per_sweep(redis: Redis, hamsa: HamsaSandbox, calls: int, missing: int) -> dict[str, Any]:
    redis.flushdb()
    hamsa.reset()
    ids = [hamsa.add_call(ended_ago=600 + i) for i in range(calls)]
    ingest = Ingest(redis, DEDUPE_TTL)
    for i, conversation in enumerate(ids[missing:]):
        event = webhook_event(conversation, i)
        ingest.store(event, events.dedupe_key(event), enqueue=False)
    hamsa.server.requests.clear()
    with HamsaClient(hamsa.api_key, hamsa.url) as client:
        rules = Rules(grace=300, region="SA", enqueue=False)
        summary = sweep(
            redis,
            lambda **hooks: Reconciler(redis, client, ingest, rules, **hooks),
            ReconcileSettings(lookback=7200, grace=300),
            DEDUPE_TTL,
        )
    assert summary is not None and summary.queued == missing and summary.received == calls - missing
    pages, fetches = hamsa.count(LIST), hamsa.count(FETCH)
    goal = max(1, math.ceil(calls / 200)) + missing
    return {"N": calls, "M": missing, "list pages": pages, "fetches": fetches, "total": pages + fetches, "goal": goal}


def seed_history(hamsa: HamsaSandbox, calls: int) -> None:
    hamsa.reset()
    start = datetime.now(UTC) - timedelta(days=3)
    step = (timedelta(days=3) - timedelta(minutes=10)) / calls  # every call ended more than the grace ago
    for i in range(calls):
        hamsa.add_call(
            created_at=start + step * i,
            duration=60,
            user_number=f"+96655{i:07d}",
            outcome={"budget": str(i)},
            transcript=[{"Agent": "Hello"}, {"User": "Hi"}],
        )


def peak_rss_mb(report: Path) -> float:
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def backfill_run(env: dict[str, str], work: Path, calls: int) -> dict[str, Any]:
    report = work / f"backfill-{calls}.time"
    since = (datetime.now(UTC) - timedelta(days=3, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-v", "-o", str(report), str(BIN / "crmsync"), "backfill", "--since", since, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    summary = json.loads(done.stdout)
    return {
        "calls": calls,
        "seconds": seconds,
        "queued": summary["queued"],
        "requests": summary["hamsa_requests"],
        "pages": summary["pages"],
        "rss": peak_rss_mb(report),
    }


def worker_sweep(env: dict[str, str], work: Path, redis: Redis, calls: int) -> dict[str, Any]:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from crmsync import store

    Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).enqueue("crmsync.jobs.reconcile")
    report = work / f"worker-{calls}.time"
    argv = ["/usr/bin/time", "-v", "-o", str(report), *procfile_argv("worker", ROOT / "Procfile"), "--burst"]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    queued = sum(1 for _ in redis.scan_iter("crmsync:conversation:*", count=1000))
    return {"calls": calls, "seconds": seconds, "stored": queued, "rss": peak_rss_mb(report)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls in the backfilled history")
    args = parser.parse_args(argv)
    logging.getLogger("crmsync").setLevel(logging.ERROR)  # the in-process sweeps warn of every missed call
    host = machine()
    with local_redis() as (redis_url, redis, work), HamsaSandbox() as hamsa:
        sweeps = [requests_per_sweep(redis, hamsa, n, m) for n, m in SWEEPS]
        hubspot = start_sandbox("hubspot")
        try:
            mappings = work / "mappings"
            shutil.copytree(ROOT / "mappings", mappings)
            quiet = mappings / "hubspot.yaml"  # the sweep stores calls; no CRM sync afterwards
            quiet.write_text(quiet.read_text().replace("events: [call.ended]", "events: [call.started]", 1))
            env = {
                **crm_env("hubspot", hubspot, redis_url),
                "MAPPINGS_DIR": str(mappings),
                "LOG_LEVEL": "WARNING",
                "HAMSA_API_KEY": hamsa.api_key,
                "HAMSA_BASE_URL": hamsa.url,
                "HAMSA_RECONCILE_GRACE": "60",
                "HAMSA_RECONCILE_LOOKBACK": str(3 * 86400 + 3600),
                "PATH": str(Path(sys.executable).parent),
            }
            runs = []
            for calls in sorted({1000, args.calls}):
                redis.flushdb()
                seed_history(hamsa, calls)
                runs.append(backfill_run({**env, "MAPPINGS_DIR": str(ROOT / "mappings")}, work, calls))
            workers = []
            for calls in sorted({1000, args.calls}):
                redis.flushdb()
                seed_history(hamsa, calls)
                workers.append(worker_sweep(env, work, redis, calls))
        finally:
            hubspot.stop()
    body = [
        "## Hamsa API requests per sweep",
        "",
        *table(
            [
                "N calls in the window",
                "M without a webhook",
                "list pages",
                "conversation fetches",
                "total",
                "goal ⌈N/200⌉ + M",
            ],
            [[r["N"], r["M"], r["list pages"], r["fetches"], r["total"], r["goal"]] for r in sweeps],
        ),
        "",
        "## Backfill (`crmsync backfill --json`, a real process)",
        "",
        *table(
            ["calls", "wall time", "calls/s", "Hamsa requests", "list pages", "queued", "peak RSS"],
            [
                [
                    r["calls"],
                    f"{r['seconds']:.1f} s",
                    f"{r['calls'] / r['seconds']:.0f}",
                    r["requests"],
                    r["pages"],
                    r["queued"],
                    f"{r['rss']:.0f} MB",
                ]
                for r in runs
            ],
        ),
        "",
        "## The same window as one sweep in `crmsync worker --burst`",
        "",
        *table(
            ["calls", "wall time (worker start to exit)", "calls stored", "worker peak RSS"],
            [[r["calls"], f"{r['seconds']:.1f} s", r["stored"], f"{r['rss']:.0f} MB"] for r in workers],
        ),
    ]
    path = write_results(
        "reconcile", "Reconciliation with Hamsa's call history", "python -m bench.reconcile", host, body
    )
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
