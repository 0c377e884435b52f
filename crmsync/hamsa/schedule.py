"""The sweep's periodic run, on RQ's own scheduling (SPEC §2: inside the existing processes).

Every ``HAMSA_RECONCILE_INTERVAL`` seconds (wall-clock slots: with 300, at :00, :05, …)
one sweep job (``crmsync.queue.SweepJob``: ``crmsync.jobs.reconcile``) is due in RQ's
``ScheduledJobRegistry``; the RQ scheduler that
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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from crmsync.errors import CrmsyncError
from crmsync.hamsa.client import HamsaClient
from crmsync.hamsa.reconcile import Reconciler, Rules
from crmsync.hamsa.sweep import sweep
from crmsync.ingest import Ingest
from crmsync.metrics import Metrics
from crmsync.queue import SweepJob
from crmsync.settings import Settings

log = logging.getLogger(__name__)


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
    return SweepJob.schedule(redis, slot, datetime.fromtimestamp(slot * interval, UTC))


def rules_for(
    settings: Settings, statuses: Iterable[str], enqueue: bool, source: str, *, dry_run: bool = False
) -> Rules:
    """What a run takes: the mapping's ``statuses``, whether it subscribes to ``call.ended``
    (``enqueue``), and the settings' grace and region."""
    return Rules(
        statuses=frozenset(statuses),
        grace=settings.reconcile.grace,
        region=settings.default_region,
        enqueue=enqueue,
        source=source,
        dry_run=dry_run,
    )


def run(redis: Redis, settings: Settings, metrics: Metrics, rules: Rules) -> dict[str, Any]:
    """One scheduled sweep (``crmsync.jobs.reconcile`` calls it): schedule the next one,
    then sweep (or find one running). What stopped a sweep is kept for ``/readyz`` and the
    logs; the job itself succeeds."""
    if not settings.sweeps_on or not settings.hamsa_api_key:
        return {"state": "off"}
    schedule_next(redis, settings.reconcile.interval)
    ingest = Ingest(redis, settings.dedupe_ttl, settings.raw_body_ttl)
    with HamsaClient(settings.hamsa_api_key, settings.hamsa_base_url, metrics=metrics) as client:
        try:
            summary = sweep(
                redis,
                lambda **hooks: Reconciler(redis, client, ingest, rules, **hooks),
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
