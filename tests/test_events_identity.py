"""SPEC §5 "Identity": a call id is taken from the body, never made up, and two calls never
share one. Through the real Flask app with a real Redis where the answer matters."""

from __future__ import annotations

import copy
import json

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.events import InvalidEvent, dedupe_key, normalise
from crmsync.settings import Settings
from crmsync.web import create_app

TOKEN = "sk_live_identity_tests_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NO_ID = ["None", "", "null"]


@pytest.fixture
def client(redis, redis_url):
    settings = Settings.from_env({"REDIS_URL": redis_url, "WEBHOOK_TOKENS": TOKEN})
    return create_app(settings, redis).test_client()


def integrator_body(conversation_id: str, said: str) -> dict:
    """The shape of issue 9: the call id only at data.conversationId, the content at data.data."""
    return {
        "eventType": "call.ended",
        "timestamp": "2026-03-02T09:14:52.318Z",
        "data": {
            "conversationId": conversation_id,
            "data": {
                "transcription": [{"Agent": "Hello, is this a good time?"}, {"User": said}],
                "outcomeResult": {"interest_level": "high"},
                "callDuration": 61,
            },
        },
    }


def test_two_calls_with_their_id_only_at_data_conversation_id_stay_two_calls(client, redis):
    first = client.post("/webhooks/hamsa", json=integrator_body("conv-0001", "Yes."), headers=AUTH)
    second = client.post("/webhooks/hamsa", json=integrator_body("conv-0002", "No."), headers=AUTH)
    assert first.status_code == second.status_code == 200
    assert first.json == {"status": "accepted", "call_id": "conv-0001", "event": "call.ended"}
    assert second.json == {"status": "accepted", "call_id": "conv-0002", "event": "call.ended"}
    jobs = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).jobs
    assert sorted(job.args[0] for job in jobs) == ["conv-0001", "conv-0002"]
    [one] = store.load_events(redis, "conv-0001")
    [two] = store.load_events(redis, "conv-0002")
    assert one["call"]["conversation_id"] == "conv-0001" and one["transcript"][1]["text"] == "Yes."
    assert two["transcript"][1]["text"] == "No."
    assert one["call"]["duration_seconds"] == 61
    for made_up in NO_ID:
        assert store.load_events(redis, made_up) == []
    again = client.post("/webhooks/hamsa", json=integrator_body("conv-0002", "No."), headers=AUTH)
    assert again.json["status"] == "duplicate"  # the same call delivered twice is still one call


@pytest.mark.parametrize(
    "path",
    [
        "callId",
        "call_id",
        "caller_info.call_id",
        "data.data.conversationId",
        "data.conversationId",
        "caller_info.conversationId",
    ],
)
@pytest.mark.parametrize(
    "value, shown",
    [
        (None, "null"),
        ("", "empty text"),
        ("  ", "empty text"),
        ("null", '"null"'),
        ("None", '"None"'),
        ({"id": "c1"}, None),
        (["c1"], None),
        (True, None),
    ],
)
def test_a_body_whose_only_id_is_unusable_is_422_naming_the_path_and_kept(client, redis, path, value, shown):
    body: dict = {"eventType": "call.ended", "data": {"data": {"transcription": "Agent: hello"}}}
    node = body
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    raw = json.dumps(body).encode()
    answer = client.post("/webhooks/hamsa", data=raw, headers=AUTH)
    assert answer.status_code == 422
    details = answer.json["details"]
    assert path in details, details
    message = details[path][0]
    if shown is not None:
        assert message == f"{shown} is not a call id: a call id is a non-empty string or integer."
    else:
        assert message == "must be a string or an integer."
    assert "No call id" in details["callId"][-1] and path in details["callId"][-1]
    kept = redis.hgetall(store.quarantine_key(answer.json["quarantine_id"]))
    assert kept[b"body"] == raw and json.loads(kept[b"details"]) == details
    assert redis.keys("crmsync:call:*") == [] and redis.keys("crmsync:seen:*") == []


def test_call_id_and_conversation_id_are_both_kept():
    event = normalise(
        {"eventType": "call.ended", "callId": "call-9", "data": {"data": {"conversationId": "conv-9"}}}, "US"
    )
    assert event["call_id"] == event["call"]["id"] == "call-9"
    assert event["call"]["conversation_id"] == "conv-9"
    flat = normalise({"event_type": "call_end", "caller_info": {"call_id": 42, "conversationId": 7}}, "US")
    assert (flat["call_id"], flat["call"]["conversation_id"]) == ("42", "7")


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"eventType": "call.ended", "callId": 1234567890123456789012}, "1234567890123456789012"),
        ({"eventType": "call.ended", "callId": "  c-1 "}, "c-1"),
        ({"eventType": "call.ended", "callId": "", "caller_info": {"call_id": "c-2"}}, "c-2"),
        ({"eventType": "call.ended", "callId": None, "call_id": "c-3"}, "c-3"),
        ({"eventType": "call.ended", "callId": "null", "data": {"conversationId": "conv-4"}}, "conv-4"),
        (
            {"eventType": "call.ended", "data": {"data": {"conversationId": "conv-5"}, "conversationId": "conv-x"}},
            "conv-5",
        ),
        ({"eventType": "call.ended", "data": {"data": "not an object", "conversationId": "conv-6"}}, "conv-6"),
        ({"eventType": "call.ended", "caller_info": {"conversationId": "conv-7"}}, "conv-7"),
    ],
)
def test_the_call_id_is_the_first_usable_id_in_the_body(body, expected):
    assert normalise(body, "US")["call_id"] == expected


def test_a_wrong_type_at_any_id_path_is_refused_even_beside_a_good_id():
    with pytest.raises(InvalidEvent) as info:
        normalise({"eventType": "call.ended", "callId": "c-1", "data": {"conversationId": {"x": 1}}}, "US")
    assert info.value.details == {"data.conversationId": ["must be a string or an integer."]}


@pytest.mark.parametrize(
    "one, other",
    [
        ("a|call.ended", "a"),  # the separator inside an id cannot make two ids meet
        ("a%7Cb", "a|b"),
        ("conv-1", "conv-2"),
        ("1", "01"),
    ],
)
def test_distinct_ids_never_share_a_dedupe_key(one, other):
    keys = set()
    for call_id, event in ((one, "x"), (other, "call.ended|x"), (one, "call.ended"), (other, "call.ended")):
        keys.add(dedupe_key(normalise({"eventType": event, "callId": call_id}, "US")))
    assert len(keys) == 4


def test_the_same_body_gives_the_same_event_and_key(fixture_path):
    for path in sorted(fixture_path.glob("*.json")):
        body = json.loads(path.read_text())
        first = normalise(body, "US", received_at="2026-03-02T10:00:00.000Z")
        again = normalise(copy.deepcopy(body), "US", received_at="2026-03-02T10:00:00.000Z")
        assert first == again and dedupe_key(first) == dedupe_key(again), path.name


@pytest.mark.parametrize("depth, status", [(64, 200), (65, 422), (900, 422), (995, 400), (100_000, 400)])
def test_deep_nesting_is_answered_never_500(client, redis, depth, status):
    opened, closed = "[" * (depth - 3), "]" * (depth - 3)  # with the three objects: depth levels
    raw = '{"eventType": "call.ended", "callId": "c-deep", "data": {"data": {"outcomeResult": ' + opened + "1" + closed
    raw += "}}}"
    answer = client.post("/webhooks/hamsa", data=raw, headers=AUTH)
    assert answer.status_code == status
    if status == 422:
        assert answer.json["details"] == {"body": ["is nested deeper than 64 levels; no Hamsa event is."]}
        assert redis.hget(store.quarantine_key(answer.json["quarantine_id"]), "body") == raw.encode()
    if status == 400:
        assert answer.json["error"] == "invalid_json"


@pytest.mark.parametrize(
    "raw, status, path",
    [
        (rb'{"eventType": "call.ended", "callId": "c-\ud800"}', 422, "callId"),  # a lone surrogate: no Unicode
        (rb'{"eventType": "call.ended\udc00", "callId": "c-1"}', 422, "eventType"),
        (
            rb'{"eventType": "call.ended", "callId": "c-2", "data": {"data": {"transcription": "Agent: \ud800 hi"}}}',
            200,
            None,
        ),
    ],
)
def test_text_that_is_no_unicode_is_answered_never_500(client, redis, raw, status, path):
    answer = client.post("/webhooks/hamsa", data=raw, headers=AUTH)
    assert answer.status_code == status
    if path:
        assert path in answer.json["details"]
        assert redis.hget(store.quarantine_key(answer.json["quarantine_id"]), "body") == raw
    else:
        [event] = store.load_events(redis, "c-2")
        assert event["transcript"][0]["text"] == "\ud800 hi"  # kept as sent


def test_integers_beyond_64_bits_are_kept_exactly(client, redis):
    big = 123456789012345678901234567890
    body = {"eventType": "call.ended", "callId": big, "data": {"data": {"outcomeResult": {"account": big}}}}
    answer = client.post("/webhooks/hamsa", json=body, headers=AUTH)
    assert answer.json["call_id"] == str(big)
    [event] = store.load_events(redis, str(big))
    assert event["outcome"] == {"account": big} and event["raw"] == body
