"""Every enqueue of crmsync's RQ jobs: ``crmsync.jobs.sync_call(call_id, trigger)``, and the
reconciliation sweep ``crmsync.jobs.reconcile`` (``SweepJob``, scheduled per slot).

``SyncJob`` is the one description of that job (function, timeouts, TTLs, crash retries,
failure callback); every path that queues a call goes through it: ``crmsync.ingest.Ingest.store``
(a webhook, a quarantined body submitted again: its Lua script saves the job RQ builds from
``SyncJob``), ``reschedule`` (a retry, a wait, a held lock) and ``replay``. ``crmsync.jobs``
only runs the job.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta

from redis import Redis
from rq import Callback, Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

from crmsync import record
from crmsync.record import SyncState
from crmsync.store import QUEUE_NAME

JOB_FUNC = "crmsync.jobs.sync_call"
SYNC_JOB_PREFIX = "sync-"  # every sync_call job's id starts so (crmsync.claim takes only those)
FAILURE_CALLBACK = "crmsync.jobs.job_failed"
JOB_TIMEOUT = 50  # seconds one sync may run before RQ stops it (a few CRM requests, each with a timeout)
CRASH_RETRIES = 5  # times RQ hands back a job whose worker died
CRASH_RETRY_INTERVALS = [1, 5, 15, 30, 60]  # seconds
JOB_RESULT_TTL = 24 * 3600  # seconds a finished job stays visible in RQ
JOB_FAILURE_TTL = 30 * 24 * 3600  # seconds a failed job stays in RQ's failed registry


def job_id_for(dedupe: str, attempt: str = "") -> str:
    """RQ job ids allow ``[A-Za-z0-9_-]``; call ids may hold anything, so hash them."""
    return SYNC_JOB_PREFIX + hashlib.sha256(f"{dedupe}|{attempt}".encode()).hexdigest()[:32]


class SyncJob:
    """The one description of crmsync's RQ job. Jobs are built by RQ's own ``Queue.create_job``
    from it, so a retry, a replay and RQ's tools all see the same job."""

    func = JOB_FUNC
    timeout = JOB_TIMEOUT
    result_ttl = JOB_RESULT_TTL
    failure_ttl = JOB_FAILURE_TTL
    retry = Retry(max=CRASH_RETRIES, interval=CRASH_RETRY_INTERVALS)
    on_failure = Callback(FAILURE_CALLBACK)

    @staticmethod
    def description(call_id: str, trigger: str) -> str:
        return f"sync call {call_id} ({trigger})"

    @classmethod
    def create(cls, queue: Queue, call_id: str, trigger: str, job_id: str, status: JobStatus = JobStatus.QUEUED) -> Job:
        """The job for one call, not yet saved (RQ's ``Queue.create_job``)."""
        return queue.create_job(
            cls.func,
            args=(call_id, trigger),
            job_id=job_id,
            timeout=cls.timeout,
            result_ttl=cls.result_ttl,
            failure_ttl=cls.failure_ttl,
            description=cls.description(call_id, trigger),
            status=status,
            retry=cls.retry,
            on_failure=cls.on_failure,
        )


class SweepJob:
    """The one description of the reconciliation sweep's RQ job (``crmsync.jobs.reconcile``),
    one per ``HAMSA_RECONCILE_INTERVAL`` slot (``crmsync.hamsa.schedule`` decides the slot
    and claims it once)."""

    func = "crmsync.jobs.reconcile"
    timeout = 1800  # seconds one sweep job may run
    result_ttl = 24 * 3600  # seconds a finished sweep job stays visible in RQ
    failure_ttl = 7 * 24 * 3600  # seconds a failed one stays in RQ's failed registry
    description = "reconcile with Hamsa's call history"

    @staticmethod
    def job_id(slot: int) -> str:
        return f"reconcile-{slot}"

    @classmethod
    def schedule(cls, redis: Redis, slot: int, at: datetime) -> str:
        """Put the sweep of ``slot`` on RQ's schedule for ``at``; returns its job id."""
        job_id = cls.job_id(slot)
        queue_for(redis).enqueue_at(
            at,
            cls.func,
            job_id=job_id,
            job_timeout=cls.timeout,
            result_ttl=cls.result_ttl,
            failure_ttl=cls.failure_ttl,
            description=cls.description,
        )
        return job_id


def queue_for(redis: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer)


def reschedule(redis: Redis, call_id: str, trigger: str, delay: float) -> str:
    """Queue the call again in ``delay`` seconds (a new job id each time); returns the id."""
    queue = queue_for(redis)
    job_id = job_id_for(f"{call_id}|{trigger}", attempt=f"{time.time_ns()}")
    if delay <= 0.5:
        queue.enqueue_job(SyncJob.create(queue, call_id, trigger, job_id))
    else:
        job = SyncJob.create(queue, call_id, trigger, job_id, status=JobStatus.SCHEDULED)
        queue.schedule_job(job, now() + timedelta(seconds=delay))
    return job_id


def replay(redis: Redis, call_id: str) -> str:
    """Queue a call again now (``crmsync replay``), its failure clock reset; returns the job id."""
    record.update(redis, call_id, state=SyncState.QUEUED, first_failure_at=None)
    return reschedule(redis, call_id, "replay", 0)
