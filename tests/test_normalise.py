"""Every payload shape Hamsa documents or integrators observed → the canonical event."""

import json

import pytest

from crmsync.events import InvalidEvent, call_context, dedupe_key, normalise

CALL = "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"


def load(fixture_path, name):
    return json.loads((fixture_path / name).read_text())


@pytest.mark.parametrize(
    "name, region, expected",
    [
        (
            "call_ended_documented.json",
            "US",
            {
                "call_id": CALL,
                "event": "call.ended",
                "timestamp": "2026-03-02T09:14:52.318Z",
                "call.customer_number": "+966501234567",
                "call.duration_seconds": 187,
                "call.status": "completed",
                "call.conversation_id": "5d0b6a3e-8c8f-4a55-b2f4-9f1e3c7a2b10",
                "call.agent_name": "Noura (Sales)",
                "call.project_id": "proj_41c2",
                "call.recording_url": "https://recordings.example.com/5d0b6a3e.mp3",
                "call.ended_at": "2026-03-02T09:14:52.318Z",
                "outcome.budget": "80000",
                "outcome.callback_requested": "true",
                "transcript.0": {
                    "speaker": "Agent",
                    "text": "Hello, this is Noura from Acme Realty. Is this a good time?",
                },
                "transcript.1": {"speaker": "User", "text": "Yes, go ahead."},
            },
        ),
        (
            "call_ended_flat.json",
            "SA",
            {
                "call_id": "c2a41f0e-77b9-4f3c-a1d8-0b6e9e4c5d21",
                "event": "call.ended",
                "event_as_sent": "call_end",
                "call.started_at": "2026-03-02T09:11:52.000Z",
                "call.ended_at": "2026-03-02T09:13:21.000Z",
                "call.customer_number": "+966551234567",
                "call.agent_id": "agent-9b21-sales",
                "call.conversation_id": "8e2f1c94-3b7a-4d06-9e55-7a1b2c3d4e5f",
                "outcome.nps": None,
                "outcome.objections": '["price", "timing"]',
                "transcript.3": {"speaker": "User", "text": "Not now, maybe next month."},
            },
        ),
        (
            "call_started.json",
            "US",
            {
                "event": "call.started",
                "call.direction": "outbound",
                "call.customer_number": "+966501234567",
                "call.started_at": "2026-03-02T09:11:45.002Z",
                "call.ended_at": None,
            },
        ),
        ("call_answered.json", "US", {"event": "call.answered", "call.answered_at": "2026-03-02T09:11:49.870Z"}),
        (
            "transcription_update.json",
            "US",
            {
                "event": "transcription.update",
                "transcript": [{"speaker": "User", "text": "Yes, go ahead."}],
            },
        ),
        (
            "tool_executed.json",
            "US",
            {
                "event": "tool.executed",
                "tool.name": "check_availability",
                "tool.output": {"available": 14},
                "tool.duration_ms": 412,
                "tool.at": "2026-03-02T09:13:10.112Z",
            },
        ),
    ],
)
def test_fixture_normalises(fixture_path, name, region, expected):
    body = load(fixture_path, name)
    event = normalise(body, region)
    assert event["raw"] == body  # the raw body travels with the event
    for path, value in expected.items():
        node = event
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert node == value, path


def test_the_whole_call_is_rebuilt_from_its_events(fixture_path):
    names = [
        "call_started.json",
        "call_answered.json",
        "transcription_update.json",
        "tool_executed.json",
        "call_ended_documented.json",
    ]
    context = call_context([normalise(load(fixture_path, n), "US") for n in reversed(names)])
    call = context["call"]
    assert call["direction"] == "outbound"
    assert call["started_at"] == "2026-03-02T09:11:45.002Z"
    assert call["answered_at"] == "2026-03-02T09:11:49.870Z"
    assert call["event"] == "call.ended"
    assert context["tools"][0]["name"] == "check_availability"
    assert context["transcript_text"].splitlines()[1] == "User: Yes, go ahead."
    assert len(context["transcript"]) == 6  # the full transcript of call.ended, not the one update


def test_duration_from_start_and_end_when_not_sent(fixture_path):
    context = call_context([normalise(load(fixture_path, "call_ended_flat.json"), "SA")])
    assert context["call"]["duration_seconds"] == 89


@pytest.mark.parametrize(
    "body, paths",
    [
        ({}, {"eventType", "callId"}),
        ({"eventType": "call.ended"}, {"callId"}),
        ({"callId": "c1"}, {"eventType"}),
        ({"eventType": "call.ended", "callId": {"x": 1}}, {"callId"}),
        ({"eventType": "call.ended", "callId": "c1", "data": "text"}, {"data"}),
        ({"event_type": "call_end", "caller_info": "c1"}, {"caller_info", "callId"}),
        ({"eventType": "call.ended", "callId": "c1", "data": {"data": {"callParams": [1]}}}, {"data.data.callParams"}),
    ],
)
def test_invalid_bodies_list_every_problem(body, paths):
    with pytest.raises(InvalidEvent) as info:
        normalise(body, "US")
    assert set(info.value.details) == paths
    assert all(isinstance(m, str) and m for msgs in info.value.details.values() for m in msgs)


def test_unknown_event_types_are_kept():
    event = normalise({"eventType": "call.analyzed", "callId": "c1", "data": {}}, "US")
    assert event["event"] == "call.analyzed"


def test_dedupe_keys(fixture_path):
    ended = normalise(load(fixture_path, "call_ended_documented.json"), "US")
    again = normalise(load(fixture_path, "call_ended_documented.json") | {"timestamp": "2026-03-02T09:15:00Z"}, "US")
    assert dedupe_key(ended) == dedupe_key(again)  # same call, same once-per-call type
    update = load(fixture_path, "transcription_update.json")
    other = json.loads(json.dumps(update))
    other["data"]["text"] = "Something else."
    assert dedupe_key(normalise(update, "US")) == dedupe_key(normalise(json.loads(json.dumps(update)), "US"))
    assert dedupe_key(normalise(update, "US")) != dedupe_key(normalise(other, "US"))
