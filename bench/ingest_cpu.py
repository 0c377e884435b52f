"""CPU per webhook request, in-process: where ``POST /webhooks/hamsa`` spends its time.

Runs crmsync's real webhook app (``crmsync.web.create_app``) with Flask's test client against
a throwaway ``redis-server``, and times with ``time.process_time`` (CPU of this process only:
Redis's own work is not counted) the parts of one request:

* **parse**: the JSON body → a dict;
* **normalise**: ``events.normalise`` + ``events.dedupe_key`` on the parsed body;
* **store**: ``ingest.Ingest.store`` of a new event (the one Lua script call: packing,
  the round trip's syscalls, reading the answer);
* **request**: a whole ``POST`` through the test client (Flask, auth, all of the above),
  and within it the CPU of the app's own normaliser and store calls (**normalise in
  request**, **store in request**: each step costs more there than in a tight loop of it
  alone, where its code and data stay in the CPU's caches);
* **minimal**: the same ``POST`` to ``bench.minimal_app`` (parse and answer 200), the yardstick.

Each figure is the median over ``--rounds`` rounds of ``--requests`` requests (every request a
new ``callId``, so each is a new event that is stored and queued). ``--profile`` prints
cProfile's top functions of the whole request instead.

Run: ``.venv/bin/python -m bench.ingest_cpu`` (``--code DIR`` measures another checkout's
crmsync with this same script).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_PATHS = (
    ROOT.parent / "shared" / "fixtures" / "hamsa" / "call_ended_documented.json",
    ROOT / "crmsync" / "demo" / "call_ended_documented.json",
)
TOKEN = "bench-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def bodies(count: int, tag: str) -> list[bytes]:
    path = next(p for p in FIXTURE_PATHS if p.exists())
    body = json.loads(path.read_text())
    out = []
    for index in range(count):
        body["callId"] = f"cpu-{tag}-{index}"
        out.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return out


def cpu_us(step: Callable[[bytes], Any], items: list[bytes]) -> float:
    """CPU microseconds per call of ``step`` over ``items``."""
    started = time.process_time()
    for item in items:
        step(item)
    return (time.process_time() - started) / len(items) * 1e6


NAMES = ("parse", "normalise", "store", "request", "normalise in request", "store in request", "minimal")


def instrument(app: Any) -> dict[str, float]:
    """Count the CPU seconds the app's own normaliser and store calls take inside whole
    requests (in a request the code runs colder than in a tight loop of one step)."""
    from crmsync import quarantine

    spent = {"normalise": 0.0, "store": 0.0}

    def timed(name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return step(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - started

        return run

    quarantine.NORMALISERS["hamsa"] = timed("normalise", quarantine.NORMALISERS["hamsa"])
    ingest = app.extensions["crmsync"].ingest
    ingest.store = timed("store", ingest.store)
    return spent


def measure(redis_url: str, requests: int, rounds: int, profile: bool) -> dict[str, float]:
    from redis import Redis

    from bench.minimal_app import create_app as minimal_app
    from crmsync import events
    from crmsync.ingest import Ingest
    from crmsync.settings import Settings
    from crmsync.web import create_app

    env = {"REDIS_URL": redis_url, "WEBHOOK_TOKENS": TOKEN, "LOG_LEVEL": "WARNING"}
    redis = Redis.from_url(redis_url)
    client = create_app(Settings.from_env(env), redis).test_client()
    minimal = minimal_app().test_client()
    ingest = Ingest(redis, 3600)

    def post(raw: bytes) -> None:
        answer = client.post("/webhooks/hamsa", data=raw, headers=HEADERS)
        if answer.status_code != 200 or answer.json["status"] != "accepted":
            raise SystemExit(f"bench: the webhook answered {answer.status_code}: {answer.get_data(as_text=True)}")

    def normalise(raw: bytes) -> None:
        events.dedupe_key(events.normalise(parsed[raw], "US"))

    def store(raw: bytes) -> None:
        event = normalised[raw]
        ingest.store(event, events.dedupe_key(event), enqueue=True)

    for raw in bodies(200, "warm"):  # imports, caches, the script's SHA
        post(raw)
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting for Redis
        items = bodies(requests, "profile")
        profiler.enable()
        for raw in items:
            post(raw)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        return {}
    inside = instrument(client.application)
    figures: dict[str, list[float]] = {name: [] for name in NAMES}
    for number in range(rounds):
        items = bodies(requests, f"r{number}")
        parsed = {raw: json.loads(raw) for raw in items}
        figures["parse"].append(cpu_us(json.loads, items))
        figures["normalise"].append(cpu_us(normalise, items))
        normalised = {raw: events.normalise(parsed[raw], "US") for raw in items}
        figures["store"].append(cpu_us(store, items))
        inside.update(dict.fromkeys(inside, 0.0))
        figures["request"].append(cpu_us(post, bodies(requests, f"p{number}")))
        figures["normalise in request"].append(inside["normalise"] / requests * 1e6)
        figures["store in request"].append(inside["store"] / requests * 1e6)
        figures["minimal"].append(cpu_us(lambda raw: minimal.post("/webhooks/hamsa", data=raw, headers=HEADERS), items))
        redis.flushdb()
    redis.close()
    return {name: statistics.median(values) for name, values in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported (default 5)")
    parser.add_argument("--code", type=Path, help="measure the crmsync package of this checkout instead")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions instead")
    args = parser.parse_args(argv)
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1 if args.code else 0, str(ROOT))
    import crmsync
    from crmsync.localredis import free_port, start_redis_server

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as work:
        server = start_redis_server(port, work)
        try:
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            figures = measure(f"redis://127.0.0.1:{port}/0", args.requests, args.rounds, args.profile)
        finally:
            server.terminate()
            server.wait(10)
    if figures:
        print(f"crmsync from {Path(crmsync.__file__).parent}; load average before: {load}")
        print(f"CPU µs per request, median of {args.rounds} rounds × {args.requests}:")
        for name, value in figures.items():
            print(f"  {name:21} {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
