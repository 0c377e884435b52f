"""The ingest script writes RQ's own job layout, so RQ's workers, ``rq info`` and
dashboards see crmsync's jobs as if RQ had enqueued them."""

import json

from rq import Callback, Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.events import dedupe_key, normalise
from crmsync.queue import (
    CRASH_RETRIES,
    CRASH_RETRY_INTERVALS,
    FAILURE_CALLBACK,
    JOB_FAILURE_TTL,
    JOB_FUNC,
    JOB_RESULT_TTL,
    JOB_TIMEOUT,
    Ingest,
    job_id_for,
)

TIMES = {b"created_at", b"enqueued_at"}


def test_job_hash_matches_what_rq_writes(redis, fixture_path):
    event = normalise(json.loads((fixture_path / "call_ended_documented.json").read_text()), "US")
    dedupe = dedupe_key(event)
    assert Ingest(redis, 3600).store(event, dedupe, enqueue=True)
    job_id = job_id_for(dedupe, attempt=event["received_at"])
    ours = redis.hgetall(f"rq:job:{job_id}")

    queue = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    theirs_job = queue.enqueue(
        JOB_FUNC, event["call_id"], event["event"], job_id="reference-job", job_timeout=JOB_TIMEOUT,
        result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL, unique=True,
        description=f"sync call {event['call_id']} ({event['event']})",
        retry=Retry(max=CRASH_RETRIES, interval=CRASH_RETRY_INTERVALS), on_failure=Callback(FAILURE_CALLBACK),
    )
    theirs = redis.hgetall(theirs_job.key)
    assert set(ours) == set(theirs)
    for field in set(ours) - TIMES:
        assert ours[field] == theirs[field], field

    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert (job.func_name, job.args, job.get_status()) == (JOB_FUNC, [event["call_id"], "call.ended"], "queued")
    assert queue.job_ids == [job_id, "reference-job"]
