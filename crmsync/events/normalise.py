"""One webhook body → one canonical event (``crmsync.canonical.CanonicalEvent``, a plain dict that the
store script and RQ's JSON serializer carry).

Every field is read through the alias table (``aliases.py``), the same table the validator
(``schema.py``) checks, so a body that validates is extracted from the paths it was
validated aliases. ``dedupe_key`` says which deliveries are the same event (SPEC §5).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from crmsync import phones, times
from crmsync.canonical import CallFields, CanonicalEvent, ToolRun, Turn
from crmsync.events import aliases, schema, values

KNOWN_EVENTS = ("call.started", "call.answered", "transcription.update", "tool.executed", "call.ended")
# Event names as integrators observed them, beside the documented ones.
_EVENT_ALIASES = {
    "call_end": "call.ended",
    "call_ended": "call.ended",
    "call.end": "call.ended",
    "call_start": "call.started",
    "call_started": "call.started",
    "call.start": "call.started",
    "call_answered": "call.answered",
    "call.answer": "call.answered",
    "transcription_update": "transcription.update",
    "transcript.update": "transcription.update",
    "tool_executed": "tool.executed",
}
# Events that happen once per call: the same call id and type is the same event.
_ONCE_PER_CALL = ("call.started", "call.answered", "call.ended")


class InvalidEvent(ValueError):
    """The body is no recognisable event; ``details`` maps each path to its problems."""

    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__("The body is not a recognisable Hamsa event.")
        self.details = details


def normalise(body: dict[str, Any], default_region: str, received_at: str | None = None) -> CanonicalEvent:
    """Validate ``body`` and build its canonical event; ``InvalidEvent`` lists every problem.

    The call id is the first usable id of ``aliases.call_identity`` — never made up: a body
    without one is refused. The same body always gives the same event (``received_at`` aside).
    """
    if not isinstance(body, dict):
        raise InvalidEvent({"body": ["must be a JSON object."]})
    problems = schema.problems(body)
    identity = aliases.call_identity(body)
    if problems or identity is None:
        raise InvalidEvent(problems or {"callId": ["No call id."]})
    call_id = identity[1]
    as_sent = next(v.strip() for _, v in aliases.present(body, aliases.EVENT_TYPE) if isinstance(v, str) and v.strip())
    event = canonical_type(as_sent)
    timestamp = _time(body, aliases.TIMESTAMP)
    call = _call_fields(body, call_id, event, timestamp, default_region)
    timestamp = timestamp or call["ended_at"] or call["answered_at"] or call["started_at"]
    return {
        "call_id": call_id,
        "event": event,
        "event_as_sent": as_sent,
        "timestamp": timestamp,
        "received_at": received_at or times.now_iso(),
        "call": call,
        "transcript": _transcript(body, event),
        "outcome": values.outcome(aliases.first(body, aliases.OUTCOME)),
        "tool": _tool(body, timestamp) if event == "tool.executed" else None,
        "raw": body,
    }


def canonical_type(as_sent: str) -> str:
    """A documented event name for a known spelling (``call_end`` → ``call.ended``); others as sent."""
    name = as_sent.strip()
    lowered = name.lower()
    if lowered in KNOWN_EVENTS:
        return lowered
    return _EVENT_ALIASES.get(lowered, name)


def dedupe_key(event: CanonicalEvent) -> str:
    """Deliveries with the same key are the same event (SPEC §5).

    ``<call id>|<event>`` for once-per-call events, plus a digest of the body for the
    others. ``%`` and ``|`` inside the id and the type are escaped, so two different ids
    (or types) never give the same key.
    """
    base = f"{_escape(event['call_id'])}|{_escape(event['event'])}"
    if event["event"] in _ONCE_PER_CALL:
        return base
    digest = hashlib.sha256(_canonical_json(event["raw"])).hexdigest()
    return f"{base}|{digest[:32]}"


def _canonical_json(body: dict[str, Any]) -> bytes:
    """``body`` with sorted keys, compact: the same bytes for the same body however it was sent."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits, lone surrogates: the standard library writes them
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("|", "%7C")


def _time(body: dict[str, Any], alias: aliases.Alias) -> str | None:
    """The first value of ``alias`` that reads as a time, as ISO 8601 UTC."""
    for _, value in aliases.present(body, alias):
        iso = times.to_iso(value)
        if iso is not None:
            return iso
    return None


def _call_fields(body: dict[str, Any], call_id: str, event: str, timestamp: str | None, region: str) -> CallFields:
    direction = values.direction(aliases.first(body, aliases.DIRECTION))
    from_number = aliases.first(body, aliases.FROM_NUMBER)
    to_number = aliases.first(body, aliases.TO_NUMBER)
    outcome = values.outcome(aliases.first(body, aliases.OUTCOME)) or {}
    customer = values.first(
        aliases.first(body, aliases.CUSTOMER_NUMBER),
        from_number if direction == "inbound" else to_number if direction == "outbound" else None,
        aliases.first(body, aliases.ECHOED_NUMBER),
        *(outcome.get(k) for k in aliases.ECHOED_PHONE_KEYS if isinstance(outcome.get(k), str)),
    )
    agent = values.first(
        aliases.first(body, aliases.AGENT_NUMBER),
        to_number if direction == "inbound" else from_number if direction == "outbound" else None,
    )
    started = _time(body, aliases.STARTED_AT)
    answered = _time(body, aliases.ANSWERED_AT)
    ended = _time(body, aliases.ENDED_AT)
    if event == "call.started":
        started = started or timestamp
    elif event == "call.answered":
        answered = answered or timestamp
    elif event == "call.ended":
        ended = ended or timestamp
    status = values.status(aliases.first(body, aliases.STATUS))
    if event == "call.ended":
        status = values.ended_status(status)
    conversation = aliases.first_id(body, aliases.CONVERSATION_ID)
    return {
        "id": call_id,
        "conversation_id": conversation[1] if conversation else None,
        "agent_id": values.text(aliases.first(body, aliases.AGENT_ID)),
        "agent_name": values.text(aliases.first(body, aliases.AGENT_NAME)),
        "project_id": values.text(aliases.first(body, aliases.PROJECT_ID)),
        "direction": direction,
        "customer_number": phones.normalise(values.text(customer), region),
        "agent_number": phones.normalise(values.text(agent), region),
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "duration_seconds": values.seconds(aliases.first(body, aliases.DURATION)),
        "status": status,
        "recording_url": values.text(aliases.first(body, aliases.RECORDING_URL)),
        "channel": values.text(aliases.first(body, aliases.CHANNEL)),
    }


def _transcript(body: dict[str, Any], event: str) -> list[Turn] | None:
    """The full transcript; a ``transcription.update`` without one is one turn: its content."""
    full = values.transcript(aliases.first(body, aliases.TRANSCRIPT))
    if event != "transcription.update" or full:
        return full
    one = values.turn(aliases.content_of(body))
    return [one] if one else None


def _tool(body: dict[str, Any], timestamp: str | None) -> ToolRun:
    return {
        "name": values.text(aliases.first(body, aliases.TOOL_NAME)),
        "input": values.maybe_json(aliases.first(body, aliases.TOOL_INPUT)),
        "output": values.maybe_json(aliases.first(body, aliases.TOOL_OUTPUT)),
        "duration_ms": aliases.first(body, aliases.TOOL_DURATION),
        "at": timestamp,
    }
