"""A job that finds other calls waiting syncs them together (crmsync.batch), run in-process
against a sandbox HubSpot and a real Redis: one lookup and batch writes, and every answer,
lock and record per call. The real processes are in tests/test_e2e_burst.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

from redis import Redis
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from crmsync import batch, jobs, metrics, queue, record, store
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.queue import queue_for, reschedule
from crmsync.record import SyncRecord, SyncState
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from tests import test_jobs
from tests.conftest import installed
from tests.sf_helpers import salesforce_env

runtime_for, runtime = test_jobs.runtime_for, test_jobs.runtime  # fixtures (hubspot: conftest)
BATCH_CREATE = "POST /crm/v3/objects/calls/batch/create$"


def receive_many(
    redis: Redis, fixture_path: Path, sandbox: HubSpotSandbox | SalesforceSandbox, count: int
) -> list[str]:
    """``count`` calls from known callers, each queued as the webhook queues it."""
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    call_ids = []
    for i in range(count):
        number = f"+96650100{i:04d}"
        if isinstance(sandbox, HubSpotSandbox):
            sandbox.seed_contact({"phone": number, "lastname": f"Caller {i}"})
        else:
            sandbox.seed("Contact", {"Phone": number, "LastName": f"Caller {i}"})
        body["callId"] = f"batch-{i}"
        body["data"]["data"]["callParams"]["userNumber"] = number
        body["data"]["data"]["conversationId"] = f"conversation-{i}"
        event = normalise(body, "SA")
        Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=True)
        call_ids.append(event["call_id"])
    return call_ids


def take_first(redis: Redis) -> str:
    """The job a worker would take first, off the queue (the batch's own job)."""
    rq_queue = queue_for(redis)
    job = rq_queue.fetch_job(rq_queue.pop_job_id())
    return str(job.args[0])


def records(redis: Redis, call_ids: list[str]) -> dict[str, SyncRecord]:
    return {c: SyncRecord.load(redis, c) for c in call_ids}  # type: ignore[misc]


def test_waiting_calls_sync_in_one_batch(runtime, hubspot, redis, fixture_path):
    call_ids = receive_many(redis, fixture_path, hubspot, 6)
    first = take_first(redis)
    assert jobs.sync_call(first, "call.ended") == "synced"
    done = records(redis, call_ids)
    assert {c: r.state for c, r in done.items()} == dict.fromkeys(call_ids, "synced")
    assert all(r.fields["written"]["budget"] == "80000" and r.attempts == 1 for r in done.values())
    assert all(len(hubspot.calls_for(c)) == 1 for c in call_ids)
    assert hubspot.count(BATCH_CREATE) == 1 and hubspot.count("POST /crm/v3/objects/calls$") == 0
    # the claimed jobs are RQ's finished jobs; nothing is left on the queue or claimed
    rq_queue = queue_for(redis)
    assert rq_queue.count == 0 and ScheduledJobRegistry(queue=rq_queue).count == 0
    assert FinishedJobRegistry(queue=rq_queue).count == 5
    text = metrics.render(redis)
    assert 'crmsync_sync_batches_total{crm="hubspot"} 1' in text
    assert 'crmsync_sync_batch_calls_total{crm="hubspot"} 6' in text
    ratio = next(line for line in text.splitlines() if line.startswith("crmsync_calls_per_crm_request"))
    assert float(ratio.split()[-1]) == round(6 / hubspot.count(), 3) > 1


def test_a_call_alone_takes_the_one_call_path(runtime, hubspot, redis, fixture_path):
    (call_id,) = receive_many(redis, fixture_path, hubspot, 1)
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    assert hubspot.count(BATCH_CREATE) == 0 and len(hubspot.calls_for(call_id)) == 1
    assert "crmsync_sync_batches_total{" not in metrics.render(redis)


def test_sync_batch_max_1_syncs_each_call_alone(hubspot, runtime_for, redis, fixture_path):
    runtime_for(hubspot, SYNC_BATCH_MAX="1")
    call_ids = receive_many(redis, fixture_path, hubspot, 3)
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    assert queue_for(redis).count == 2  # the others wait for their own jobs
    assert SyncRecord.load(redis, call_ids[1]).state == "queued"  # type: ignore[union-attr]


def test_a_claimed_call_another_job_holds_is_queued_again(runtime, hubspot, redis, fixture_path):
    call_ids = receive_many(redis, fixture_path, hubspot, 3)
    held = redis.lock(store.call_lock_key(call_ids[2]), timeout=60)
    assert held.acquire(blocking=False)
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    states = {c: r.state for c, r in records(redis, call_ids).items()}
    assert states == {call_ids[0]: "synced", call_ids[1]: "synced", call_ids[2]: "queued"}
    assert hubspot.calls_for(call_ids[2]) == []
    assert ScheduledJobRegistry(queue=queue_for(redis)).count == 1  # its new job, in LOCKED_RETRY seconds
    held.release()


def test_a_failed_batch_search_retries_each_of_its_calls(runtime, hubspot, redis, fixture_path):
    call_ids = receive_many(redis, fixture_path, hubspot, 3)
    hubspot.add_fault(match="POST /crm/v3/objects/contacts/search$", status=503, body={"message": "down"}, times=1)
    assert jobs.sync_call(take_first(redis), "call.ended") == "retrying"
    # the batch search failed: every call of it retries on its own, nothing is lost
    done = records(redis, call_ids)
    assert all(r.state == "queued" and r.errors[0]["status"] == 503 for r in done.values())
    assert ScheduledJobRegistry(queue=queue_for(redis)).count == 3  # each call's own retry


def test_a_number_the_crm_cannot_look_up_fails_only_its_call(runtime, hubspot, redis, fixture_path):
    call_ids = receive_many(redis, fixture_path, hubspot, 3)
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["callId"], body["data"]["data"]["callParams"]["userNumber"] = "batch-bad", "+9991234567"  # no such country
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=True)
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    failed = SyncRecord.load(redis, "batch-bad")
    assert failed is not None and failed.state == "failed" and "E.164" in failed.reason, failed
    assert {c: r.state for c, r in records(redis, call_ids).items()} == dict.fromkeys(call_ids, "synced")
    assert hubspot.count(BATCH_CREATE) == 1 and hubspot.calls_for("batch-bad") == []


def test_a_replay_claimed_beside_an_event_of_its_call_replays_it(runtime, hubspot, redis, fixture_path):
    first, again = receive_many(redis, fixture_path, hubspot, 2)
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"  # both synced, one batch
    before = SyncRecord.load(redis, again).attempts  # type: ignore[union-attr]
    reschedule(redis, first, "call.ended", 0)  # the batch's own job
    reschedule(redis, again, "call.ended", 0)  # a delivery again: a synced call, nothing new
    queue.replay(redis, again)  # and an admin's replay of the same call ...
    record.update(redis, again, state=SyncState.SYNCED)  # ... which another job then synced: the replay still runs
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    assert SyncRecord.load(redis, again).attempts == before + 1  # type: ignore[union-attr]  # replayed once
    assert len(hubspot.calls_for(again)) == 1


def test_a_spent_salesforce_budget_makes_every_call_of_the_batch_wait(redis, redis_url, fixture_path, monkeypatch):
    with SalesforceSandbox() as org:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_path))
        call_ids = receive_many(redis, fixture_path, org, 4)
        with installed({**salesforce_env(org, redis_url), "SALESFORCE_DAILY_BUDGET": "1"}, redis):
            assert jobs.sync_call(take_first(redis), "call.ended") == "retrying"
        assert org.api_requests() <= 1  # the one unit, whatever it was spent on
        assert [t for t in org.tasks() if t.get("CallObject") in call_ids] == []
    done = records(redis, call_ids)
    assert all(r.state == "queued" and r.next_attempt_at for r in done.values()), done  # waiting, not failed
    assert all(r.next_attempt_at - time.time() > 3600 for r in done.values())  # until the budget has room
    assert ScheduledJobRegistry(queue=queue_for(redis)).count == 4


def test_refused_credentials_make_every_call_wait(runtime, hubspot, redis, fixture_path):
    call_ids = receive_many(redis, fixture_path, hubspot, 4)
    hubspot.add_fault(
        match=".*", status=401, times=None, body={"status": "error", "category": "INVALID_AUTHENTICATION"}
    )
    jobs.sync_call(take_first(redis), "call.ended")
    done = records(redis, call_ids)
    assert all(r.state == "queued" and r.next_attempt_at for r in done.values())
    assert redis.hget(metrics.CREDENTIALS_KEY, "hubspot")
    assert all(hubspot.calls_for(c) == [] for c in call_ids)


def test_a_done_call_claimed_again_is_left_alone(runtime, hubspot, redis, fixture_path):
    call_ids = receive_many(redis, fixture_path, hubspot, 2)
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    # a second job for each synced call (no new event since): claimed, nothing written
    reschedule(redis, call_ids[1], "call.ended", 0)
    reschedule(redis, call_ids[0], "call.ended", 0)
    before = hubspot.count()
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"
    assert hubspot.count() == before
    assert all(len(hubspot.calls_for(c)) == 1 for c in call_ids)


def test_a_batch_past_its_budget_hands_the_rest_back(runtime, hubspot, redis, fixture_path, monkeypatch):
    # a batch whose one-call writes used up its time (BUDGET 0 here): the calls not yet
    # planned go back on the queue at once, unsynced and unharmed; the job's own call syncs
    monkeypatch.setattr(batch, "BUDGET", 0)
    call_ids = receive_many(redis, fixture_path, hubspot, 3)
    first = take_first(redis)
    assert jobs.sync_call(first, "call.ended") == "synced"
    rest = [c for c in call_ids if c != first]
    assert all(SyncRecord.load(redis, c).state == "queued" for c in rest)  # type: ignore[union-attr]
    assert all(hubspot.calls_for(c) == [] for c in rest)
    assert queue_for(redis).count == 2
    monkeypatch.undo()
    assert jobs.sync_call(take_first(redis), "call.ended") == "synced"  # the next job takes the last one
    assert all(len(hubspot.calls_for(c)) == 1 for c in call_ids)
