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
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from redis import Redis

from bench.common import (
    BIN,
    DONE_STATES,
    ROOT,
    TOKEN,
    Proc,
    activities,
    api_requests,
    breakdown,
    call_body,
    crm_env,
    local_redis,
    machine,
    number,
    seed_caller,
    start_sandbox,
    start_web,
    states,
    table,
    wait_until,
    write_results,
)

GENERAL = (100, 10.0)  # HubSpot Starter: requests per rolling window (seconds)
SEARCH = (4, 1.0)  # searches per second
WORKERS = 2
POSTERS = 8  # webhook deliveries in flight at once
POLL = 0.2  # seconds between two reads of the burst's sync records
LONE = 10  # lone calls per run
LONE_GAP = 1.0  # seconds the workers idle before each lone call
QUIET = {"hubspot": GENERAL[1], "salesforce": 1.0}  # seconds after a burst before the lone calls
MODES = {"batching on": {}, "batching off": {"SYNC_BATCH_MAX": "1"}}
GOALS = {"drain": 30.0, "share_429": 0.01, "salesforce_per_call": 0.2}  # seconds, share, requests


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
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        try:
            answer = self.session.post(self.url, data=body, headers=headers, timeout=10)
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


@dataclass
class Run:
    """What one burst and its lone calls measured."""

    crm: str
    mode: str
    calls: int
    answers: dict[str, int]
    accepted: list[str]
    post_seconds: float
    drained: float | None
    timeout: float
    done: int
    made: dict[str, int]  # activities per call id in the sandbox
    recorded: list[Any]  # the sandbox's requests during the burst
    sample: dict[str, Any]
    lone: list[float]
    dead: list[str]

    @property
    def lost(self) -> int:
        return len(self.accepted) - self.done

    @property
    def duplicates(self) -> int:
        return sum(1 for c in self.accepted if self.made.get(c, 0) > 1)

    @property
    def single(self) -> int:
        return sum(1 for c in self.accepted if self.made.get(c) == 1)

    @property
    def per_call(self) -> list[Any]:
        """The burst's requests less the one-offs (logins, describes, property lists)."""
        return api_requests(self.recorded)[0]

    def count(self, search: bool | None = None, ok: bool = True) -> int:
        """Per-call requests answered 2xx (``ok``) or not; ``search``: only searches, or none."""
        return sum(
            1
            for r in self.per_call
            if (200 <= r.status < 300) == ok and (search is None or r.path.endswith("/search") == search)
        )

    @property
    def rejected(self) -> int:
        """429 answers, one-offs included."""
        return sum(1 for r in self.recorded if r.status == 429)

    @property
    def share_429(self) -> float:
        return self.rejected / max(1, len(self.recorded))


def measure(crm: str, mode: str, calls: int, timeout: float) -> Run:
    """One burst of ``calls`` calls, then ``LONE`` lone calls, on fresh processes."""
    print(f"== {crm}, {mode}: {calls} calls", flush=True)
    with stack(crm, calls + LONE, MODES[mode]) as run:
        bodies = [(f"bench-burst-{i}", call_body(f"bench-burst-{i}", number("known", i))) for i in range(calls)]
        started = time.monotonic()
        accepted, answers, post_seconds = post_all(run.port, bodies)
        print(f"  posted in {post_seconds:.1f} s: {answers}; draining (at most {timeout:.0f} s) ...", flush=True)
        drained = drain(run.redis, accepted, started, timeout)
        done = sum(1 for s in states(run.redis, accepted).values() if s in DONE_STATES)
        recorded, made = list(run.sandbox.requests), activities(crm, run.sandbox)
        print(f"  drained: {drained if drained is None else round(drained, 1)} s; lone calls ...", flush=True)
        sample = cli_status(run.env, accepted[-1]) if accepted else {}
        time.sleep(QUIET[crm])  # the rate limits' windows empty again
        lone = lone_latencies(run, calls, LONE) if drained is not None else []
        dead = [p.log.name for p in run.processes if not p.alive()]
    return Run(
        crm, mode, calls, answers, accepted, post_seconds, drained, timeout, done, made, recorded, sample, lone, dead
    )


def floor(r: Run) -> tuple[float, str]:
    """HubSpot's limit-bound minimum drain, from this run's 2xx requests per call and both
    limits (searches are exempt from the 10-second limit: the two run in parallel)."""
    searches = len(r.accepted) * r.count(search=True) / max(1, r.done) / (SEARCH[0] / SEARCH[1])
    general = len(r.accepted) * r.count(search=False) / max(1, r.done) / (GENERAL[0] / GENERAL[1])
    return (searches, "searches") if searches >= general else (general, "other requests")


def floor_text(r: Run) -> str:
    seconds, binding = floor(r)
    return f"{seconds:.1f} s ({binding})"


def max_window(r: Run, seconds: float, *, search: bool) -> int:
    """Most requests the sandbox received in any ``seconds`` window (429s included)."""
    times = sorted(q.at for q in r.recorded if q.path.endswith("/search") == search)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def drain_text(r: Run) -> str:
    return f"**{r.drained:.1f} s**" if r.drained is not None else f"**NOT drained within {r.timeout:.0f} s**"


def per_call_text(r: Run) -> str:
    calls = max(1, len(r.accepted))
    text = f"**{len(r.per_call) / calls:.3f}** ({len(r.per_call)} requests"
    if r.crm == "hubspot":
        text += f": {r.count(search=True) / calls:.3f} search + {r.count(search=False) / calls:.3f} other (2xx)"
    return text + ")"


def rejected_text(r: Run) -> str:
    per_call = r.rejected / max(1, len(r.accepted))
    return f"**{r.rejected}** ({r.share_429:.2%} of {len(r.recorded)}; {per_call:.2%} per call)"


def lone_text(r: Run) -> str:
    if not r.lone:
        return "not measured (the burst did not drain)"
    ms = sorted(1000 * s for s in r.lone)
    return f"**{statistics.median(ms):.0f} ms** ({ms[0]:.0f}–{ms[-1]:.0f} ms, {len(ms)} calls)"


FIGURES: list[tuple[str, Callable[[Run], object], tuple[str, ...]]] = [
    ("webhooks accepted (posting time)", lambda r: f"{len(r.accepted)} / {r.calls} ({r.post_seconds:.1f} s)", ()),
    ("time to drain (first post → all synced/partial)", drain_text, ()),
    ("limit-bound minimum (this run's requests per call)", floor_text, ("hubspot",)),
    ("calls lost (accepted − synced/partial)", lambda r: f"**{r.lost}**", ()),
    ("calls with exactly one activity / with duplicates", lambda r: f"{r.single} / **{r.duplicates}**", ()),
    ("429 answers (share of all requests; per call)", rejected_text, ()),
    ("other non-2xx answers", lambda r: r.count(ok=False) - r.rejected, ()),
    ("CRM requests per call (one-offs excluded)", per_call_text, ()),
    ("one-off requests (logins, describes, properties)", lambda r: len(r.recorded) - len(r.per_call), ()),
    (
        f"most requests in any 10 s / searches in any 1 s (limits {GENERAL[0]}, {SEARCH[0]})",
        lambda r: f"{max_window(r, 10.0, search=False)} / {max_window(r, 1.0, search=True)}",
        ("hubspot",),
    ),
    ("lone call, POST → synced: median (min–max)", lone_text, ()),
    (
        "`crmsync status --json` of the last call",
        lambda r: f"{r.sample.get('state')}, {r.sample.get('attempts')} attempt(s)",
        (),
    ),
]


def crm_table(runs: list[Run]) -> list[str]:
    """One CRM's figures, a column per mode."""
    header = ["figure", *(f"{r.mode} ({r.calls} calls{', SYNC_BATCH_MAX=1' if MODES[r.mode] else ''})" for r in runs)]
    rows = [(name, *(figure(r) for r in runs)) for name, figure, crms in FIGURES if not crms or runs[0].crm in crms]
    dead = [f"{r.mode}: {', '.join(r.dead)}" for r in runs if r.dead]
    if dead:
        rows.append(("processes that died", *("; ".join(dead) for _ in runs)))
    return table(header, rows)


def goals(runs: list[Run]) -> list[str]:
    """Each goal, met or missed, from the runs that measure it."""

    def verdict(met: bool) -> str:
        return "met" if met else "**MISSED**"

    lines = []
    for r in runs:
        lines.append(
            f"- {r.crm}, {r.mode}: lost {r.lost}, duplicates {r.duplicates}: {verdict(r.lost == r.duplicates == 0)}"
        )
        if r.mode != "batching on":
            continue
        if r.crm == "hubspot":
            drained = drain_text(r).strip("*")
            lines.append(
                f"- hubspot drain under {GOALS['drain']:.0f} s with batching: {drained}, "
                f"{verdict(r.drained is not None and r.drained < GOALS['drain'])}"
            )
            lines.append(
                f"- hubspot 429 share under {GOALS['share_429']:.0%}: {r.share_429:.2%}, "
                f"{verdict(r.share_429 < GOALS['share_429'])}"
            )
        else:
            ratio = len(r.per_call) / max(1, len(r.accepted))
            lines.append(
                f"- salesforce requests per call ≤ {GOALS['salesforce_per_call']}: {ratio:.3f}, "
                f"{verdict(ratio <= GOALS['salesforce_per_call'])}"
            )
    return lines


def report(runs: list[Run], skipped: bool) -> list[str]:
    lines = [
        f"Bursts of `call.ended` webhooks (documented fixture, distinct known callers) posted over HTTP to the "
        f"Procfile `web` process ({POSTERS} in flight), synced by {WORKERS} Procfile `worker` processes, with "
        "worker batching on (default settings) and off (`SYNC_BATCH_MAX=1`, each call alone as before batching); "
        f"fresh processes, Redis and sandbox for every column. HubSpot's sandbox enforces Starter limits "
        f"({GENERAL[0]} requests / {GENERAL[1]:g} s rolling, {SEARCH[0]} searches / {SEARCH[1]:g} s, 429 with "
        "Retry-After beyond), crmsync at its default limits (`HUBSPOT_RATE_LIMIT=100/10s`, "
        f"`HUBSPOT_SEARCH_RATE_LIMIT=4/s`). Lone calls: {LONE} per column after the burst, each posted once the "
        f"last was synced and the workers had idled {LONE_GAP:g} s.",
        "",
    ]
    if skipped:
        lines += ["Baseline skipped (`--skip-baseline`): batching off was not measured in this run.", ""]
    for crm in dict.fromkeys(r.crm for r in runs):
        lines += [f"### {crm}", "", *crm_table([r for r in runs if r.crm == crm]), ""]
    lines += ["Requests per kind (per-call requests only):", ""]
    lines += [f"- {r.crm}, {r.mode}: {breakdown(r.per_call)}" for r in runs]
    lines += ["", "Goals:", "", *goals(runs), "", f"Load average after the run: {machine()['load']}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="webhooks in each burst (default 500)")
    parser.add_argument("--timeout", type=float, default=360, help="seconds allowed to drain (default 360)")
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    parser.add_argument("--skip-baseline", action="store_true", help="only batching on (the baseline takes minutes)")
    args = parser.parse_args(argv)
    host = machine()
    crms = ["hubspot", "salesforce"] if args.crm == "both" else [args.crm]
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
