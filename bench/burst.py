"""A burst of 500 calls against HubSpot Starter's rate limits: time to drain, 429s, calls lost.

After a campaign, hundreds of calls end within minutes. HubSpot Starter allows 100
requests per rolling 10 s and 4 searches per second per portal; crmsync shares those
limits between all its workers through Redis (SPEC §8: "respected before the CRM has to
refuse"). So a burst should drain at the pace the limits allow, with few or no 429s, and
lose nothing.

How: a sandbox HubSpot enforcing the Starter limits (``rate_limit=(100, 10.0)``,
``search_rate_limit=(4, 1.0)``; 429 with ``Retry-After`` beyond them) holding 500 known
callers; crmsync with its default limits (``HUBSPOT_RATE_LIMIT=100/10s``,
``HUBSPOT_SEARCH_RATE_LIMIT=4/s``); the Procfile's real processes: one ``web`` (gunicorn)
and two ``worker`` processes, started and ready before the burst. 500 distinct
``call.ended`` webhooks are posted to the web process over HTTP (8 at a time); the clock
runs from the first post until every accepted call is ``synced``/``partial`` (read with
``crmsync.record.SyncRecord.load``, one call also through ``crmsync status --json``), bounded
by ``--timeout``.

The limit-bound minimum comes from requests per call (measured in this run: 1 search and
2 other requests per known caller) and both limits: searches 500 × 1 / 4 per s = 125 s,
other requests 500 × 2 / (100 per 10 s) = 100 s; the larger, 125 s, is the floor.

Run alone (about 2–3 minutes): ``.venv/bin/python -m bench.burst [--calls 500] [--timeout 360]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    write_results,
)

GENERAL = (100, 10.0)  # HubSpot Starter: requests per rolling window (seconds)
SEARCH = (4, 1.0)  # searches per second
WORKERS = 2
POSTERS = 8  # webhook deliveries in flight at once


def wait_workers(redis: Redis, count: int, timeout: float) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Worker.count(connection=redis) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} workers did not register within {timeout:.0f} s")


def post_all(port: int, bodies: list[tuple[str, bytes]]) -> tuple[list[str], dict[str, int], float]:
    """Post every body; returns (accepted call ids, answers by kind, seconds taken)."""
    local = threading.local()
    url = f"http://127.0.0.1:{port}/webhooks/hamsa"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(item: tuple[str, bytes]) -> tuple[str, str]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        call_id, body = item
        try:
            answer = local.session.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            return call_id, f"error {type(exc).__name__}"
        if answer.status_code != 200:
            return call_id, f"HTTP {answer.status_code}"
        return call_id, str(answer.json().get("status"))

    started = time.monotonic()
    with ThreadPoolExecutor(POSTERS) as pool:
        answers = list(pool.map(post, bodies))
    seconds = time.monotonic() - started
    kinds: dict[str, int] = {}
    for _, kind in answers:
        kinds[kind] = kinds.get(kind, 0) + 1
    return [c for c, kind in answers if kind == "accepted"], kinds, seconds


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


def run(calls: int, timeout: float) -> dict[str, Any]:
    sandbox = start_sandbox("hubspot", rate_limit=GENERAL, search_rate_limit=SEARCH)
    processes: list[Proc] = []
    try:
        with local_redis() as (redis_url, redis, work):
            numbers = [number("known", i) for i in range(calls)]
            for e164 in numbers:
                seed_caller("hubspot", sandbox, e164)
            env = crm_env("hubspot", sandbox, redis_url)  # crmsync's default limits: 100/10s, 4/s
            web, port = start_web(env, work)
            processes.append(web)
            for n in range(WORKERS):
                processes.append(Proc.procfile("worker", env, work / f"worker-{n}.log"))
            wait_workers(redis, WORKERS, timeout=30)
            call_ids = [f"bench-burst-{i}" for i in range(calls)]
            bodies = [(c, call_body(c, e164)) for c, e164 in zip(call_ids, numbers, strict=True)]
            print(f"  posting {calls} call.ended webhooks to the web process ...", flush=True)
            started = time.monotonic()
            accepted, answers, post_seconds = post_all(port, bodies)
            print(f"  posted in {post_seconds:.1f} s: {answers}; draining (at most {timeout:.0f} s) ...", flush=True)
            deadline = started + timeout
            drained: float | None = None
            last_print = 0.0
            while time.monotonic() < deadline:
                now = states(redis, accepted)
                done = sum(1 for s in now.values() if s in DONE_STATES)
                if done == len(accepted):
                    drained = time.monotonic() - started
                    break
                if time.monotonic() - last_print >= 15:
                    last_print = time.monotonic()
                    print(f"    {time.monotonic() - started:5.0f} s: {done}/{len(accepted)} synced", flush=True)
                time.sleep(0.5)
            final = states(redis, accepted)
            sample = cli_status(env, accepted[-1]) if accepted else {}
            recorded = list(sandbox.requests)
            made = activities("hubspot", sandbox)
            dead = [p.log.name for p in processes if not p.alive()]
    finally:
        for process in processes:
            process.stop()
        sandbox.stop()
    per_call, one_off = api_requests(recorded)
    ok = [r for r in per_call if 200 <= r.status < 300]
    searches = sum(1 for r in ok if r.path.endswith("/search"))
    by_state: dict[str, int] = {}
    for state in final.values():
        by_state[str(state)] = by_state.get(str(state), 0) + 1
    return {
        "calls": calls,
        "answers": answers,
        "accepted": len(accepted),
        "post_seconds": post_seconds,
        "drained": drained,
        "timeout": timeout,
        "done": sum(1 for s in final.values() if s in DONE_STATES),
        "by_state": by_state,
        "sample": sample,
        "sample_id": accepted[-1] if accepted else "",
        "requests": len(per_call),
        "one_off": len(one_off),
        "searches_ok": searches,
        "general_ok": len(ok) - searches,
        "429": sum(1 for r in recorded if r.status == 429),
        "429_search": sum(1 for r in recorded if r.status == 429 and r.path.endswith("/search")),
        "other_errors": sum(1 for r in recorded if r.status >= 300 and r.status != 429),
        "max_general_10s": _max_window(recorded, 10.0, search=False),
        "max_search_1s": _max_window(recorded, 1.0, search=True),
        "single_activity": sum(1 for c in accepted if made.get(c) == 1),
        "duplicates": sum(1 for c in accepted if made.get(c, 0) > 1),
        "dead": dead,
    }


def _max_window(recorded: list[Any], seconds: float, *, search: bool) -> int:
    """Most requests the sandbox received in any ``seconds`` window (429s included)."""
    times = sorted(r.at for r in recorded if r.path.endswith("/search") == search)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def report(r: dict[str, Any], host: dict[str, str], command: str) -> tuple[list[str], bool]:
    accepted = r["accepted"]
    s_per_call = r["searches_ok"] / max(1, r["done"])
    g_per_call = r["general_ok"] / max(1, r["done"])
    search_floor = accepted * s_per_call / (SEARCH[0] / SEARCH[1])
    general_floor = accepted * g_per_call / (GENERAL[0] / GENERAL[1])
    floor = max(search_floor, general_floor)
    binding = "searches" if search_floor >= general_floor else "other requests"
    lost = accepted - r["done"]
    drained = r["drained"]
    drain_text = f"{drained:.1f} s" if drained is not None else f"NOT drained within {r['timeout']:.0f} s"
    rows = [
        (
            "webhooks posted / accepted",
            f"{r['calls']} / {accepted} ({r['post_seconds']:.1f} s; answers {r['answers']})",
        ),
        ("time to drain (first post → all synced/partial)", f"**{drain_text}**"),
        ("limit-bound minimum", f"{floor:.1f} s ({binding})"),
        (
            "drain / minimum",
            f"{drained / floor:.2f}× (+{drained - floor:.1f} s)" if drained is not None else "—",
        ),
        ("calls synced/partial at the end", f"{r['done']} ({r['by_state']})"),
        ("calls lost (accepted − synced/partial)", f"**{lost}**"),
        ("calls with exactly one activity / with duplicates", f"{r['single_activity']} / {r['duplicates']}"),
        ("429 answers from the sandbox", f"**{r['429']}** ({r['429_search']} on search)"),
        ("other non-2xx answers", r["other_errors"]),
        (
            "CRM requests (2xx) per call",
            f"{s_per_call:.2f} search + {g_per_call:.2f} other; {r['requests']} requests in all incl. 429s, "
            f"{r['one_off']} one-offs",
        ),
        ("most requests in any 10 s (non-search) / limit", f"{r['max_general_10s']} / {GENERAL[0]}"),
        ("most searches in any 1 s / limit", f"{r['max_search_1s']} / {SEARCH[0]}"),
        (
            f"`crmsync status --json {r['sample_id']}`",
            f"state {r['sample'].get('state')}, attempts {r['sample'].get('attempts')}",
        ),
    ]
    if r["dead"]:
        rows.append(("processes that died", ", ".join(r["dead"])))
    arithmetic = [
        "Limit-bound minimum, from the requests per call measured in this run and both limits:",
        "",
        f"- searches: {accepted} calls × {s_per_call:.2f} search / ({SEARCH[0]} per {SEARCH[1]:g} s) "
        f"= {search_floor:.1f} s",
        f"- other requests: {accepted} calls × {g_per_call:.2f} / ({GENERAL[0]} per {GENERAL[1]:g} s) "
        f"= {general_floor:.1f} s",
        f"- binding: {binding}, {floor:.1f} s (searches are exempt from HubSpot's 10-second limit, so the two "
        "limits run in parallel and the larger one bounds the drain; the first window's allowance is free, "
        f"so the strict floor is about {SEARCH[1] * (accepted * s_per_call - SEARCH[0]) / SEARCH[0]:.0f} s)",
    ]
    lines = [
        f"{accepted} distinct `call.ended` webhooks (documented fixture, known callers) posted over HTTP to the "
        f"Procfile `web` process ({POSTERS} in flight), synced by {WORKERS} Procfile `worker` processes into a "
        f"sandbox HubSpot enforcing Starter limits ({GENERAL[0]} requests / {GENERAL[1]:g} s rolling, "
        f"{SEARCH[0]} searches / {SEARCH[1]:g} s; 429 with Retry-After beyond), crmsync at its default limits "
        "(`HUBSPOT_RATE_LIMIT=100/10s`, `HUBSPOT_SEARCH_RATE_LIMIT=4/s`). States read with "
        "`crmsync.record.SyncRecord.load` every 0.5 s.",
        "",
        *table(["figure", "value"], rows),
        "",
        *arithmetic,
    ]
    ok = drained is not None and lost == 0 and r["duplicates"] == 0
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="webhooks in the burst (default 500)")
    parser.add_argument("--timeout", type=float, default=360, help="seconds allowed to drain (default 360)")
    args = parser.parse_args(argv)
    host = machine()
    result = run(args.calls, args.timeout)
    command = f".venv/bin/python -m bench.burst --calls {args.calls} --timeout {args.timeout:g}"
    lines, ok = report(result, host, command)
    print("\n".join(lines))
    path = write_results("burst", f"A burst of {args.calls} calls against HubSpot Starter limits", command, host, lines)
    print(f"written to {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
