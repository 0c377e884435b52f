"""The admin console with many calls in Redis: server time per page, the index's memory per
call, and the webhook's speed with the console on and off (issue #13).

How: a throwaway Redis gets ``--calls`` calls (default 10,000) as the product writes them:
each ``call.ended`` body (the documented fixture, its own call id, one of ``calls / 5``
numbers, one of 5 agents) goes through crmsync's real webhook app (Flask's test client:
validation, dedupe, the Lua enqueue), then its sync record and its index entry are written
the way the job writes them (``record.update`` and ``CallIndex.write`` with the call's
summary), with a spread of states (80 % synced, 8 % partial, 5 % skipped, 5 % failed, 2 %
queued) and first-seen times spread over 7 days. The RQ jobs are left queued (no worker
runs: the pages, not the CRM, are measured).

* Server time: the console app (``create_app`` with ``CONSOLE_PASSWORD``), logged in through
  its own login form, asked each page ``--repeat`` times by Flask's test client; the time
  from request to complete answer, median and 95th percentile. Target: each under 100 ms.
* Index memory: ``MEMORY USAGE`` of every ``crmsync:index:*`` key, divided by the calls,
  beside the same figure for everything else a call keeps.
* Ingest with the console on / off: webhooks per second through the in-process app, the two
  apps taking turns over ``--rounds`` rounds; the ratio of the medians.

Run: ``.venv/bin/python -m bench.console [--calls 10000] [--repeat 30] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from redis import Redis

from bench.common import FIXTURE, TOKEN, local_redis, machine, table, write_results
from crmsync import callindex, record, store
from crmsync.callindex import CallIndex
from crmsync.events import call_context
from crmsync.settings import Settings
from crmsync.web import create_app

PASSWORD = "bench-console-password"
STATES = ["synced"] * 80 + ["partial"] * 8 + ["skipped"] * 5 + ["failed"] * 5 + ["queued"] * 2
AGENTS = [f"agent-{i}" for i in range(5)]


def env(url: str, console: bool) -> dict[str, str]:
    base = {
        "REDIS_URL": url,
        "WEBHOOK_TOKENS": TOKEN,
        "DEFAULT_REGION": "SA",
        "LOG_LEVEL": "WARNING",
        "CRM": "hubspot",
        "MAPPINGS_DIR": "mappings",
    }
    return base | ({"CONSOLE_PASSWORD": PASSWORD, "SECRET_KEY": "bench-secret-key-0123456789"} if console else {})


def body(call_id: str, number: str, agent: str) -> bytes:
    data = json.loads(FIXTURE.read_text())
    data["callId"] = call_id
    text = json.dumps(data).replace("+966501234567", number).replace("agent-9b21-sales", agent)
    return text.encode()


def seed(url: str, redis: Redis, calls: int) -> float:
    """Store ``calls`` calls; returns the mean microseconds of one index write."""
    client = create_app(Settings.from_env(env(url, False)), redis).test_client()
    index = CallIndex(redis)
    now = time.time()
    spent = 0.0
    for i in range(calls):
        call_id = f"bench-call-{i:06d}"
        number = f"+96655{i % max(calls // 5, 1):07d}"
        answer = client.post(
            "/webhooks/hamsa",
            data=body(call_id, number, AGENTS[i % len(AGENTS)]),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        state = STATES[i % len(STATES)]
        person = {"type": "contact", "id": str(10_000 + i % (calls // 5 or 1)), "created": False}
        record.update(
            redis,
            call_id,
            state=state,
            crm="hubspot",
            person=person,
            activity_id=str(900_000 + i),
            attempts=1,
            updated_at="2026-12-01T10:00:00.000Z",
            reason=None,
            fields={
                "written": {"budget": "80000", "interest_level": "high"},
                "skipped": {},
                "previous": {"budget": None, "interest_level": "low"},
            },
        )
        summary = callindex.summary(call_context(store.load_events(redis, call_id)), "hubspot.yaml")
        summary["time"] = now - 7 * 86400 * (calls - i) / calls
        started = time.perf_counter()
        index.write(call_id, state, call=summary, person=person, crm="hubspot", updated_at="2026-12-01T10:00:00Z")
        spent += time.perf_counter() - started
    return spent / calls * 1e6


def index_memory(redis: Redis) -> tuple[int, int]:
    """Bytes of the index keys, bytes of every other key."""
    index = other = 0
    for key in redis.scan_iter(count=1000):
        size = int(redis.memory_usage(key, samples=0) or 0)  # type: ignore[arg-type]
        if key.startswith(callindex.PREFIX.encode()):
            index += size
        else:
            other += size
    return index, other


def timed(get: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = get()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    times.sort()
    return statistics.median(times), times[max(int(len(times) * 0.95) - 1, 0)]


def pages(url: str, redis: Redis, calls: int, repeat: int) -> list[tuple[str, str, float, float, str]]:
    client = create_app(Settings.from_env(env(url, True)), redis).test_client()
    login = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert client.post("/console/login", data={"csrf": csrf, "password": PASSWORD}).status_code == 303
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * 86400))
    wanted = {
        "overview": "/console/",
        "calls, first page": "/console/calls",
        "calls, state=failed": "/console/calls?state=failed",
        "calls, agent + day": f"/console/calls?agent=agent-2&day={day}",
        "calls, searched by a national number": "/console/calls?q=055+000+0042",
        "calls, searched by call id": f"/console/calls?q=bench-call-{calls // 2:06d}",
        "one call": f"/console/calls/bench-call-{calls // 2:06d}",
    }
    rows = []
    for name, path in wanted.items():
        text = client.get(path).get_data(as_text=True)
        shown = (
            str(len(re.findall(r"<tr>\s*<td>", text)))
            if path.startswith("/console/calls?") or path.endswith("/calls")
            else "—"
        )
        median, p95 = timed(lambda path=path: client.get(path), repeat)
        rows.append((name, f"`{path}`", median, p95, shown))
    return rows


def ingest_ratio(url: str, redis: Redis, rounds: int, per_round: int = 400) -> tuple[list[float], list[float]]:
    """Webhooks per second with the console off and on, alternating."""
    apps = {flag: create_app(Settings.from_env(env(url, flag)), redis).test_client() for flag in (False, True)}
    rates: dict[bool, list[float]] = {False: [], True: []}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for r in range(rounds):
        for flag in (False, True) if r % 2 == 0 else (True, False):
            bodies = [body(f"ingest-{flag}-{r}-{i}", f"+96656{i:07d}", "agent-0") for i in range(per_round)]
            started = time.perf_counter()
            for data in bodies:
                assert apps[flag].post("/webhooks/hamsa", data=data, headers=headers).status_code == 200
            rates[flag].append(per_round / (time.perf_counter() - started))
    return rates[False], rates[True]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--rounds", type=int, default=5, help="ingest rounds per app (default 5)")
    args = parser.parse_args(argv)
    host = machine()
    with local_redis() as (url, redis, _):
        started = time.monotonic()
        write_us = seed(url, redis, args.calls)
        print(f"  seeded {args.calls} calls in {time.monotonic() - started:.0f} s", flush=True)
        index_bytes, other_bytes = index_memory(redis)
        rows = pages(url, redis, args.calls, args.repeat)
        off, on = ingest_ratio(url, redis, args.rounds)
    for name, _, median, p95, _ in rows:
        print(f"  {name:40} median {median:6.1f} ms  p95 {p95:6.1f} ms", flush=True)
    ratio = statistics.median(on) / statistics.median(off)
    body_lines = [
        f"{args.calls:,} calls in Redis; each page asked {args.repeat} times (Flask's test client, in process).",
        "",
        *table(
            ["page", "address", "median ms", "p95 ms", "calls listed", "goal"],
            [(n, a, f"{m:.1f}", f"{p:.1f}", s, "< 100 ms " + ("✓" if p < 100 else "✗")) for n, a, m, p, s in rows],
        ),
        "",
        f"Index memory: {index_bytes / args.calls:,.0f} bytes per call (`MEMORY USAGE` of every `crmsync:index:*` "
        f"key, {index_bytes / 1e6:.1f} MB in all), beside {other_bytes / args.calls:,.0f} bytes per call for "
        "everything else crmsync and RQ keep (events with raw bodies, receipts, sync record, job).",
        f"One index write (the worker's, one Lua call): {write_us:.0f} µs on average.",
        "",
        f"Ingest, in process, {args.rounds} alternating rounds of 400 webhooks: console off "
        f"{statistics.median(off):,.0f}/s, on {statistics.median(on):,.0f}/s (medians): ratio on/off "
        f"**{ratio:.2f}**.",
    ]
    command = f".venv/bin/python -m bench.console --calls {args.calls} --repeat {args.repeat} --rounds {args.rounds}"
    path = write_results(
        "console", "Console: pages with many calls, index memory, ingest on/off", command, host, body_lines
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
