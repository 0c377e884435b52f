"""The ingest script writes RQ's own job layout, so RQ's workers, ``rq info`` and
dashboards see crmsync's jobs as if RQ had enqueued them."""

import json

from rq import Callback, Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.queue import (
    CRASH_RETRIES,
    CRASH_RETRY_INTERVALS,
    FAILURE_CALLBACK,
    JOB_FAILURE_TTL,
    JOB_FUNC,
    JOB_RESULT_TTL,
    JOB_TIMEOUT,
    job_id_for,
    replay,
    reschedule,
)
from crmsync.record import SyncRecord

TIMES = {b"created_at", b"enqueued_at"}


def test_job_hash_matches_what_rq_writes(redis, fixture_path):
    event = normalise(json.loads((fixture_path / "call_ended_documented.json").read_text()), "US")
    dedupe = dedupe_key(event)
    assert Ingest(redis, 3600).store(event, dedupe, enqueue=True)
    job_id = job_id_for(dedupe, attempt=event["received_at"])
    ours = redis.hgetall(f"rq:job:{job_id}")

    queue = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    theirs_job = queue.enqueue(
        JOB_FUNC,
        event["call_id"],
        event["event"],
        job_id="reference-job",
        job_timeout=JOB_TIMEOUT,
        result_ttl=JOB_RESULT_TTL,
        failure_ttl=JOB_FAILURE_TTL,
        unique=True,
        description=f"sync call {event['call_id']} ({event['event']})",
        retry=Retry(max=CRASH_RETRIES, interval=CRASH_RETRY_INTERVALS),
        on_failure=Callback(FAILURE_CALLBACK),
    )
    theirs = redis.hgetall(theirs_job.key)
    assert set(ours) == set(theirs)
    for field in set(ours) - TIMES:
        assert ours[field] == theirs[field], field

    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert (job.func_name, job.args, job.get_status()) == (JOB_FUNC, [event["call_id"], "call.ended"], "queued")
    assert queue.job_ids == [job_id, "reference-job"]


def test_retries_and_replays_are_the_same_job_as_ingest(redis, fixture_path):
    """Every enqueue goes through one job description: a retry queued now, one queued for
    later and a replay are the job the ingest script writes (bar ids, times, the trigger)."""
    event = normalise(json.loads((fixture_path / "call_ended_documented.json").read_text()), "US")
    dedupe = dedupe_key(event)
    assert Ingest(redis, 3600).store(event, dedupe, enqueue=True)
    ours = redis.hgetall(f"rq:job:{job_id_for(dedupe, attempt=event['received_at'])}")
    call_id, trigger = event["call_id"], event["event"]

    now_id = reschedule(redis, call_id, trigger, 0)
    later_id = reschedule(redis, call_id, trigger, 30)
    replay_id = replay(redis, call_id)
    now_hash, later_hash, replay_hash = (redis.hgetall(f"rq:job:{i}") for i in (now_id, later_id, replay_id))

    assert {k: v for k, v in now_hash.items() if k not in TIMES} == {k: v for k, v in ours.items() if k not in TIMES}
    assert set(later_hash) == set(ours) - {b"enqueued_at"} and later_hash[b"status"] == b"scheduled"
    for field in set(later_hash) - TIMES - {b"status"}:
        assert later_hash[field] == ours[field], field
    assert set(replay_hash) == set(ours)
    for field in set(ours) - TIMES - {b"data", b"description"}:
        assert replay_hash[field] == ours[field], field
    job = Job.fetch(replay_id, connection=redis, serializer=JSONSerializer)
    assert (job.args, job.description) == ([call_id, "replay"], f"sync call {call_id} (replay)")

    queue = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    assert queue.job_ids == [job_id_for(dedupe, attempt=event["received_at"]), now_id, replay_id]
    assert queue.scheduled_job_registry.get_job_ids() == [later_id]
    assert SyncRecord.load(redis, call_id).state == "queued"
