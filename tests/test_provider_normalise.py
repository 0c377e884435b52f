"""Each platform's documented body → the canonical call event (SPEC §5), and the bodies
that are no recognisable event (422 with problems by path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsync import events
from crmsync.provider_settings import ProviderSettings
from crmsync.providers.registry import PLATFORMS, without_secrets

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def body(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def normalise(platform: str, name_or_body) -> dict:
    value = body(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return PLATFORMS[platform].normalise(value, "SA", "2026-03-02T12:00:00.000Z")


def test_every_fixture_has_the_keys_of_a_hamsa_event(fixture_path):
    hamsa = events.normalise(json.loads((fixture_path / "call_ended_documented.json").read_text()), "SA")
    for path in FIXTURES.glob("*.json"):
        event = normalise(path.name.split("_")[0], path.stem)
        assert set(event) == set(hamsa), path.name
        assert set(hamsa["call"]) <= set(event["call"]), path.name
        assert event["call"]["provider"] == path.name.split("_")[0]
        assert event["raw"] == json.loads(path.read_text()), path.name


def test_retell_call_analyzed_is_the_ended_call_with_its_analysis():
    event = normalise("retell", "retell_call_analyzed")
    assert (event["call_id"], event["event"], event["event_as_sent"]) == (
        "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
        "call.ended",
        "call_analyzed",
    )
    call = event["call"]
    assert call["direction"] == "outbound"
    assert call["customer_number"] == "+966502223344"  # outbound: the number called
    assert call["agent_number"] == "+966112345678"
    assert (call["started_at"], call["ended_at"]) == ("2026-03-02T09:00:00.000Z", "2026-03-02T09:02:23.500Z")
    assert call["duration_seconds"] == 144  # duration_ms 143500
    assert (call["status"], call["channel"], call["agent_id"]) == (
        "completed",
        "phone",
        "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD",
    )
    assert event["outcome"]["budget"] == "95000"
    assert event["outcome"]["interest_level"] == "high"
    assert event["outcome"]["call_summary"].startswith("The customer wants")
    assert event["outcome"]["customer_name"] == "Khalid"  # dynamic variables echoed, as Hamsa's params are
    assert event["transcript"][:2] == [
        {"speaker": "Agent", "text": "Hello, this is Sara from Acme Realty. Is this a good time?"},
        {"speaker": "User", "text": "Yes, go ahead."},
    ]
    assert len(event["transcript"]) == 6


def test_retell_call_ended_is_recorded_not_synced_and_joins_the_same_call():
    ended = normalise("retell", "retell_call_ended")
    analyzed = normalise("retell", "retell_call_analyzed")
    assert ended["event"] == "retell.call_ended"
    assert ended["call_id"] == analyzed["call_id"]
    assert events.dedupe_key(ended) != events.dedupe_key(analyzed)
    context = events.call_context([analyzed, ended])  # whatever the arrival order
    assert context["call"]["id"] == "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6"
    assert context["outcome"]["budget"] == "95000"
    assert context["call"]["customer_number"] == "+966502223344"


def test_retell_inbound_customer_is_the_caller_and_event_type_is_accepted():
    value = body("retell_call_analyzed")
    value["event_type"] = value.pop("event")
    value["call"]["direction"] = "inbound"
    value["call"]["from_number"], value["call"]["to_number"] = "0502223344", "+966112345678"
    event = normalise("retell", value)
    assert event["event"] == "call.ended"
    assert event["call"]["customer_number"] == "+966502223344"  # national form, read in DEFAULT_REGION
    assert event["call"]["agent_number"] == "+966112345678"


@pytest.mark.parametrize(
    "reason, status",
    [
        ("dial_no_answer", "no_answer"),
        ("dial_busy", "busy"),
        ("voicemail_reached", "voicemail"),
        ("dial_failed", "failed"),
        ("user_hangup", "completed"),
    ],
)
def test_retell_status_from_disconnection_reason(reason, status):
    value = body("retell_call_analyzed")
    value["call"]["disconnection_reason"] = reason
    assert normalise("retell", value)["call"]["status"] == status


def test_vapi_end_of_call_report():
    event = normalise("vapi", "vapi_end_of_call_report")
    assert (event["call_id"], event["event"]) == ("6f1c0b8e-2f5d-4f0a-9a2b-3c4d5e6f7a8b", "call.ended")
    call = event["call"]
    assert (call["direction"], call["customer_number"], call["agent_number"]) == (
        "inbound",
        "+966503334455",
        "+966118887766",
    )
    assert (call["duration_seconds"], call["status"], call["agent_name"]) == (98, "completed", "Layla (Sales)")
    assert call["recording_url"] == "https://storage.vapi.ai/6f1c0b8e-recording.wav"
    assert event["outcome"] == {
        "summary": "The caller asked about the apartment listing; budget 70k SAR.",
        "successEvaluation": "true",
        "callback_requested": True,  # structuredOutputs by name
        "budget": "70000",
        "interest_level": "medium",
    }
    # the system prompt and tool calls are not speech
    assert event["transcript"] == [
        {"speaker": "Agent", "text": "Hello, Acme Realty, this is Layla."},
        {"speaker": "User", "text": "I am calling about the apartment listing."},
    ]


def test_vapi_text_transcript_when_no_messages_and_other_types_are_recorded():
    value = body("vapi_end_of_call_report")
    del value["message"]["artifact"]["messages"]
    value["message"]["endedReason"] = "customer-did-not-answer"
    event = normalise("vapi", value)
    assert event["transcript"] == [
        {"speaker": "Agent", "text": "Hello, Acme Realty, this is Layla."},
        {"speaker": "User", "text": "I am calling about the apartment listing."},
    ]
    assert event["call"]["status"] == "no_answer"
    assert normalise("vapi", "vapi_status_update")["event"] == "vapi.status-update"


def test_elevenlabs_post_call_transcription_unwraps_values():
    event = normalise("elevenlabs", "elevenlabs_post_call_transcription")
    assert (event["call_id"], event["event"]) == ("conv_0501k6b9x4fce9v8r3n7m2q1w0e", "call.ended")
    call = event["call"]
    assert (call["direction"], call["customer_number"], call["agent_number"]) == (
        "outbound",
        "+966504445566",
        "+966117776655",
    )
    assert (call["started_at"], call["ended_at"], call["duration_seconds"]) == (
        "2026-03-02T11:01:40.000Z",
        "2026-03-02T11:03:51.000Z",
        131,
    )
    assert event["outcome"]["budget"] == "60000"  # {"value": "60000", "rationale": …} unwrapped
    assert event["outcome"]["interest_level"] == "low"
    assert event["outcome"]["customer_name"] == "Huda"
    assert not any(key.startswith("system__") for key in event["outcome"])
    assert [t["speaker"] for t in event["transcript"]] == ["Agent", "User", "Agent", "User"]  # tool turn left out
    assert event["timestamp"] == "2026-03-02T11:05:00.000Z"


def test_elevenlabs_initiation_failure_is_a_busy_call_and_audio_is_not_kept():
    event = normalise("elevenlabs", "elevenlabs_call_initiation_failure")
    assert (event["event"], event["call"]["status"], event["call"]["customer_number"]) == (
        "call.ended",
        "busy",
        "+966505556677",
    )
    audio = {
        "type": "post_call_audio",
        "event_timestamp": 1772449600,
        "data": {"agent_id": "a", "conversation_id": "conv_x", "full_audio": "UklGRi" * 1000},
    }
    recorded = normalise("elevenlabs", audio)
    assert recorded["event"] == "elevenlabs.post_call_audio"
    assert recorded["raw"]["data"]["full_audio"] == "(audio not kept by crmsync)"


def test_bland_post_call_minutes_and_direction():
    event = normalise("bland", "bland_post_call")
    assert (event["call_id"], event["event"], event["event_as_sent"]) == (
        "9c2f5e1a-7b3d-4e8f-a1c2-d3e4f5a6b7c8",
        "call.ended",
        "post_call",
    )
    call = event["call"]
    assert call["duration_seconds"] == 141  # call_length 2.35 minutes
    assert (call["direction"], call["customer_number"], call["agent_number"]) == (
        "outbound",
        "+966506667788",
        "+966115554433",
    )
    assert event["outcome"]["budget"] == "120000"
    assert event["outcome"]["summary"].startswith("The customer has a budget")
    assert event["transcript"] == [
        {"speaker": "Agent", "text": "Hello, this is Maya from Acme Realty."},
        {"speaker": "User", "text": "Hi, yes."},
        {"speaker": "User", "text": "My budget is 120,000 a year."},
    ]
    inbound = normalise("bland", {**body("bland_post_call"), "inbound": True})
    assert (inbound["call"]["customer_number"], inbound["call"]["direction"]) == ("+966115554433", "inbound")


@pytest.mark.parametrize(
    "platform, value, details",
    [
        (
            "retell",
            {"call": {"call_id": "x"}},
            {"event": ['No event type: expected event (or event_type) such as "call_analyzed".']},
        ),
        ("retell", {"event": "call_analyzed"}, {"call": ["is missing: expected a JSON object."]}),
        (
            "retell",
            {"event": "call_analyzed", "call": {"call_id": ""}},
            {"call.call_id": ["No call id: expected call.call_id (a non-empty string)."]},
        ),
        (
            "retell",
            {"event": "call_analyzed", "call": {"call_id": ["x"]}},
            {"call.call_id": ["must be a string or a number."]},
        ),
        ("retell", {"event": "call_analyzed", "call": "x"}, {"call": ["must be a JSON object."]}),
        ("vapi", {"type": "end-of-call-report"}, {"message": ["is missing: expected a JSON object."]}),
        (
            "vapi",
            {"message": {"call": {}}},
            {
                "message.type": ['No event type: expected message.type such as "end-of-call-report".'],
                "message.call.id": ["No call id: expected message.call.id (a non-empty string)."],
            },
        ),
        (
            "vapi",
            {"message": {"type": "end-of-call-report", "call": {"id": "v"}, "artifact": []}},
            {"message.artifact": ["must be a JSON object."]},
        ),
        (
            "elevenlabs",
            {"type": "post_call_transcription", "data": {"agent_id": "a"}},
            {"data.conversation_id": ["No call id: expected data.conversation_id (a non-empty string)."]},
        ),
        (
            "elevenlabs",
            {"data": {"conversation_id": "c", "analysis": {"data_collection_results": [1]}}},
            {
                "type": ['No event type: expected type such as "post_call_transcription".'],
                "data.analysis.data_collection_results": ["must be a JSON object."],
            },
        ),
        ("bland", {"to": "+1", "call_length": 1}, {"call_id": ["No call id: expected call_id (a non-empty string)."]}),
        (
            "bland",
            {"call_id": "b"},
            {
                "body": [
                    "No post-call fields: expected the call's details (call_length, "
                    "transcripts, concatenated_transcript, …)."
                ]
            },
        ),
    ],
)
def test_unrecognisable_bodies_say_what_is_wrong_by_path(platform, value, details):
    with pytest.raises(events.InvalidEvent) as info:
        normalise(platform, value)
    assert info.value.details == details


def test_configured_secrets_are_taken_out_of_a_body_before_it_is_kept():
    settings = ProviderSettings(vapi_secrets=("s3cret-vapi-value",), retell_api_keys=("key_r_1",))
    raw = b'{"message":{"assistant":{"server":{"secret":"s3cret-vapi-value"}},"note":"key_r_1"}}'
    cleaned = without_secrets(raw, settings)
    assert json.loads(cleaned) == {"message": {"assistant": {"server": {"secret": "[redacted]"}}, "note": "[redacted]"}}
    assert without_secrets(b'{"a":1}', settings) == b'{"a":1}'


def test_a_call_is_named_by_its_platform_and_hamsa_calls_by_hamsa(fixture_path):
    hamsa = events.normalise(json.loads((fixture_path / "call_ended_documented.json").read_text()), "SA")
    assert events.call_context([hamsa])["call"]["provider"] == "hamsa"
    assert events.call_context([normalise("bland", "bland_post_call")])["call"]["provider"] == "bland"
