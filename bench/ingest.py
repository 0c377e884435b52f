"""Webhook ingest: how fast ``POST /webhooks/hamsa`` accepts events, beside a bare Flask app.

What is measured, in one run on this machine, for two apps served by gunicorn with
crmsync's own config (``crmsync/web/gunicorn_conf.py``: 2 workers, gthread, 8 threads):

* **crmsync**: ``crmsync.web:create_app()`` with a throwaway ``redis-server``, bearer auth,
  ``LOG_LEVEL=WARNING`` (so per-request INFO logging does not dominate), ``CRM`` unset
  (``call.ended`` is queued). Every request is the documented ``call.ended`` fixture with a
  new ``callId``, so each one is a new event that is stored and queued as an RQ job.
* **minimal**: ``bench.minimal_app`` parses the same JSON body and answers 200.

Two scenarios for each: closed-loop throughput (``wrk``, 8 connections back to back:
requests per second, p50 and p99 latency) and an open-loop constant rate (200 requests a
second: p50 and p99 counted from each request's due time). The ratio of crmsync's to the
minimal app's throughput is what crmsync's receiving costs (target ≥ 0.7), and the
constant-rate p99 is what Hamsa would see at a busy hour (target < 20 ms).

Afterwards Redis must hold exactly one queued job per 200 answer: no event lost, none
doubled. The figures are printed and written to ``bench/results/ingest.md``.

Run: ``make bench`` or ``.venv/bin/python -m bench.ingest`` (needs ``redis-server`` and
``wrk`` on PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis

from bench.common import cpu_model
from bench.loadgen import LoadResult, closed_loop, constant_rate, merge

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = (
    ROOT.parent / "shared" / "fixtures" / "hamsa" / "call_ended_documented.json",
    ROOT / "crmsync" / "demo" / "call_ended_documented.json",
)
RESULTS = ROOT / "bench" / "results" / "ingest.md"
PATH = "/webhooks/hamsa"
TOKEN = "bench-token-0123456789"
QUEUE_KEY = "rq:queue:crmsync"
GUNICORN_CONFIG = "python:crmsync.web.gunicorn_conf"
APPS = {"crmsync": "crmsync.web:create_app()", "minimal": "bench.minimal_app:create_app()"}
PLACEHOLDER = "@@CALL_ID@@"
TARGET_RATIO = 0.7
TARGET_P99_MS = 20.0


@dataclass(frozen=True)
class Options:
    rounds: int  # the apps take turns this many times in each scenario, so background noise hits both
    seconds: float  # closed-loop seconds per app and round
    warmup: float  # closed-loop warm-up seconds per app
    connections: int
    rate: float  # requests per second in the constant-rate scenario
    rate_seconds: float  # constant-rate seconds per app and round
    output: Path | None
    baseline: Path | None = None  # another checkout, served as a third app ("baseline") in the same run


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL to the process group it leads (started with its own session)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@contextlib.contextmanager
def running(
    command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield process
    finally:
        stop(process)


def wait_until(
    ready: Callable[[], object], what: str, log: Path, process: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start within {timeout} s:\n{tail}")


def http_answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
    except urllib.error.HTTPError:
        pass  # any HTTP answer means a worker is serving
    return True


# -- the body --------------------------------------------------------------------------------


def fixture_template() -> tuple[Path, str, str]:
    """The documented call.ended body, as (path, text before the call id, text after it)."""
    path = next((p for p in FIXTURES if p.exists()), None)
    if path is None:
        raise SystemExit("bench: no call_ended_documented.json fixture found in " + ", ".join(map(str, FIXTURES)))
    body = json.loads(path.read_text())
    body["callId"] = PLACEHOLDER
    prefix, suffix = json.dumps(body, ensure_ascii=False, separators=(",", ":")).split(PLACEHOLDER)
    return path, prefix, suffix


# -- the run ---------------------------------------------------------------------------------


@dataclass
class AppRun:
    name: str
    port: int
    throughput: LoadResult | None = None
    steady: LoadResult | None = None
    answered: int = 0  # 200 answers in every phase, warm-up included


def machine() -> dict[str, str]:
    conf = importlib.import_module("crmsync.web.gunicorn_conf")
    versions = {}
    for name, command in (("redis", ["redis-server", "--version"]), ("wrk", ["wrk", "-v"])):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        versions[name] = (done.stdout + done.stderr).splitlines()[0].strip() if (done.stdout + done.stderr) else "?"
    import gunicorn

    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "gunicorn": f"{gunicorn.__version__}: workers {conf.workers}, {conf.worker_class}, threads {conf.threads}, "
        f"keepalive {conf.keepalive} s",
        "redis": versions["redis"],
        "wrk": versions["wrk"],
    }


def turns(apps: dict[str, AppRun], number: int) -> list[AppRun]:
    """The apps in round ``number``'s order: each round starts with the next app, so that
    none always goes first (right after another app's load) or last."""
    order = list(apps.values())
    shift = number % len(order)
    return order[shift:] + order[:shift]


def run(options: Options) -> tuple[dict[str, AppRun], dict[str, int], dict[str, str], Path]:
    fixture, prefix, suffix = fixture_template()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    stamp = datetime.now(UTC).strftime("%H%M%S")
    names = [*APPS, *(["baseline"] if options.baseline else [])]
    apps = {name: AppRun(name, free_port()) for name in names}
    databases = {"crmsync": 0, "baseline": 1}  # each crmsync app stores in its own database
    redis_port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        redis_log = work / "redis.log"
        redis_server = stack.enter_context(
            running(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                redis_log,
            )
        )
        redis = Redis(port=redis_port)
        stack.callback(redis.close)
        wait_until(redis.ping, "redis-server", redis_log, redis_server)

        env = {
            **os.environ,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "WEBHOOK_TOKENS": TOKEN,
            "LOG_LEVEL": "WARNING",
        }
        for name in ("CRM", "WEBHOOK_AUTH", "PORT"):
            env.pop(name, None)
        for app in apps.values():
            log = work / f"gunicorn-{app.name}.log"
            app_env = {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/{databases.get(app.name, 0)}"}
            cwd = ROOT
            if app.name == "baseline" and options.baseline:
                cwd = options.baseline.resolve()  # its own crmsync package comes first on the path
                app_env["PYTHONPATH"] = str(cwd)
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                GUNICORN_CONFIG,
                "--bind",
                f"127.0.0.1:{app.port}",
                APPS.get(app.name, APPS["crmsync"]),
            ]
            process = stack.enter_context(running(command, log, app_env, cwd))
            wait_until(functools.partial(http_answers, app.port), f"gunicorn ({app.name})", log, process)

        def load(app: AppRun, phase: str, seconds: float) -> LoadResult:
            result = closed_loop(
                f"http://127.0.0.1:{app.port}",
                PATH,
                headers,
                prefix,
                suffix,
                tag=f"{stamp}-{phase}",
                connections=options.connections,
                seconds=seconds,
                workdir=work,
            )
            app.answered += result.ok
            return result

        for app in apps.values():
            load(app, "warm", options.warmup)
        rounds: dict[str, list[LoadResult]] = {name: [] for name in apps}
        for number in range(options.rounds):
            for app in turns(apps, number):
                result = load(app, f"tput{number}", options.seconds)
                rounds[app.name].append(result)
                print(
                    f"  closed loop   round {number + 1} {app.name:8} {result.rps:6.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms",
                    flush=True,
                )
        for app in apps.values():
            app.throughput = merge(rounds[app.name])
        rounds = {name: [] for name in apps}
        for number in range(options.rounds):
            for app in turns(apps, number):
                tag = f"{stamp}-rate{number}-{app.name}-"

                def body(index: int, tag: str = tag) -> bytes:
                    return (prefix + tag + str(index) + suffix).encode()

                result = constant_rate(
                    "127.0.0.1", app.port, PATH, headers, body, rate=options.rate, seconds=options.rate_seconds
                )
                app.answered += result.ok
                rounds[app.name].append(result)
                print(
                    f"  {options.rate:.0f} req/s   round {number + 1} {app.name:8} p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  max {result.max_ms:6.2f} ms",
                    flush=True,
                )
        for app in apps.values():
            app.steady = merge(rounds[app.name])

        jobs = redis.lrange(QUEUE_KEY, 0, -1)
        check = {"answered": apps["crmsync"].answered, "queued": len(jobs), "distinct": len(set(jobs))}
        if "baseline" in apps:
            with Redis(port=redis_port, db=databases["baseline"]) as other:
                jobs = other.lrange(QUEUE_KEY, 0, -1)
            check |= {
                "baseline answered": apps["baseline"].answered,
                "baseline queued": len(jobs),
                "baseline distinct": len(set(jobs)),
            }
    return apps, check, {**machine(), "load": load_before}, fixture


# -- the report ------------------------------------------------------------------------------


def report(
    apps: dict[str, AppRun], check: dict[str, int], host: dict[str, str], fixture: Path, options: Options
) -> str:
    crm, base = apps["crmsync"], apps["minimal"]
    assert crm.throughput and base.throughput and crm.steady and base.steady
    ratio = crm.throughput.rps / base.throughput.rps
    ok = check["answered"] == check["queued"] == check["distinct"]
    busy = float(host["load"].split()[0]) > 0.5 * int(host["nproc"])

    def verdict(good: bool, text: str) -> str:
        return ("met" if good else "MISSED") + f" ({text})"

    others = [apps["baseline"]] if "baseline" in apps else []
    rows = [
        f"| app | closed loop req/s | p50 ms | p99 ms | failed | at {options.rate:.0f} req/s: p50 ms | p99 ms "
        "| max ms | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for app in (crm, *others, base):
        t, s = app.throughput, app.steady
        assert t and s
        rows.append(
            f"| {app.name} | {t.rps:.0f} | {t.p50_ms:.2f} | {t.p99_ms:.2f} | {t.failed} | "
            f"{s.p50_ms:.2f} | {s.p99_ms:.2f} | {s.max_ms:.2f} | {s.failed} |"
        )
    lines = [
        "# Webhook ingest benchmark",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `python -m bench.ingest`.",
        "",
        f"- Machine: {host['nproc']} CPUs ({host['cpu']}), Python {host['python']}; load generator, "
        "Redis and both apps share them.",
        f"- gunicorn {host['gunicorn']} (crmsync's config for both apps); {host['redis']}; {host['wrk']}.",
        f"- Body: `{fixture.name}` with a new `callId` per request; bearer auth; `LOG_LEVEL=WARNING`; CRM unset.",
        f"- Closed loop: wrk, {options.connections} connections back to back, {options.rounds} rounds of "
        f"{options.seconds:g} s per app (the apps take turns, each round starting with the next app) "
        f"after {options.warmup:g} s of warm-up each. "
        f"Constant rate: open loop, {options.rate:g} req/s, {options.rounds} rounds of {options.rate_seconds:g} s "
        "per app, latency from each request's due time. Latencies of all rounds pooled.",
        f"- Load average before the run: {host['load']}"
        + (" — the machine was busy with other work: treat these figures as noisy." if busy else "."),
        "",
        *rows,
        "",
        f"- Throughput ratio crmsync / minimal: **{ratio:.2f}** — target ≥ {TARGET_RATIO}: "
        + verdict(ratio >= TARGET_RATIO, f"{ratio / TARGET_RATIO - 1:+.0%} against the target"),
        f"- crmsync p99 at {options.rate:.0f} req/s: **{crm.steady.p99_ms:.2f} ms** — target < {TARGET_P99_MS:.0f} ms: "
        + verdict(crm.steady.p99_ms < TARGET_P99_MS, f"{crm.steady.p99_ms - TARGET_P99_MS:+.2f} ms"),
        f"- No lost events: {check['answered']} answers 200 from crmsync (warm-up included), "
        f"{check['queued']} jobs queued in Redis, {check['distinct']} distinct: " + ("OK" if ok else "MISMATCH"),
    ]
    for other in others:
        assert other.throughput and other.steady
        same = check["baseline answered"] == check["baseline queued"] == check["baseline distinct"]
        lines += [
            f"- Baseline (`{options.baseline}`, the same run, taking its turn between the other two): ratio "
            f"**{other.throughput.rps / base.throughput.rps:.2f}**, p99 at {options.rate:.0f} req/s "
            f"**{other.steady.p99_ms:.2f} ms**; {check['baseline answered']} answers 200, "
            f"{check['baseline queued']} jobs, {check['baseline distinct']} distinct: "
            + ("OK" if same else "MISMATCH"),
        ]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns each app takes per scenario (default 3)")
    parser.add_argument("--seconds", type=float, default=5, help="closed-loop seconds per app and round (default 5)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per app (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="closed-loop connections (default 8)")
    parser.add_argument("--rate", type=float, default=200, help="constant-rate requests/s (default 200)")
    parser.add_argument(
        "--rate-seconds", type=float, default=7, help="constant-rate seconds per app and round (default 7)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"markdown results (default {RESULTS})")
    parser.add_argument("--no-output", action="store_true", help="print only")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. an older commit), served as a third app in the same run"
    )
    args = parser.parse_args(argv)
    return Options(
        args.rounds,
        args.seconds,
        args.warmup,
        args.connections,
        args.rate,
        args.rate_seconds,
        None if args.no_output else args.output,
        args.baseline,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    print("bench.ingest: POST /webhooks/hamsa, crmsync beside a minimal Flask app", flush=True)
    apps, check, host, fixture = run(options)
    text = report(apps, check, host, fixture, options)
    print(text)
    if options.output:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(text)
        print(f"written to {options.output}")
    matched = check["answered"] == check["queued"] == check["distinct"]
    if "baseline answered" in check:
        matched &= check["baseline answered"] == check["baseline queued"] == check["baseline distinct"]
    return 0 if matched else 1


if __name__ == "__main__":
    sys.exit(main())
