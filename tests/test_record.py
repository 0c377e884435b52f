"""The sync record's Redis round trip (``crmsync.record``) against a real Redis."""

import pytest

from crmsync import store
from crmsync.record import SyncRecord, SyncState, update

CALL = "call_7f3a9c2e"


def test_a_record_reads_back_typed_what_was_written(redis):
    assert SyncRecord.load(redis, CALL) is None
    update(
        redis,
        CALL,
        state=SyncState.PARTIAL,
        crm="hubspot",
        attempts=2,
        activity_id="901",
        person={"type": "contact", "id": "51", "created": False},
        fields={"written": {"budget": "80000"}, "skipped": {"nps": "source is empty"}},
        errors=[{"message": "Property values were not valid"}],
        next_attempt_at=None,
    )
    record = SyncRecord.load(redis, CALL)
    assert record == SyncRecord(
        state=SyncState.PARTIAL,
        crm="hubspot",
        attempts=2,
        activity_id="901",
        person={"type": "contact", "id": "51", "created": False},
        fields={"written": {"budget": "80000"}, "skipped": {"nps": "source is empty"}},
        errors=[{"message": "Property values were not valid"}],
        updated_at=record.updated_at,
    )
    assert isinstance(record.state, SyncState) and record.updated_at.endswith("Z")
    assert 0 < redis.ttl(store.status_key(CALL)) <= store.STATUS_TTL


def test_updates_merge_and_failed_calls_are_indexed(redis):
    update(redis, CALL, state=SyncState.FAILED, reason="the CRM refused it", attempts=1)
    assert redis.zscore(store.FAILED_KEY, CALL) is not None
    update(redis, CALL, state=SyncState.QUEUED)
    record = SyncRecord.load(redis, CALL)
    assert (record.state, record.reason, record.attempts) == ("queued", "the CRM refused it", 1)
    assert redis.zscore(store.FAILED_KEY, CALL) is None


def test_an_unknown_attribute_is_refused_and_nothing_is_written(redis):
    with pytest.raises(TypeError, match="a sync record has no colour"):
        update(redis, CALL, state=SyncState.SYNCED, colour="green")
    assert SyncRecord.load(redis, CALL) is None


def test_the_status_document_has_the_spec_keys(redis):
    redis.hset(store.status_key(CALL), mapping={"state": '"synced"', "attempts": "null", "written_by": '"old"'})
    redis.expire(store.status_key(CALL), 60)
    document = SyncRecord.load(redis, CALL).status(CALL, receipts=[])
    assert {"call_id", "state", "crm", "person", "activity_id", "fields", "errors", "attempts", "updated_at"} <= set(
        document
    )
    assert (document["state"], document["attempts"], document["fields"]["written"]) == ("synced", 0, {})
    assert SyncRecord().status(CALL, receipts=[])["state"] == "received"


def test_final_and_done_states():
    assert {s for s in SyncState if s.final} == {"synced", "partial", "skipped", "failed"}
    assert {s for s in SyncState if s.done} == {"synced", "partial"}
