"""The sweep's periodic run, on RQ's own scheduling (SPEC §2: inside the existing processes).

Every ``HAMSA_RECONCILE_INTERVAL`` seconds (wall-clock slots: with 300, at :00, :05, …)
one ``run_scheduled`` job is due in RQ's ``ScheduledJobRegistry``; the RQ scheduler that
every ``crmsync worker`` runs (``--with-scheduler``, as for retries; RQ lets one of them
hold its scheduler lock) moves it onto the queue, and some worker runs it. Each slot is
claimed once in Redis (``SET NX``), so however many workers start, one job exists per
slot. A worker schedules the next slot when it starts, and a sweep schedules the next one
before it runs: a sweep whose worker dies does not end the series. RQ's cron scheduler
(``rq cron``) is not used: it is a process of its own and enqueues with pickle.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.errors import CrmsyncError
from crmsync.hamsa.client import HamsaClient
from crmsync.hamsa.reconcile import Reconciler, Rules
from crmsync.hamsa.sweep import sweep
from crmsync.mapping.model import Mapping
from crmsync.queue import Ingest
from crmsync.settings import Settings

log = logging.getLogger(__name__)

SWEEP_FUNC = "crmsync.hamsa.schedule.run_scheduled"
SWEEP_TIMEOUT = 1800  # seconds one sweep job may run
SWEEP_RESULT_TTL = 24 * 3600  # seconds a finished sweep job stays visible in RQ


def slot_key(slot: int) -> str:
    return f"crmsync:reconcile:slot:{slot}"


def schedule_next(redis: Redis, interval: int, now: float | None = None) -> str | None:
    """Put the next slot's sweep on RQ's schedule unless someone already did; returns the
    job id when this call scheduled it."""
    if interval <= 0:
        return None
    moment = time.time() if now is None else now
    slot = int(moment // interval) + 1
    if not redis.set(slot_key(slot), "1", nx=True, ex=interval * 2 + 60):
        return None
    queue = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    job_id = f"reconcile-{slot}"
    queue.enqueue_at(
        datetime.fromtimestamp(slot * interval, UTC),
        SWEEP_FUNC,
        job_id=job_id,
        job_timeout=SWEEP_TIMEOUT,
        result_ttl=SWEEP_RESULT_TTL,
        failure_ttl=7 * 24 * 3600,
        description="reconcile with Hamsa's call history",
    )
    return job_id


def rules_for(mapping: Mapping, settings: Settings, source: str, *, dry_run: bool = False) -> Rules:
    """What the mapping and the settings say a run takes."""
    return Rules(
        statuses=frozenset(mapping.statuses),
        grace=settings.reconcile.grace,
        region=settings.default_region,
        enqueue="call.ended" in mapping.events,
        source=source,
        dry_run=dry_run,
    )


def run_scheduled() -> dict[str, Any]:
    """RQ entry point: schedule the next sweep, then run this one (or find one running).
    What stopped a sweep is kept for ``/readyz`` and the logs; the job itself succeeds."""
    from crmsync.runtime import Runtime

    runtime = Runtime.current()
    settings = runtime.settings
    if not settings.sweeps_on or not settings.hamsa_api_key:
        return {"state": "off"}
    schedule_next(runtime.redis, settings.reconcile.interval)
    rules = rules_for(runtime.mapping, settings, "reconcile")
    ingest = Ingest(runtime.redis, settings.dedupe_ttl)
    with HamsaClient(settings.hamsa_api_key, settings.hamsa_base_url, metrics=runtime.metrics) as client:
        try:
            summary = sweep(
                runtime.redis,
                lambda **hooks: Reconciler(runtime.redis, client, ingest, rules, **hooks),
                settings.reconcile,
                settings.dedupe_ttl,
            )
        except CrmsyncError as exc:
            return {"state": "failed", "problem": str(exc).splitlines()[0]}
    return {"state": "locked"} if summary is None else {"state": "done", **summary.to_dict()}


def start(redis: Redis, settings: Settings) -> None:
    """What a worker does at start: make sure the next sweep is scheduled."""
    if settings.sweeps_on:
        job_id = schedule_next(redis, settings.reconcile.interval)
        log.info("reconciliation sweeps every %s s", settings.reconcile.interval, extra={"scheduled": job_id})
