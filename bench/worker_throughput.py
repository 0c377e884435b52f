"""Calls synced per second by ONE worker when every CRM request takes 50 ms (issue #5).

A worker syncs one call at a time and each CRM request is a network round trip, so with
real CRM latency the worker's throughput is bounded by ``1 / (requests per call × latency)``
(HubSpot, 3 requests × 50 ms: 6.7 calls/s; Salesforce, 2 × 50 ms: 10 calls/s). This
measures how close one worker gets to that bound, i.e. how much time crmsync itself adds
per call (Redis round trips, locks, rate-limit bookkeeping, mapping, RQ).

How: a sandbox CRM with its rate limits off and a fault that delays every request by
50 ms (``add_fault(match=".*", delay=0.05, times=None)``); crmsync's limits set high
(``HUBSPOT_RATE_LIMIT=10000/10s``, ``HUBSPOT_SEARCH_RATE_LIMIT=1000/s``) so that only
latency bounds it. N known callers are seeded, N ``call.ended`` webhooks go through the
real webhook app (Flask test client) into the queue, then one Procfile worker process
(``crmsync worker --burst``, a SimpleWorker) drains it. Throughput is taken from RQ's own
job timestamps, from the end of the first job to the end of the last ((N − 1) jobs), so
the worker's start-up and one-off requests (Salesforce ``describe``) are left out. The same
run with no added latency is shown for reference (crmsync's own cost per call).

Run: ``.venv/bin/python -m bench.worker_throughput [--calls 60] [--crm hubspot|salesforce|both]``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from bench.common import (
    api_requests,
    count_done,
    crms_of,
    job_times,
    machine,
    print_table,
    queued,
    report,
    run_burst_worker,
)

LATENCY = 0.05  # seconds added to every CRM request


@dataclass
class Result:
    crm: str
    latency: float
    calls: int
    done: int
    per_call: float  # CRM requests per call, measured
    rate: float  # calls/s, end of first job to end of last
    mean_in_job: float  # seconds inside sync_call

    @property
    def bound(self) -> float:
        return 1 / (self.per_call * self.latency) if self.latency else float("inf")

    @property
    def overhead_ms(self) -> float:
        """Milliseconds per call beyond the CRM latency floor."""
        return (1 / self.rate - self.per_call * self.latency) * 1000


def measure(crm: str, calls: int, latency: float) -> Result:
    with queued(crm, calls, f"bench-tput-{crm}") as run:
        if latency:
            run.sandbox.add_fault(match=".*", delay=latency, times=None)
        before = len(run.sandbox.requests)
        run_burst_worker(run.env, run.work / f"worker-{crm}-{latency}.log", timeout=60 + calls * 2)
        per_call, _ = api_requests(list(run.sandbox.requests)[before:])
        done = count_done(run.redis, run.call_ids)
        times = job_times(run.redis)
    return Result(
        crm=crm,
        latency=latency,
        calls=calls,
        done=done,
        per_call=len(per_call) / calls,
        rate=times.rate,
        mean_in_job=times.mean_in_job,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="calls per run (default 60)")
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    args = parser.parse_args(argv)
    host = machine()
    crms = crms_of(args)
    results: list[Result] = []
    for crm in crms:
        for latency in (LATENCY, 0.0):
            result = measure(crm, args.calls, latency)
            results.append(result)
            print(
                f"  {crm:10} +{latency * 1000:.0f} ms: {result.rate:.2f} calls/s "
                f"(bound {result.bound:.2f}), {result.per_call:.2f} requests/call, {result.done}/{result.calls} done",
                flush=True,
            )
    rows = []
    for r in results:
        bound = f"{r.bound:.2f}" if r.latency else "—"
        share = f"{r.rate / r.bound:.0%}" if r.latency else "—"
        rows.append(
            (
                r.crm,
                f"{r.latency * 1000:.0f}",
                f"{r.done}/{r.calls}",
                f"{r.per_call:.2f}",
                f"**{r.rate:.2f}**",
                bound,
                share,
                f"{r.mean_in_job * 1000:.0f}",
                f"{r.overhead_ms:.0f}",
            )
        )
    header = [
        "CRM",
        "added latency ms",
        "synced/partial",
        "requests per call",
        "calls/s (one worker)",
        "bound 1/(req × latency)",
        "share of bound",
        "mean ms in job",
        "ms per call beyond latency",
    ]
    lines = print_table(header, rows)
    body = [
        "One Procfile worker (`crmsync worker --burst`: a SimpleWorker, one call at a time) drains N queued "
        "`call.ended` calls from known callers; the sandbox adds the stated latency to every request (fault "
        "`match='.*', delay, times=None`), its own rate limits off; crmsync's HubSpot limits 10000/10s and "
        "1000/s searches so that only latency bounds the worker. Calls/s from RQ's job timestamps, end of the "
        "first job to end of the last (start-up and one-off requests excluded). *ms per call beyond latency* = "
        "1/(calls/s) − requests per call × latency: what crmsync and RQ add per call. The 0 ms rows are the "
        "same run without added latency.",
        "",
        *lines,
    ]
    report("worker_throughput", "One worker's throughput under 50 ms CRM latency (issue #5)", args, host, body)
    return 0 if all(r.done == r.calls for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
