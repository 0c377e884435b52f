"""ElevenLabs Agents: ``ElevenLabs-Signature`` and the ``{type, event_timestamp, data}`` body.

Signature: ``ElevenLabs-Signature: t=<epoch s>,v0=<hex>`` where
``v0 = HMAC-SHA256(secret, "<t>.<raw body>")``; refused when ``t`` is more than 30 minutes
from now (the window is not documented; 30 minutes is what integrators use).

Events: ``post_call_transcription`` is the event that syncs, as ``call.ended``, with each
``data_collection_results`` entry unwrapped to its ``value``; ``call_initiation_failure`` (a
call that never connected) is ``call.ended`` too, with the failure as its status;
``post_call_audio`` is recorded as ``elevenlabs.post_call_audio`` without its audio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.canonical import CanonicalEvent
from crmsync.providers import canonical as c
from crmsync.providers.signing import SignatureRefused, check_age, epoch_seconds, hex_hmac_matches, stamped_signatures

NAME = "elevenlabs"
TITLE = "ElevenLabs"
SETTING = "ELEVENLABS_WEBHOOK_SECRET"
HEADER = "ElevenLabs-Signature"
TOLERANCE = 30 * 60  # seconds
_FORM = "t=<timestamp>,v0=<hex signature>"
_EVENTS = {"post_call_transcription": "call.ended", "call_initiation_failure": "call.ended"}
_FAILURES = {"busy": "busy", "no-answer": "no_answer", "no_answer": "no_answer"}
AUDIO_DROPPED = "(audio not kept by crmsync)"


def verify(headers: Mapping[str, str], raw: bytes, secrets: Sequence[str], now: float | None = None) -> None:
    """Raise ``SignatureRefused`` unless one of ``secrets`` signed ``raw``."""
    stamp, given = stamped_signatures(headers, HEADER, _FORM, "t", "v0")
    check_age(epoch_seconds(stamp, HEADER, _FORM), TOLERANCE, HEADER, now)
    if not hex_hmac_matches(given, secrets, stamp.encode() + b"." + raw):
        raise SignatureRefused(f"The {HEADER} signature does not match: set {SETTING} to the webhook's secret.")


def normalise(body: dict[str, Any], region: str, received_at: str | None = None) -> CanonicalEvent:
    """An ElevenLabs post-call webhook → the canonical event; ``InvalidEvent`` lists every problem."""
    problems = c.Problems()
    as_sent = c.text(body.get("type"))
    if as_sent is None:
        problems.add("type", 'No event type: expected type such as "post_call_transcription".')
    data = c.obj(body, "data", problems, required=True)
    call_id = (
        c.identifier(body, "data.conversation_id", problems, "data.conversation_id")
        if isinstance(body.get("data"), dict)
        else ""
    )
    metadata = c.obj(body, "data.metadata", problems)
    analysis = c.obj(body, "data.analysis", problems)
    results = c.obj(body, "data.analysis.data_collection_results", problems)
    problems.raise_if_any()
    event = _EVENTS.get(str(as_sent), f"{NAME}.{as_sent}")
    phone: dict[str, Any] = metadata["phone_call"] if isinstance(metadata.get("phone_call"), dict) else {}
    found = c.get(data, "conversation_initiation_client_data.dynamic_variables")
    variables: dict[str, Any] = found if isinstance(found, dict) else {}
    failure = as_sent == "call_initiation_failure"  # a call ElevenLabs could not place: always outbound
    direction = "outbound" if failure else c.direction(phone.get("direction"))
    customer, agent = c.parties(direction, variables.get("system__caller_id"), variables.get("system__called_number"))
    started = c.epoch_iso(metadata.get("start_time_unix_secs"))
    duration = c.seconds(metadata.get("call_duration_secs"))
    fields = {
        "agent_id": c.text(data.get("agent_id")),
        "agent_name": c.text(data.get("agent_name")),
        "direction": direction,
        "customer_number": c.first(phone.get("external_number"), customer, _failed_number(data)),
        "agent_number": c.first(phone.get("agent_number"), agent),
        "started_at": started,
        "ended_at": c.plus_seconds(started, duration),
        "duration_seconds": duration,
        "status": _status(as_sent, data),
        "channel": "phone" if phone or failure else "web" if data.get("transcript") else None,
    }
    outcome = c.merged(
        {key: value for key, value in variables.items() if not str(key).startswith("system__")},
        {key: analysis[key] for key in ("transcript_summary", "call_successful") if analysis.get(key) is not None},
        {str(key): item.get("value") if isinstance(item, dict) else item for key, item in results.items()},
    )
    return c.canonical_event(
        provider=NAME,
        call_id=call_id,
        event=event,
        as_sent=str(as_sent),
        timestamp=c.epoch_iso(body.get("event_timestamp")),
        call=fields,
        transcript=c.turns(data.get("transcript"), "role", "message"),
        outcome=outcome,
        raw=_without_audio(body),
        region=region,
        received_at=received_at,
    )


def _status(as_sent: str | None, data: dict[str, Any]) -> str | None:
    if as_sent == "call_initiation_failure":
        return _FAILURES.get(str(data.get("failure_reason") or "").lower(), "failed")
    status = str(data.get("status") or "").lower()
    if status == "failed":
        return "failed"
    if as_sent == "post_call_transcription":
        return "completed"
    return c.text(status)


def _failed_number(data: dict[str, Any]) -> Any:
    """The number an initiation failure was dialling, from the telephony provider's own body."""
    body = c.get(data, "metadata.body")
    if not isinstance(body, dict):
        return None
    return c.first(body.get("To"), body.get("to_number"), body.get("to"))


def _without_audio(body: dict[str, Any]) -> dict[str, Any]:
    """The body as kept: ``post_call_audio``'s base64 audio (megabytes) is not stored."""
    data = body.get("data")
    if not isinstance(data, dict) or "full_audio" not in data:
        return body
    return {**body, "data": {**data, "full_audio": AUDIO_DROPPED}}
