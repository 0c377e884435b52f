"""Per-job overhead of RQ's worker kinds on crmsync's jobs: forking ``Worker``,
``SimpleWorker`` (what ``crmsync worker`` runs) and ``WorkerPool``.

``crmsync/worker.py`` says crmsync runs a ``SimpleWorker`` because the forking worker would
lose, with every job, what the process keeps warm: the CRM connector's HTTP connections,
the Salesforce ``describe`` cache, the mapping. This measures that choice on the same job
load, with a sandbox CRM that answers at once (no added latency), so that only the
worker's own cost per job shows:

* ``simple``: ``crmsync.worker.build_worker`` (SimpleWorker subclass, JSON serializer,
  crmsync's TTLs) in burst mode — exactly ``crmsync worker --burst``;
* ``fork``: the same build, but a tiny subclass of RQ's forking ``Worker`` (same
  heartbeat TTL, serializer, maintenance interval and worker TTL). The Runtime (settings,
  Redis, mapping, connector) is built once in the parent, as ``build_worker`` does, and
  inherited by each forked work horse; what a horse warms up (connections, describe
  cache) dies with it;
* ``pool``: ``rq.worker_pool.WorkerPool`` with 2 processes of crmsync's worker class
  (each builds its Runtime once, on its first job, through ``Runtime.current()``);
* ``simple x2``: two ``simple`` processes side by side — what running two Procfile
  workers gives, for comparison with the pool.

Each mode drains N queued ``call.ended`` calls of known callers (webhooks through the real
webhook app, Flask test client) in a subprocess of its own, the sandbox staying in this
process. Figures: jobs/s from RQ's job timestamps (end of the first job to the end of the
last), mean time inside ``sync_call`` (RQ's started_at → ended_at, in the process that ran
the job), *wall ms per job per process* (processes / jobs/s) and the part of it spent
outside the job (fork, wait, RQ bookkeeping), CPU seconds per job of the worker processes
(their rusage, work horses included), and CRM requests per job (a fork loses the
connector's warm state).

Run: ``.venv/bin/python -m bench.worker_modes [--calls 100] [--crm hubspot|salesforce|both]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import (
    ROOT,
    Proc,
    api_requests,
    count_done,
    crms_of,
    job_times,
    machine,
    print_table,
    queued,
    report,
)

MODES = {"simple": 1, "fork": 1, "pool": 2, "simple x2": 2}  # mode -> worker processes
POOL_SIZE = 2


# -- the worker side (run as: python -m bench.worker_modes --child MODE) ---------------------


def run_child(mode: str) -> int:
    from rq import Worker
    from rq.serializers import JSONSerializer

    from crmsync import logs, store
    from crmsync.settings import Settings
    from crmsync.worker import CrmsyncHeartbeat, CrmsyncWorker, build_worker

    class ForkingCrmsyncWorker(CrmsyncHeartbeat, Worker):
        """crmsync's worker settings on RQ's forking Worker (a work horse per job)."""

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    if mode in ("simple", "fork"):
        worker, _ = build_worker(settings, ForkingCrmsyncWorker if mode == "fork" else CrmsyncWorker)
        worker.work(burst=True, with_scheduler=True, logging_level=settings.log_level)
    elif mode == "pool":
        from rq.worker_pool import WorkerPool

        pool = WorkerPool(
            [store.QUEUE_NAME],
            connection=store.redis_client(settings),
            num_workers=POOL_SIZE,
            worker_class=CrmsyncWorker,
            serializer=JSONSerializer,
        )
        pool.start(burst=True, logging_level=settings.log_level)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


# -- the measuring side ----------------------------------------------------------------------


@dataclass
class Result:
    crm: str
    mode: str
    processes: int
    calls: int
    done: int
    rate: float  # jobs/s
    in_job: float  # median seconds inside sync_call
    first_job: float  # seconds inside the first job (nothing warm yet)
    cpu: float  # CPU seconds of the worker processes, per job
    per_call: float  # CRM requests per job (one-offs included)
    startup: float  # seconds from process start to the first job's start

    @property
    def wall_ms(self) -> float:
        """Wall milliseconds per job in one process."""
        return self.processes / self.rate * 1000

    @property
    def outside_ms(self) -> float:
        return self.wall_ms - self.in_job * 1000


def measure(crm: str, mode: str, calls: int) -> Result:
    processes = MODES[mode]
    with queued(crm, calls, f"bench-modes-{crm}") as run:
        before = len(run.sandbox.requests)
        child = "simple" if mode == "simple x2" else mode
        argv = [sys.executable, "-m", "bench.worker_modes", "--child", child]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.time()
        launches = 2 if mode == "simple x2" else 1  # the pool forks its own processes
        workers = [Proc(argv, run.env, run.work / f"worker-{mode.replace(' ', '')}-{n}.log") for n in range(launches)]
        try:
            deadline = time.monotonic() + 60 + calls
            for worker in workers:
                code = worker.wait(max(1.0, deadline - time.monotonic()))
                if code != 0:
                    raise RuntimeError(f"{mode} worker exited with {code}:\n{worker.tail()}")
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{mode} did not drain {calls} jobs in time:\n{workers[0].tail()}") from None
        finally:
            for worker in workers:
                worker.stop()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        recorded = list(run.sandbox.requests)[before:]
        done = count_done(run.redis, run.call_ids)
        times = job_times(run.redis)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    per_call, one_off = api_requests(recorded)
    return Result(
        crm=crm,
        mode=mode,
        processes=processes,
        calls=calls,
        done=done,
        rate=times.rate,
        in_job=times.median_in_job,
        first_job=times.first_in_job,
        cpu=cpu / calls,
        per_call=(len(per_call) + len(one_off)) / calls,
        startup=min(times.starts) - started if times.starts else 0.0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_modes", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="jobs per mode (default 100)")
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    parser.add_argument("--child", choices=["simple", "fork", "pool"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child)
    host = machine()
    crms = crms_of(args)
    results: list[Result] = []
    for crm in crms:
        for mode in MODES:
            result = measure(crm, mode, args.calls)
            results.append(result)
            print(
                f"  {crm:10} {mode:9} {result.rate:6.1f} jobs/s  in job {result.in_job * 1000:5.1f} ms  "
                f"outside {result.outside_ms:5.1f} ms  cpu {result.cpu * 1000:5.1f} ms/job  "
                f"{result.per_call:.2f} req/job  {result.done}/{result.calls} done",
                flush=True,
            )
    simple = {r.crm: r for r in results if r.mode == "simple"}
    rows = [
        (
            r.crm,
            r.mode,
            r.processes,
            f"{r.done}/{r.calls}",
            f"**{r.rate:.1f}**",
            f"{r.rate / simple[r.crm].rate:.2f}×",
            f"{r.wall_ms:.1f}",
            f"{r.in_job * 1000:.1f}",
            f"{r.first_job * 1000:.0f}",
            f"{r.outside_ms:.1f}",
            f"{r.cpu * 1000:.1f}",
            f"{r.per_call:.2f}",
            f"{r.startup:.2f}",
        )
        for r in results
    ]
    header = [
        "CRM",
        "mode",
        "processes",
        "synced/partial",
        "jobs/s",
        "vs simple",
        "wall ms per job per process",
        "median ms in job",
        "ms in first job",
        "ms outside job",
        "CPU ms per job",
        "CRM requests per job",
        "s to first job",
    ]
    lines = print_table(header, rows)
    verdict = []
    for crm in crms:
        mine = {r.mode: r for r in results if r.crm == crm}
        fork, base = mine["fork"], mine["simple"]
        verdict.append(
            f"- {crm}: the forking Worker costs {fork.wall_ms - base.wall_ms:+.1f} ms wall and "
            f"{(fork.cpu - base.cpu) * 1000:+.1f} ms CPU per job more than SimpleWorker "
            f"({fork.rate / base.rate:.2f}× its throughput; {fork.per_call:.2f} vs {base.per_call:.2f} CRM requests "
            f"per job). WorkerPool({POOL_SIZE}) gives {mine['pool'].rate:.1f} jobs/s, two SimpleWorker processes "
            f"{mine['simple x2'].rate:.1f} jobs/s."
        )
    body = [
        "Each mode drains the same N queued calls (known callers, documented `call.ended` fixture) against a "
        "sandbox CRM with no added latency and no rate limits (crmsync's limits set high), `LOG_LEVEL=WARNING`. "
        "Worker processes run apart from the sandbox (which stays in the benchmark's process). jobs/s from RQ's "
        "job timestamps (end of the first job to end of the last); *median ms in job* is RQ's started_at → "
        "ended_at inside the process that ran the job, *ms in first job* the same for the earliest job (a fresh "
        "process, nothing warm); *ms outside job* = wall per job per process − median ms in job (fork, wait, RQ "
        "bookkeeping; approximate for 2 processes, which also compete for the 2 CPUs with the sandbox); CPU from "
        "the worker processes' rusage (work horses included) over the whole run, "
        "start-up included; CRM requests per job include one-offs (a fork repeats them).",
        "",
        "Modes: `simple` = `crmsync.worker.build_worker` (SimpleWorker); `fork` = the same settings on a "
        "subclass of RQ's forking `Worker`, Runtime built once in the parent; `pool` = "
        f"`rq.worker_pool.WorkerPool(num_workers={POOL_SIZE}, worker_class=CrmsyncWorker)`; `simple x2` = two "
        "`simple` processes.",
        "",
        *lines,
        "",
        *verdict,
    ]
    report("worker_modes", "RQ worker kinds: forking Worker vs SimpleWorker vs WorkerPool", args, host, body)
    return 0 if all(r.done == r.calls for r in results) else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
