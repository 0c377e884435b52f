"""Bursts of calls with worker batching on and off: drain time, 429s, requests per call, lone-call latency.

After a campaign, hundreds of calls end within minutes. A worker that finds other calls
waiting syncs them together in batch requests (``crmsync.batch``, docs/bursts.md); with
``SYNC_BATCH_MAX=1`` every call goes alone, as before batching. For each CRM and each
mode, this benchmark starts the Procfile's real processes (one ``web``, two ``worker``),
a throwaway Redis and a sandbox CRM holding the callers (known, stored in national
format), then:

1. **the burst:** N distinct ``call.ended`` webhooks are posted to the web process over
   HTTP (8 at a time); the clock runs from the first post until every accepted call is
   ``synced``/``partial`` (sync records read every 0.2 s), bounded by ``--timeout``. The
   sandbox records every request: requests per call (one-offs such as describes apart),
   429s, activities per call (duplicates).
   HubSpot's sandbox enforces Starter limits (100 requests per rolling 10 s, 4 searches
   per second, 429 with ``Retry-After`` beyond) and crmsync runs at its default limits;
2. **lone calls:** once the burst has drained and the limits' windows have emptied, 10
   calls are posted one at a time, each after the last is synced and the workers have
   idled for a second; each one's latency runs from its POST until its sync record says
   synced. A lone call must not wait for a batch to gather.

Run alone (about 5 minutes; the HubSpot baseline alone takes over 2):
``.venv/bin/python -m bench.burst [--calls 500] [--crm both] [--skip-baseline]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from redis import Redis

from bench.burst_report import GENERAL, LONE, LONE_GAP, MODES, POSTERS, SEARCH, WORKERS, Run, report
from bench.common import (
    BIN,
    DONE_STATES,
    ROOT,
    WEBHOOK_HEADERS,
    Proc,
    activities,
    call_body,
    count_done,
    crm_env,
    crms_of,
    local_redis,
    machine,
    number,
    seed_caller,
    start_sandbox,
    start_web,
    states,
    wait_until,
    write_results,
)

POLL = 0.2  # seconds between two reads of the burst's sync records
QUIET = {"hubspot": GENERAL[1], "salesforce": 1.0}  # seconds after a burst before the lone calls


@dataclass
class Stack:
    """The running processes of one run, and what they talk to."""

    crm: str
    sandbox: Any
    redis: Redis
    env: dict[str, str]
    port: int
    processes: list[Proc]


@contextlib.contextmanager
def stack(crm: str, callers: int, extra: dict[str, str]) -> Iterator[Stack]:
    """A sandbox ``crm`` holding ``callers`` known callers, a throwaway Redis, the Procfile's
    web and two workers (``extra`` added to their environment), all ready; stopped after."""
    limits = {"rate_limit": GENERAL, "search_rate_limit": SEARCH} if crm == "hubspot" else {}
    sandbox = start_sandbox(crm, **limits)
    processes: list[Proc] = []
    try:
        with local_redis() as (redis_url, redis, work):
            for index in range(callers):
                seed_caller(crm, sandbox, number("known", index))
            env = crm_env(crm, sandbox, redis_url, **extra)  # crmsync's default limits
            web, port = start_web(env, work)
            processes.append(web)
            processes += [Proc.procfile("worker", env, work / f"worker-{n}.log") for n in range(WORKERS)]
            wait_workers(redis, WORKERS, timeout=30)
            yield Stack(crm, sandbox, redis, env, port, processes)
    finally:
        for process in processes:
            process.stop()
        sandbox.stop()


def wait_workers(redis: Redis, count: int, timeout: float) -> None:
    from rq import Worker

    if not wait_until(lambda: Worker.count(connection=redis) >= count, timeout, interval=0.2):
        raise RuntimeError(f"{count} workers did not register within {timeout:.0f} s")


class Poster:
    """Posts ``call.ended`` webhooks to the web process over one HTTP session."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/webhooks/hamsa"
        self.session = requests.Session()

    def post(self, body: bytes) -> str:
        """The answer's kind: ``accepted``, another status, ``HTTP 503``, ``error …``."""
        try:
            answer = self.session.post(self.url, data=body, headers=WEBHOOK_HEADERS, timeout=10)
        except requests.RequestException as exc:
            return f"error {type(exc).__name__}"
        if answer.status_code != 200:
            return f"HTTP {answer.status_code}"
        return str(answer.json().get("status"))


def post_all(port: int, bodies: list[tuple[str, bytes]]) -> tuple[list[str], dict[str, int], float]:
    """Post every body, ``POSTERS`` at a time; returns (accepted call ids, answers by kind, seconds)."""
    local = threading.local()

    def post(item: tuple[str, bytes]) -> str:
        if not hasattr(local, "poster"):
            local.poster = Poster(port)
        return str(local.poster.post(item[1]))

    started = time.monotonic()
    with ThreadPoolExecutor(POSTERS) as pool:
        answers = list(pool.map(post, bodies))
    seconds = time.monotonic() - started
    kinds: dict[str, int] = {}
    for kind in answers:
        kinds[kind] = kinds.get(kind, 0) + 1
    return [c for (c, _), kind in zip(bodies, answers, strict=True) if kind == "accepted"], kinds, seconds


def drain(redis: Redis, accepted: list[str], started: float, timeout: float) -> float | None:
    """Seconds from ``started`` until every accepted call is synced/partial (None: not within
    ``timeout``); prints progress every 15 s."""
    waiting = set(accepted)
    shown = started
    while True:
        now = states(redis, list(waiting))
        waiting -= {c for c, state in now.items() if state in DONE_STATES}
        elapsed = time.monotonic() - started
        if not waiting:
            return elapsed
        if elapsed >= timeout:
            return None
        if time.monotonic() - shown >= 15:
            shown = time.monotonic()
            print(f"    {elapsed:5.0f} s: {len(accepted) - len(waiting)}/{len(accepted)} synced", flush=True)
        time.sleep(POLL)


def synced(redis: Redis, call_id: str) -> bool:
    return states(redis, [call_id])[call_id] in DONE_STATES


def lone_latencies(run: Stack, first: int, count: int) -> list[float]:
    """Seconds from POST to synced of ``count`` calls posted one at a time to idle workers
    (callers ``first`` … ``first + count - 1``)."""
    poster = Poster(run.port)
    seconds = []
    for index in range(first, first + count):
        call_id = f"bench-lone-{index}"
        body = call_body(call_id, number("known", index))
        time.sleep(LONE_GAP)
        started = time.monotonic()
        if (answer := poster.post(body)) != "accepted":
            raise RuntimeError(f"lone call {call_id}: the webhook answered {answer}")
        if not wait_until(functools.partial(synced, run.redis, call_id), timeout=30, interval=0.005):
            raise RuntimeError(f"lone call {call_id} was not synced within 30 s")
        seconds.append(time.monotonic() - started)
    return seconds


def cli_status(env: dict[str, str], call_id: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "crmsync"), "status", call_id, "--json"],
        env={**env, "PATH": str(BIN)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def measure(crm: str, mode: str, calls: int, timeout: float) -> Run:
    """One burst of ``calls`` calls, then ``LONE`` lone calls, on fresh processes."""
    print(f"== {crm}, {mode}: {calls} calls", flush=True)
    with stack(crm, calls + LONE, MODES[mode]) as run:
        bodies = [(f"bench-burst-{i}", call_body(f"bench-burst-{i}", number("known", i))) for i in range(calls)]
        started = time.monotonic()
        accepted, answers, post_seconds = post_all(run.port, bodies)
        print(f"  posted in {post_seconds:.1f} s: {answers}; draining (at most {timeout:.0f} s) ...", flush=True)
        drained = drain(run.redis, accepted, started, timeout)
        done = count_done(run.redis, accepted)
        recorded, made = list(run.sandbox.requests), activities(crm, run.sandbox)
        print(f"  drained: {drained if drained is None else round(drained, 1)} s; lone calls ...", flush=True)
        sample = cli_status(run.env, accepted[-1]) if accepted else {}
        time.sleep(QUIET[crm])  # the rate limits' windows empty again
        lone = lone_latencies(run, calls, LONE) if drained is not None else []
        dead = [p.log.name for p in run.processes if not p.alive()]
    return Run(
        crm, mode, calls, answers, accepted, post_seconds, drained, timeout, done, made, recorded, sample, lone, dead
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="webhooks in each burst (default 500)")
    parser.add_argument("--timeout", type=float, default=360, help="seconds allowed to drain (default 360)")
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    parser.add_argument("--skip-baseline", action="store_true", help="only batching on (the baseline takes minutes)")
    args = parser.parse_args(argv)
    host = machine()
    crms = crms_of(args)
    modes = list(MODES)[:1] if args.skip_baseline else list(MODES)
    runs = [measure(crm, mode, args.calls, args.timeout) for crm in crms for mode in modes]
    lines = report(runs, args.skip_baseline)
    print("\n".join(lines))
    command = f".venv/bin/python -m bench.burst --calls {args.calls} --timeout {args.timeout:g} --crm {args.crm}"
    command += " --skip-baseline" if args.skip_baseline else ""
    title = f"Bursts of {args.calls} calls, worker batching on and off (HubSpot Starter limits, Salesforce)"
    print(f"written to {write_results('burst', title, command, host, lines)}")
    return 0 if all(r.lost == r.duplicates == 0 and r.drained is not None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
