"""Claims (crmsync.claim): waiting sync jobs taken for a batch are RQ scheduled jobs, filed
as finished when the batch settles them, and handed back to the queue by RQ's own scheduler
when the worker that took them died. Real Redis and RQ."""

from __future__ import annotations

import threading
import time

from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from crmsync import queue
from crmsync.claim import Claims
from crmsync.queue import SweepJob, queue_for, reschedule


def enqueue(redis: Redis, *call_ids: str) -> list[str]:
    return [reschedule(redis, call_id, "call.ended", 0) for call_id in call_ids]


def test_take_claims_sync_jobs_from_the_head_and_stops_at_a_sweep(redis: Redis) -> None:
    enqueue(redis, "call-a", "call-b")
    queue_for(redis).enqueue(SweepJob.func, job_id=SweepJob.job_id(1))
    enqueue(redis, "call-c")
    claimed = Claims(redis).take(10)
    assert [(c.call_id, c.trigger) for c in claimed] == [("call-a", "call.ended"), ("call-b", "call.ended")]
    rq_queue = queue_for(redis)
    assert rq_queue.job_ids[0] == SweepJob.job_id(1) and rq_queue.count == 2
    scheduled = ScheduledJobRegistry(queue=rq_queue)
    assert sorted(scheduled.get_job_ids()) == sorted(c.job_id for c in claimed)
    job = Job.fetch(claimed[0].job_id, connection=redis, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.SCHEDULED


def test_take_respects_the_most_asked_for(redis: Redis) -> None:
    enqueue(redis, *(f"call-{i}" for i in range(5)))
    claims = Claims(redis)
    assert [c.call_id for c in claims.take(3)] == ["call-0", "call-1", "call-2"]
    assert claims.take(0) == []
    assert queue_for(redis).count == 2


def test_settled_claims_are_finished_jobs(redis: Redis) -> None:
    enqueue(redis, "call-a", "call-b")
    claims = Claims(redis)
    claimed = claims.take(5)
    assert claims.settle(claimed) == 2
    rq_queue = queue_for(redis)
    assert ScheduledJobRegistry(queue=rq_queue).count == 0
    assert sorted(FinishedJobRegistry(queue=rq_queue).get_job_ids()) == sorted(c.job_id for c in claimed)
    job = Job.fetch(claimed[0].job_id, connection=redis, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED
    assert 0 < redis.ttl(job.key) <= queue.JOB_RESULT_TTL
    assert claims.settle(claimed) == 0  # settled once


def test_claims_of_a_dead_batch_go_back_to_the_queue_when_due(redis: Redis) -> None:
    # the worker that took them died: nobody settles them; RQ's scheduler hands them back
    enqueue(redis, "call-a", "call-b")
    claimed = Claims(redis, hold=0.5).take(5)
    rq_queue = queue_for(redis)
    assert rq_queue.count == 0
    scheduler = RQScheduler([rq_queue], connection=redis, serializer=JSONSerializer)
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    assert rq_queue.count == 0  # not due yet
    deadline = time.monotonic() + 5  # RQ's scheduler reads the registry in whole seconds
    while rq_queue.count < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    assert sorted(rq_queue.job_ids) == sorted(c.job_id for c in claimed)
    assert Claims(redis).settle(claimed) == 0  # a late settle leaves them to RQ


def test_a_claim_whose_job_is_gone_is_dropped(redis: Redis) -> None:
    (job_id,) = enqueue(redis, "call-a")
    enqueue(redis, "call-b")
    redis.delete(Job.key_for(job_id))  # expired, or forgotten (crmsync forget)
    claimed = Claims(redis).take(5)
    assert [c.call_id for c in claimed] == ["call-b"]
    assert ScheduledJobRegistry(queue=queue_for(redis)).get_job_ids() == [claimed[0].job_id]


def test_gather_returns_at_once_when_nothing_waits(redis: Redis) -> None:
    # a lone call does not wait the window: a call arriving just after is not taken with it
    later = threading.Timer(0.3, lambda: enqueue(redis, "call-late"))
    later.start()
    try:
        assert Claims(redis).gather(99, window=5) == []
    finally:
        later.join()
    assert queue_for(redis).count == 1  # a gather that had waited would have claimed it


def test_gather_keeps_taking_what_arrives_within_the_window(redis: Redis) -> None:
    enqueue(redis, "call-0")
    later = threading.Timer(0.2, lambda: enqueue(redis, "call-1", "call-2"))
    later.start()
    try:
        claimed = Claims(redis).gather(3, window=5)
    finally:
        later.join()
    assert [c.call_id for c in claimed] == ["call-0", "call-1", "call-2"]
