"""Shared helpers for the worker-side benchmarks (``requests_per_call``, ``worker_throughput``,
``worker_modes``, ``burst``): a throwaway Redis, sandbox CRMs seeded with callers, webhook
bodies, Procfile processes, reading RQ's job timestamps, and the results file.

Everything listens on 127.0.0.1 only; every process and server started here is stopped by
the context manager or ``finally`` block that started it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from redis import Redis

from crmsync import store
from crmsync.harness import BIN as BIN
from crmsync.harness import Process, crmsync_env, procfile_argv, wait_http
from crmsync.harness import start_sandbox as start_sandbox
from crmsync.localredis import free_port, throwaway_redis
from crmsync.record import SyncRecord, SyncState

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
TOKEN = "bench-webhook-token"
WEBHOOK_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
FIXTURE = ROOT / "crmsync" / "demo" / "call_ended_documented.json"
DONE_STATES = (SyncState.SYNCED, SyncState.PARTIAL)
# crmsync's limits set so high that only the sandbox (or its added latency) bounds a worker.
FAST_LIMITS = {"HUBSPOT_RATE_LIMIT": "10000/10s", "HUBSPOT_SEARCH_RATE_LIMIT": "1000/s", "LOG_LEVEL": "WARNING"}

# Requests a worker makes once in its life, not per call: logins, describes, property lists.
ONE_OFF = re.compile(r"/describe$|/services/oauth2/|/services/Soap/|/limits/?$|^GET /crm/v3/properties")


# -- machine and results ---------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def machine() -> dict[str, str]:
    import rq

    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def write_results(name: str, title: str, command: str, host: dict[str, str], body: Sequence[str]) -> Path:
    """``bench/results/<name>.md``: title, date, machine, command, then ``body``."""
    busy = float(host["load"].split()[0]) > 0.5 * int(host["nproc"])
    lines = [
        f"# {title}",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: nproc {host['nproc']}, {host['cpu']}; Python {host['python']}, RQ {host['rq']}",
        f"- Load average before the run: {host['load']}"
        + (" (the machine was busy with other work: treat timings as noisy)" if busy else ""),
        f"- Reproduce: `{command}`",
        "",
        *body,
    ]
    path = RESULTS_DIR / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table (also fine to print)."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


# -- Redis and sandboxes ---------------------------------------------------------------------


@contextlib.contextmanager
def local_redis() -> Iterator[tuple[str, Redis, Path]]:
    """A throwaway ``redis-server`` on 127.0.0.1 (never the machine's shared one), its URL,
    a client and a scratch directory for logs."""
    work = Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    with throwaway_redis(work) as url:
        client = Redis.from_url(url)
        try:
            yield url, client, work
        finally:
            client.close()


def crm_env(crm: str, sandbox: Any, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment that points crmsync's processes at ``sandbox`` (the harness's, with the
    benchmarks' token and the repository's mappings)."""
    return crmsync_env(crm, sandbox, redis_url, TOKEN, ROOT / "mappings", **extra)


def number(kind: str, index: int) -> str:
    """A distinct Saudi mobile number: known callers 055…, unknown callers 056…"""
    return f"+966{55 if kind == 'known' else 56}{index:07d}"


def seed_caller(crm: str, sandbox: Any, e164: str) -> str:
    """A person in the CRM whose number is stored in national format (as typed by a human)."""
    national = "0" + e164[4:6] + " " + e164[6:9] + " " + e164[9:]
    if crm == "hubspot":
        return str(sandbox.seed_contact({"phone": national, "lastname": "Bench", "firstname": "Caller"}))
    return str(sandbox.seed("Contact", {"Phone": national, "LastName": "Bench", "FirstName": "Caller"}))


@lru_cache(maxsize=1)
def _fixture() -> dict[str, Any]:
    return dict(json.loads(FIXTURE.read_text()))


def call_body(call_id: str, e164: str) -> bytes:
    """The documented ``call.ended`` webhook with another call id and customer number."""
    body = copy.deepcopy(_fixture())
    body["callId"] = call_id
    body["data"]["data"]["callParams"]["userNumber"] = e164
    return json.dumps(body).encode()


def activities(crm: str, sandbox: Any) -> dict[str, int]:
    """Activities per call id in the sandbox (a call synced once has exactly one)."""
    counts: dict[str, int] = {}
    if crm == "hubspot":
        ids = [c.get("hs_call_external_id") for c in sandbox.calls.values()]
    else:
        ids = [t.get("CallObject") for t in sandbox.tasks()]
    for call_id in ids:
        counts[str(call_id)] = counts.get(str(call_id), 0) + 1
    return counts


# -- ingest ----------------------------------------------------------------------------------


class InProcessIngest:
    """crmsync's real webhook app (``crmsync.web.create_app``) driven by Flask's test client:
    the same validation, dedupe and Lua enqueue as the web process, without gunicorn."""

    def __init__(self, env: dict[str, str], redis: Redis) -> None:
        from crmsync.settings import Settings
        from crmsync.web import create_app

        self._client = create_app(Settings.from_env(env), redis).test_client()

    def post(self, body: bytes) -> dict[str, Any]:
        answer = self._client.post("/webhooks/hamsa", data=body, headers=WEBHOOK_HEADERS)
        if answer.status_code != 200:
            raise RuntimeError(f"webhook answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
        return dict(answer.get_json())


def queue_calls(
    crm: str, sandbox: Any, env: dict[str, str], redis: Redis, calls: int, callers: str, prefix: str
) -> list[str]:
    """Post ``calls`` call.ended webhooks (one number each) through the real webhook app;
    ``known`` callers are seeded in the sandbox first. Returns the call ids, all queued."""
    numbers = [number(callers, i) for i in range(calls)]
    if callers == "known":
        for e164 in numbers:
            seed_caller(crm, sandbox, e164)
    ingest = InProcessIngest(env, redis)
    call_ids = [f"{prefix}-{i}" for i in range(calls)]
    for call_id, e164 in zip(call_ids, numbers, strict=True):
        assert ingest.post(call_body(call_id, e164))["status"] == "accepted"
    return call_ids


@dataclass
class Queued:
    """A sandbox CRM and a throwaway Redis with calls waiting in crmsync's queue."""

    sandbox: Any
    env: dict[str, str]
    redis: Redis
    work: Path  # scratch directory for logs
    call_ids: list[str]


@contextlib.contextmanager
def queued(crm: str, calls: int, prefix: str, callers: str = "known", **extra: str) -> Iterator[Queued]:
    """A sandbox ``crm`` with its own rate limits off, a throwaway Redis, and ``calls``
    webhooks queued by :func:`queue_calls`; crmsync's environment has :data:`FAST_LIMITS`,
    ``SYNC_BATCH_MAX=1`` and ``extra``. The sandbox is stopped after (what it recorded stays
    readable). Every call is synced on its own: these benchmarks measure what one call
    costs (requests, worker time), which a batch would hide; ``bench.burst`` measures
    batches."""
    sandbox = start_sandbox(crm, **({"rate_limit": None, "search_rate_limit": None} if crm == "hubspot" else {}))
    try:
        with local_redis() as (redis_url, redis, work):
            env = crm_env(crm, sandbox, redis_url, **{**FAST_LIMITS, "SYNC_BATCH_MAX": "1", **extra})
            call_ids = queue_calls(crm, sandbox, env, redis, calls, callers, prefix)
            yield Queued(sandbox, env, redis, work, call_ids)
    finally:
        sandbox.stop()


# -- processes -------------------------------------------------------------------------------


class Proc(Process):
    """A subprocess run from the repository (the harness's :class:`~crmsync.harness.Process`)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(argv, env, log, cwd=ROOT)

    @classmethod
    def procfile(cls, kind: str, env: dict[str, str], log: Path, *extra: str, root: Path | None = None) -> Proc:
        return cls([*procfile_argv(kind, (root or ROOT) / "Procfile"), *extra], env, log)


def start_web(env: dict[str, str], work: Path) -> tuple[Proc, int]:
    port = free_port()
    web = Proc.procfile("web", {**env, "PORT": str(port)}, work / "web.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
    except TimeoutError:
        web.stop()
        raise RuntimeError("the web process did not answer:\n" + web.tail()) from None
    return web, port


def run_burst_worker(env: dict[str, str], log: Path, timeout: float) -> float:
    """``crmsync worker --burst`` (the Procfile's worker, stopping when the queue is empty);
    returns its wall time in seconds."""
    started = time.monotonic()
    worker = Proc.procfile("worker", env, log, "--burst")
    try:
        code = worker.wait(timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the worker did not drain the queue within {timeout:.0f} s:\n" + worker.tail()) from None
    finally:
        worker.stop()
    if code != 0:
        raise RuntimeError(f"the worker exited with {code}:\n" + worker.tail())
    return time.monotonic() - started


# -- reading the outcome ---------------------------------------------------------------------


def states(redis: Redis, call_ids: Sequence[str]) -> dict[str, SyncState | None]:
    """Each call's sync state (None: no record yet), read in one pipelined round trip."""
    with redis.pipeline(transaction=False) as pipe:
        for call_id in call_ids:
            pipe.hgetall(store.status_key(call_id))
        raws = pipe.execute()
    return {c: SyncRecord.from_hash(raw).state if raw else None for c, raw in zip(call_ids, raws, strict=True)}


def count_done(redis: Redis, call_ids: Sequence[str]) -> int:
    """How many of ``call_ids`` are synced or partial."""
    return sum(1 for state in states(redis, call_ids).values() if state in DONE_STATES)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class JobTimes:
    """RQ's own timestamps of the finished jobs: when each started and ended (in the
    process that ran it)."""

    starts: list[float]
    ends: list[float]

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def rate(self) -> float:
        """Jobs per second from the end of the first job to the end of the last."""
        ends = sorted(self.ends)
        return (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else 0.0

    @property
    def median_in_job(self) -> float:
        return statistics.median(e - s for s, e in zip(self.starts, self.ends, strict=True)) if self.starts else 0.0

    @property
    def first_in_job(self) -> float:
        """Seconds inside the earliest-started job (a fresh process: nothing warm yet)."""
        if not self.starts:
            return 0.0
        first = min(range(self.count), key=lambda i: self.starts[i])
        return self.ends[first] - self.starts[first]

    @property
    def mean_in_job(self) -> float:
        """Mean seconds inside ``sync_call`` (RQ's started_at → ended_at)."""
        return sum(e - s for s, e in zip(self.starts, self.ends, strict=True)) / max(1, self.count)


def job_times(redis: Redis) -> JobTimes:
    """Started/ended times of every job in RQ's finished registry of crmsync's queue."""
    from rq import Queue
    from rq.registry import FinishedJobRegistry
    from rq.serializers import JSONSerializer

    queue = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    ids = FinishedJobRegistry(queue=queue).get_job_ids()
    starts: list[float] = []
    ends: list[float] = []
    with redis.pipeline() as pipe:
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", "started_at", "ended_at")
        for started, ended in pipe.execute():
            if started and ended:
                starts.append(_rq_time(started))
                ends.append(_rq_time(ended))
    return JobTimes(starts, ends)


def _rq_time(raw: bytes) -> float:
    text = raw.decode()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """:func:`table`, printed and returned (for the results file)."""
    lines = table(header, rows)
    print("\n".join(lines))
    return lines


def crms_of(args: Any, both: Sequence[str] = ("hubspot", "salesforce")) -> list[str]:
    """The CRMs that ``--crm`` names, ``both`` in that order."""
    return list(both) if args.crm == "both" else [args.crm]


def api_requests(recorded: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """A sandbox's recorded requests split into (per-call API requests, one-offs)."""
    per_call: list[Any] = []
    one_off: list[Any] = []
    for request in recorded:
        line = f"{request.method} {request.path}"
        (one_off if ONE_OFF.search(line) else per_call).append(request)
    return per_call, one_off


def breakdown(requests: Sequence[Any]) -> str:
    """``POST /crm/v3/objects/contacts/search ×50, …`` with ids collapsed."""
    counts: dict[str, int] = {}
    for request in requests:
        path = re.sub(r"/v\d+\.\d+/", "/vXX.X/", request.path)
        path = re.sub(r"/(\d+|[A-Za-z0-9]{15,18})(?=/|$)", "/{id}", path)
        key = f"{request.method} {path}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"`{k}` ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def report(name: str, title: str, args: Any, host: dict[str, str], body: Sequence[str]) -> Path:
    """Write ``bench/results/<name>.md`` with the command that reproduces this run
    (``--calls`` and ``--crm`` as given) and say where it went."""
    command = f".venv/bin/python -m bench.{name} --calls {args.calls}"
    if getattr(args, "crm", "both") != "both":
        command += f" --crm {args.crm}"
    path = write_results(name, title, command, host, body)
    print(f"written to {path}")
    return path
