"""One webhook body → one canonical event (a plain dict that RQ's JSON serializer and
Redis can carry).

    {"call_id", "event", "event_as_sent", "timestamp", "received_at",
     "call": {…the SPEC §5 call fields this event tells…},
     "transcript": [{"speaker", "text"}] | None, "outcome": {…} | None,
     "tool": {"name", "input", "output", "duration_ms", "at"} | None,
     "raw": <the body as received>}
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from crmsync import phones
from crmsync.events.schema import content_of, envelope_errors

KNOWN_EVENTS = ("call.started", "call.answered", "transcription.update", "tool.executed", "call.ended")
# Event names as integrators observed them, beside the documented ones.
_ALIASES = {
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
_STATUSES = {
    "completed": "completed",
    "complete": "completed",
    "ended": "completed",
    "no_answer": "no_answer",
    "no-answer": "no_answer",
    "noanswer": "no_answer",
    "missed": "no_answer",
    "busy": "busy",
    "failed": "failed",
    "error": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "forwarded": "forwarded",
    "in_progress": "in_progress",
    "pending": "pending",
    "voicemail": "voicemail",
}
# Where Hamsa and integrators put the customer's number, most specific first.
_CUSTOMER_KEYS = ("userNumber", "user_number", "customerNumber", "customer_number", "callerNumber")
_AGENT_KEYS = ("machineNumber", "agentNumber", "agent_number", "machine_number")
_ECHOED_PHONE_KEYS = ("phone", "phone_number", "phoneNumber", "customer_phone", "mobile", "user_number", "userNumber")


class InvalidEvent(ValueError):
    """The body is no recognisable event; ``details`` maps each path to its problems."""

    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__("The body is not a recognisable Hamsa event.")
        self.details = details


def normalise(body: dict[str, Any], default_region: str, received_at: str | None = None) -> dict[str, Any]:
    """Validate ``body`` and build its canonical event; ``InvalidEvent`` lists every problem."""
    if not isinstance(body, dict):
        raise InvalidEvent({"body": ["must be a JSON object."]})
    envelope, problems = envelope_errors(body)
    if problems:
        raise InvalidEvent(problems)
    _, content = content_of(body)
    caller = envelope.get("caller_info") or {}
    as_sent = str(envelope.get("eventType") or envelope.get("event_type")).strip()
    event = canonical_type(as_sent)
    call_id = str(
        envelope.get("callId")
        or envelope.get("call_id")
        or caller.get("call_id")
        or content.get("conversationId")
        or caller.get("conversationId")
    )
    timestamp = to_iso(envelope.get("timestamp")) or to_iso(_get(body, "data", "timestamp"))
    call = _call_fields(envelope, content, caller, event, timestamp, default_region)
    call["id"] = call_id
    timestamp = timestamp or call["ended_at"] or call["answered_at"] or call["started_at"]
    return {
        "call_id": call_id,
        "event": event,
        "event_as_sent": as_sent,
        "timestamp": timestamp,
        "received_at": received_at or now_iso(),
        "call": call,
        "transcript": _transcript(content) if event != "transcription.update" else _one_turn(content),
        "outcome": _outcome(content.get("outcomeResult")),
        "tool": _tool(content, timestamp) if event == "tool.executed" else None,
        "raw": body,
    }


def canonical_type(as_sent: str) -> str:
    name = as_sent.strip()
    lowered = name.lower()
    if lowered in KNOWN_EVENTS:
        return lowered
    return _ALIASES.get(lowered, name)


def dedupe_key(event: dict[str, Any]) -> str:
    """Deliveries with the same key are the same event (SPEC §5)."""
    base = f"{event['call_id']}|{event['event']}"
    if event["event"] in _ONCE_PER_CALL:
        return base
    digest = hashlib.sha256(json.dumps(event["raw"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{base}|{digest[:32]}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_iso(value: Any) -> str | None:
    """ISO 8601 strings, epoch seconds and epoch milliseconds → ISO 8601 UTC (``…Z``)."""
    if value is None or isinstance(value, bool):
        return None
    moment: datetime | None = None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds: seconds would be after the year 5000
            number /= 1000
        try:
            moment = datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _get(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _first(*values: Any) -> Any:
    for value in values:
        if value not in (None, "", [], {}):
            return value
    return None


def _call_fields(
    envelope: dict[str, Any],
    content: dict[str, Any],
    caller: dict[str, Any],
    event: str,
    timestamp: str | None,
    region: str,
) -> dict[str, Any]:
    params: dict[str, Any] = content["callParams"] if isinstance(content.get("callParams"), dict) else {}
    echoed: dict[str, Any] = content["params"] if isinstance(content.get("params"), dict) else {}
    outcome = _outcome(content.get("outcomeResult")) or {}
    direction = _direction(_first(content.get("direction"), params.get("direction"), caller.get("direction")))
    from_number = _first(content.get("from"), content.get("fromNumber"), content.get("from_number"))
    to_number = _first(content.get("to"), content.get("toNumber"), content.get("to_number"))
    customer = _first(
        *(params.get(k) for k in _CUSTOMER_KEYS),
        *(content.get(k) for k in _CUSTOMER_KEYS),
        *(caller.get(k) for k in _CUSTOMER_KEYS),
        from_number if direction == "inbound" else to_number if direction == "outbound" else None,
        *(echoed.get(k) for k in _ECHOED_PHONE_KEYS),
        *(outcome.get(k) for k in _ECHOED_PHONE_KEYS if isinstance(outcome.get(k), str)),
    )
    agent = _first(
        *(params.get(k) for k in _AGENT_KEYS),
        *(content.get(k) for k in _AGENT_KEYS),
        to_number if direction == "inbound" else from_number if direction == "outbound" else None,
    )
    started = to_iso(_first(content.get("callStartedAt"), content.get("startedAt"), caller.get("call_start_time")))
    ended = to_iso(_first(content.get("callEndedAt"), content.get("endedAt")))
    answered = to_iso(_first(content.get("callAnsweredAt"), content.get("answeredAt")))
    if event == "call.started":
        started = started or timestamp
    elif event == "call.answered":
        answered = answered or timestamp
    elif event == "call.ended":
        ended = ended or timestamp
    status = _status(_first(content.get("status"), content.get("callStatus"), content.get("endReason")))
    if event == "call.ended" and status is None:
        status = "completed"
    return {
        "id": None,  # the call id, set by normalise()
        "conversation_id": _str(_first(content.get("conversationId"), caller.get("conversationId"))),
        "agent_id": _str(_first(envelope.get("agentId"), caller.get("agent_id"), content.get("agentId"))),
        "agent_name": _str(_first(envelope.get("agentName"), content.get("agentName"))),
        "project_id": _str(_first(envelope.get("projectId"), content.get("projectId"))),
        "direction": direction,
        "customer_number": phones.normalise(_str(customer), region),
        "agent_number": phones.normalise(_str(agent), region),
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "duration_seconds": _seconds(_first(content.get("callDuration"), content.get("duration"))),
        "status": status,
        "recording_url": _str(_first(content.get("conversationRecording"), content.get("recordingUrl"),
                                     content.get("mediaUrl"))),
        "channel": _str(_first(content.get("channelType"), content.get("channel"))),
    }


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _direction(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    return text if text in ("inbound", "outbound") else None


def _status(value: Any) -> str | None:
    text = str(value or "").strip().lower().replace(" ", "_")
    return _STATUSES.get(text, text or None)


def _seconds(value: Any) -> int | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return round(seconds) if seconds >= 0 else None


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _outcome(value: Any) -> dict[str, Any] | None:
    value = _maybe_json(value)
    return value if isinstance(value, dict) else None


def _turn(item: Any) -> dict[str, str] | None:
    if not isinstance(item, dict):
        return {"speaker": "", "text": str(item)} if item not in (None, "") else None
    speaker = _first(item.get("speaker"), item.get("role"), item.get("name"))
    text = _first(item.get("text"), item.get("message"), item.get("content"))
    if speaker is not None or text is not None:
        return {"speaker": str(speaker or ""), "text": str(text or "")}
    if len(item) == 1:  # Hamsa's documented form: {"Agent": "Hello"}
        (speaker, text), = item.items()
        return {"speaker": str(speaker), "text": "" if text is None else str(text)}
    return None


def _transcript(content: dict[str, Any]) -> list[dict[str, str]] | None:
    value = _maybe_json(_first(content.get("transcription"), content.get("transcript")))
    if value is None:
        return None
    if isinstance(value, str):
        turns = []
        for line in value.splitlines():
            speaker, sep, text = line.partition(":")
            turns.append({"speaker": speaker.strip(), "text": text.strip()} if sep else {"speaker": "", "text": line})
        return turns
    if isinstance(value, list):
        return [turn for turn in map(_turn, value) if turn]
    return None


def _one_turn(content: dict[str, Any]) -> list[dict[str, str]] | None:
    full = _transcript(content)
    if full:
        return full
    turn = _turn(content)
    return [turn] if turn else None


def _tool(content: dict[str, Any], timestamp: str | None) -> dict[str, Any]:
    return {
        "name": _str(_first(content.get("toolName"), content.get("tool_name"), content.get("name"),
                            content.get("tool"))),
        "input": _maybe_json(_first(content.get("input"), content.get("arguments"), content.get("params"))),
        "output": _maybe_json(_first(content.get("output"), content.get("result"))),
        "duration_ms": _first(content.get("durationMs"), content.get("duration_ms"), content.get("duration")),
        "at": timestamp,
    }
