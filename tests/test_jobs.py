"""The sync job's failure handling (SPEC §8), run in-process against a sandbox HubSpot
and a real Redis: what a call's record says and when it is tried again."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from crmsync import jobs, metrics, queue, store
from crmsync.attempt import CONFIG_RETRY, LOCKED_RETRY, RETRY_WINDOW, backoff
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.record import SyncRecord, call_status, update
from crmsync.runtime import Runtime
from crmsync.sandbox.server import SandboxServer
from tests.conftest import ROOT, installed
from tests.hs_helpers import hubspot_env

CALL = "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"


@pytest.fixture
def runtime_for(redis, redis_url):
    """Build and install a Runtime for a sandbox HubSpot (``env`` added to its settings); each
    one closed and uninstalled after the test."""
    with ExitStack() as stack:

        def build(sandbox, **env) -> Runtime:
            return stack.enter_context(installed({**hubspot_env(sandbox, redis_url), **env}, redis))

        yield build


@pytest.fixture
def runtime(hubspot, runtime_for):
    return runtime_for(hubspot)


def receive(redis, fixture_path: Path, name: str = "call_ended_documented.json", **changes) -> str:
    body = json.loads((fixture_path / name).read_text()) | changes
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    return event["call_id"]


def load(redis, call_id: str) -> SyncRecord:
    record = SyncRecord.load(redis, call_id)
    assert record is not None, f"{call_id} has no sync record"
    return record


def delays(redis) -> list[float]:
    key = f"rq:scheduled:{store.QUEUE_NAME}"
    return [score - time.time() for _, score in redis.zrange(key, 0, -1, withscores=True)]


def test_synced_call_records_person_activity_and_fields(runtime, hubspot, redis, fixture_path):
    person = hubspot.seed_contact({"phone": "+966501234567", "lastname": "Alharbi"})
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    record = load(redis, call_id)
    assert record.person["id"] == person and record.activity_id
    assert record.fields["written"]["budget"] == "80000"
    assert record.fields["skipped"]["nps"] == "source is empty"
    # as a person reads them: a number, and a datetime in ISO 8601 where HubSpot took epoch ms
    values, written = record.fields["values"], record.fields["written"]
    assert values["budget"] == 80000 and set(values) == set(written)
    assert written["last_ai_call_at"].isdigit() and values["last_ai_call_at"].endswith("Z")
    assert call_status(redis, call_id)["fields"]["values"] == values
    assert record.attempts == 1
    # the same job again (a duplicate, a retry after a crash) writes nothing new
    before = hubspot.count()
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert hubspot.count() == before


def test_a_retryable_failure_is_scheduled_with_backoff(runtime, hubspot, redis, fixture_path):
    hubspot.seed_contact({"phone": "+966501234567"})
    hubspot.add_fault(match=".*", status=503, body={"message": "down"}, times=None)
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    record = load(redis, call_id)
    assert record.state == "queued" and record.errors[0]["status"] == 503
    [delay] = delays(redis)
    assert 0 < delay <= 2.5  # the first retry within a few seconds


def test_retry_after_is_honoured(runtime, hubspot, redis, fixture_path):
    hubspot.add_fault(
        match=".*",
        status=429,
        headers={"Retry-After": "40"},
        times=None,
        body={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
    )
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    [delay] = delays(redis)
    assert 39 <= delay <= 41


@pytest.mark.parametrize("attempt", range(1, 15))
def test_backoff_grows_and_stays_under_a_minute(attempt):
    values = [backoff(attempt) for _ in range(50)]
    assert all(min(60.0, 2.0**attempt) / 2 <= v <= min(60.0, 2.0**attempt) for v in values)
    assert len(set(values)) > 1  # jitter


def test_after_an_hour_of_outage_the_call_fails_and_stays_replayable(runtime, hubspot, redis, fixture_path):
    hubspot.add_fault(match=".*", status=503, body={"message": "down"}, times=None)
    call_id = receive(redis, fixture_path)
    update(redis, call_id, first_failure_at=time.time() - RETRY_WINDOW - 1)
    assert jobs.sync_call(call_id, "call.ended") == "failed"
    record = load(redis, call_id)
    assert record.state == "failed" and "60 minutes" in record.reason
    assert redis.zscore(store.FAILED_KEY, call_id) is not None
    assert delays(redis) == []
    hubspot.clear_faults()
    queue.replay(redis, call_id)
    assert load(redis, call_id).state == "queued"
    assert redis.zscore(store.FAILED_KEY, call_id) is None


def test_a_permanent_refusal_fails_at_once_with_the_crms_words(runtime, hubspot, redis, fixture_path):
    hubspot.seed_contact({"phone": "+966501234567"})
    hubspot.add_fault(
        match="POST /crm/v3/objects/calls$",
        status=400,
        times=None,
        body={"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR"},
    )
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "failed"
    record = load(redis, call_id)
    assert record.errors[0]["message"] == "Property values were not valid"
    assert record.errors[0]["code"] == "VALIDATION_ERROR"


def test_refused_credentials_wait_instead_of_failing(hubspot, redis, runtime_for, fixture_path):
    runtime_for(hubspot, HUBSPOT_ACCESS_TOKEN="pat-revoked")
    call_id = receive(redis, fixture_path)
    update(redis, call_id, first_failure_at=time.time() - 5 * RETRY_WINDOW)
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    assert load(redis, call_id).state == "queued"  # never failed for this
    [delay] = delays(redis)
    assert delay == pytest.approx(CONFIG_RETRY, abs=2)
    assert metrics.credential_problems(redis) and "hubspot" in metrics.credential_problems(redis)[0]
    assert metrics.snapshot(redis)["credential_errors_total"]["crm=hubspot"] == 1


def test_a_call_whose_lock_is_held_is_tried_again_shortly(runtime, redis, fixture_path):
    call_id = receive(redis, fixture_path)
    redis.set(store.call_lock_key(call_id), "another job", ex=store.CALL_LOCK_TTL)
    assert jobs.sync_call(call_id, "call.ended") == "locked"
    [delay] = delays(redis)
    assert delay == pytest.approx(LOCKED_RETRY, abs=1)


def test_no_customer_number_is_skipped_with_a_reason(runtime, redis, fixture_path):
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["data"]["data"].pop("callParams")
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    assert jobs.sync_call(event["call_id"], "call.ended") == "skipped"
    assert "no usable customer phone number" in load(redis, event["call_id"]).reason


def hamsa_api(environ, start_response):
    """A stand-in for Hamsa's conversation API (an edge, not crmsync's code)."""
    assert environ["HTTP_AUTHORIZATION"] == "Token hamsa-key"
    assert environ["PATH_INFO"] == "/v1/voice-agents/conversation/5d0b6a3e-8c8f-4a55-b2f4-9f1e3c7a2b10"
    start_response("200 OK", [("Content-Type", "application/json")])
    return [
        json.dumps(
            {"success": True, "data": {"callParams": {"userNumber": "+966501234567"}, "callDuration": 125}}
        ).encode()
    ]


def test_missing_number_and_duration_come_from_hamsas_api(hubspot, redis, runtime_for, fixture_path):
    with SandboxServer(hamsa_api) as hamsa:
        runtime_for(hubspot, HAMSA_API_KEY="hamsa-key", HAMSA_BASE_URL=hamsa.url)
        person = hubspot.seed_contact({"phone": "0501234567"})
        body = json.loads((fixture_path / "call_ended_documented.json").read_text())
        del body["data"]["data"]["callParams"], body["data"]["data"]["callDuration"]
        event = normalise(body, "SA")
        Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
        assert jobs.sync_call(CALL, "call.ended") == "synced"
        assert load(redis, CALL).person["id"] == person
        [call] = hubspot.calls_for(CALL)
        assert call["hs_call_duration"] == "125000"
        assert hamsa.count("GET /v1/voice-agents/conversation/") == 1


def test_a_new_caller_is_created_with_the_mapped_fields_in_three_requests(runtime, hubspot, redis, fixture_path):
    call_id = receive(redis, fixture_path, "call_ended_flat.json")
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    record = load(redis, call_id)
    [(person_id, contact)] = hubspot.contacts.items()
    assert (record.person["id"], record.person["created"]) == (person_id, True)
    assert contact["renewal_decision"] == "later" and record.fields["written"]["renewal_decision"] == "later"
    # search, contact create (with the fields), call create: no separate update
    assert [f"{r.method} {r.path}" for r in hubspot.requests] == [
        "POST /crm/v3/objects/contacts/search",
        "POST /crm/v3/objects/contacts",
        "POST /crm/v3/objects/calls",
    ]


def test_a_field_refused_at_create_still_creates_the_caller(hubspot, redis, runtime_for, fixture_path, tmp_path):
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    text = (ROOT / "mappings" / "hubspot.yaml").read_text()
    (mappings / "hubspot.yaml").write_text(
        text.replace("fields:", "fields:\n  - from: outcome.renewal_decision\n    to: no_such_property\n", 1)
    )
    runtime_for(hubspot, MAPPINGS_DIR=str(mappings))
    call_id = receive(redis, fixture_path, "call_ended_flat.json")
    assert jobs.sync_call(call_id, "call.ended") == "partial"
    record = load(redis, call_id)
    assert record.person["created"] is True and len(hubspot.contacts) == 1
    assert "no_such_property" in record.fields["skipped"]
    assert record.fields["written"]["renewal_decision"] == "later"
    assert len(hubspot.calls_for(call_id)) == 1


def test_after_a_long_credential_wait_an_outage_still_gets_its_hour(hubspot, redis, runtime_for, fixture_path):
    runtime_for(hubspot, HUBSPOT_ACCESS_TOKEN="pat-revoked")
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "retrying"  # credentials refused: waits
    assert load(redis, call_id).first_failure_at is None  # waiting starts no failure clock
    runtime_for(hubspot)  # the token is fixed; now the CRM has an outage
    hubspot.add_fault(match=".*", status=503, body={"message": "down"}, times=None)
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    assert load(redis, call_id).state == "queued"


def test_a_daily_rate_limit_delays_without_failing(runtime, hubspot, redis, fixture_path):
    hubspot.add_fault(
        match=".*",
        status=429,
        times=None,
        headers={"Retry-After": "3600"},
        body={
            "status": "error",
            "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "DAILY",
        },
    )
    call_id = receive(redis, fixture_path)
    update(redis, call_id, first_failure_at=time.time() - 2 * RETRY_WINDOW)
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    record = load(redis, call_id)
    assert record.state == "queued" and record.first_failure_at is None
    assert max(delays(redis)) >= 3599


def test_an_unexpected_error_is_retried_not_lost(runtime, redis, fixture_path):
    call_id = receive(redis, fixture_path)
    redis.rpush(store.events_key(call_id), b"{not json")  # a corrupted record
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    record = load(redis, call_id)
    assert record.state == "queued" and record.errors == [{"message": "crmsync error: JSONDecodeError"}]
    assert len(delays(redis)) == 1


def test_a_waiting_call_keeps_its_events(runtime, hubspot, redis, fixture_path):
    hubspot.add_fault(match=".*", status=503, body={"message": "down"}, times=None)
    call_id = receive(redis, fixture_path)
    redis.expire(store.events_key(call_id), 5)  # about to expire
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    assert redis.ttl(store.events_key(call_id)) > 3000


def test_a_job_whose_worker_kept_dying_is_marked_failed(redis, fixture_path):
    call_id = receive(redis, fixture_path)
    job_id = queue.replay(redis, call_id)
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.failure_callback is jobs.job_failed  # RQ calls it for abandoned jobs
    jobs.job_failed(job, redis, AbandonedJobError, AbandonedJobError(), None)
    assert load(redis, call_id).state == "queued"  # RQ still hands it back
    job.retries_left = 0
    jobs.job_failed(job, redis, AbandonedJobError, AbandonedJobError(), None)
    record = load(redis, call_id)
    assert record.state == "failed" and "worker stopped" in record.reason
    assert redis.zscore(store.FAILED_KEY, call_id) is not None
