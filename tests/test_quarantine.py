"""crmsync.quarantine against a real Redis: bounded, and replay that loses nothing."""

import json

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import quarantine, store
from crmsync.ingest import Ingest

DETAILS = {"callId": ["is missing"]}


def test_the_oldest_bodies_go_first_beyond_the_bound(redis, monkeypatch):
    monkeypatch.setattr(store, "QUARANTINE_MAX", 3)
    ids = [quarantine.keep(redis, f'{{"n": {n}}}'.encode(), DETAILS, "10.0.0.1") for n in range(5)]
    assert {row.id for row in quarantine.newest(redis)} == set(ids[2:])
    assert redis.zcard(store.QUARANTINE_INDEX) == 3
    assert not redis.exists(store.quarantine_key(ids[0])) and not redis.exists(store.quarantine_key(ids[1]))
    assert 0 < redis.ttl(store.quarantine_key(ids[4])) <= store.QUARANTINE_TTL


def test_an_expired_body_leaves_the_index(redis):
    qid = quarantine.keep(redis, b"{}", DETAILS, "10.0.0.1")
    redis.delete(store.quarantine_key(qid))
    assert quarantine.newest(redis) == [] and redis.zcard(store.QUARANTINE_INDEX) == 0
    assert quarantine.get(redis, qid) is None and quarantine.drop(redis, qid) is False


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b"[1]", "body: must be a JSON object"),
        (b"{", "body: is not valid JSON"),
        (b'{"eventType": "call.ended"}', "callId: "),
    ],
)
def test_a_replay_still_refused_keeps_the_body(redis, raw, problem):
    qid = quarantine.keep(redis, raw, DETAILS, "10.0.0.1")
    with pytest.raises(quarantine.StillInvalid) as info:
        quarantine.replay(redis, qid, Ingest(redis, 3600), lambda event: True, "US")
    assert problem in str(info.value)
    assert quarantine.get(redis, qid).body == raw


def test_a_replayed_body_is_stored_queued_and_dropped(redis, fixture_path):
    raw = (fixture_path / "call_ended_documented.json").read_bytes()
    qid = quarantine.keep(redis, raw, DETAILS, "10.0.0.1")
    done = quarantine.replay(redis, qid, Ingest(redis, 3600), lambda event: event == "call.ended", "SA")
    assert (done.accepted, done.event, done.call_id) == (True, "call.ended", json.loads(raw)["callId"])
    assert Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).count == 1
    assert quarantine.get(redis, qid) is None and redis.zcard(store.QUARANTINE_INDEX) == 0
    with pytest.raises(LookupError):
        quarantine.replay(redis, qid, Ingest(redis, 3600), lambda event: True, "SA")
