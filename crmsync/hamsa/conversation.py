"""A call from Hamsa's history → the canonical ``call.ended`` event a webhook would give.

The conversation answer is re-shaped into the documented webhook body (``data.data.*``)
and handed to ``crmsync.events.normalise``, so a reconciled call is the same kind of event
as a delivered one: its call id is Hamsa's conversation id, ``source`` says how it came
(``reconcile`` or ``backfill``), and ``unavailable`` names what Hamsa's answer did not hold
(``outcome``, ``transcript``, ``customer_number``). Hamsa does not document where the
conversation keeps the ``outcomeResult``: it is read from ``callAnalysis.outcomeResult``,
``outcomeResult`` or ``jobResponse.outcomeResult``, else a non-empty ``callAnalysis``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync import events, times
from crmsync.canonical import CanonicalEvent
from crmsync.events import values

RUNNING = ("PENDING", "IN_PROGRESS")  # Hamsa's statuses of a call not over yet: never taken by a sweep


def canonical_status(listed: dict[str, Any]) -> str:
    """A listed call's canonical status, read through the one status table
    (``crmsync.events.values.STATUSES``); an ended call's unknown status is ``completed``."""
    return values.ended_status(listed.get("status"))


def ended_at(listed: dict[str, Any]) -> datetime | None:
    """``createdAt`` + the duration (SPEC §5: when the call has ended), or None."""
    created = created_at(listed)
    if created is None:
        return None
    try:
        seconds = float(listed.get("duration") or listed.get("callDuration") or 0)
    except (TypeError, ValueError):
        seconds = 0.0
    return created + timedelta(seconds=max(seconds, 0.0))


def created_at(listed: dict[str, Any]) -> datetime | None:
    return times.parse(listed.get("createdAt"))


def reconciled_event(
    conversation: dict[str, Any], listed: dict[str, Any], *, source: str, region: str
) -> CanonicalEvent:
    """The canonical event for one call of Hamsa's history (``listed`` is its list entry,
    ``conversation`` the ``data`` of ``GET /v1/voice-agents/conversation/{id}``)."""
    merged = {**listed, **{k: v for k, v in conversation.items() if v not in (None, "", [], {})}}
    call_id = str(listed.get("id") or conversation.get("id"))
    ended = ended_at(merged)
    ended_iso = times.iso(ended) if ended else None
    outcome = _outcome(conversation)
    transcript = _transcript(conversation)
    params: dict[str, Any] = merged["callParams"] if isinstance(merged.get("callParams"), dict) else {}
    content: dict[str, Any] = {
        "conversationId": call_id,
        "conversationRecording": merged.get("mediaUrl"),
        "callParams": params,
        "callDuration": merged.get("callDuration", merged.get("duration")),
        "callStartedAt": merged.get("createdAt"),
        "callEndedAt": ended_iso,
        "status": canonical_status(merged),
        "channelType": merged.get("channelType"),
        "direction": merged.get("direction") or params.get("direction"),
        "transcription": transcript,
        "outcomeResult": outcome,
    }
    body = {
        "eventType": "call.ended",
        "callId": call_id,
        "timestamp": ended_iso,
        "agentId": merged.get("voiceAgentId") or merged.get("agentId"),
        "agentName": merged.get("agentName"),
        "projectId": merged.get("projectId"),
        "data": {"timestamp": ended_iso, "data": {k: v for k, v in content.items() if v is not None}},
    }
    event = events.normalise(body, region)
    event["call"]["source"] = source
    event["source"] = source
    event["unavailable"] = [
        name
        for name, missing in (
            ("outcome", outcome is None),
            ("transcript", not transcript),
            ("customer_number", not event["call"].get("customer_number")),
        )
        if missing
    ]
    event["raw"] = {"source": source, "conversation": conversation, "listed": listed}
    return event


def dedupe_key(call_id: str) -> str:
    """The duplicate marker of a reconciled call: its own, so that a webhook arriving later
    (with the outcome the conversation may lack) is still recorded for the same call."""
    return f"{call_id}|call.ended|reconciled"


def _outcome(conversation: dict[str, Any]) -> dict[str, Any] | None:
    analysis: dict[str, Any] = (
        conversation["callAnalysis"] if isinstance(conversation.get("callAnalysis"), dict) else {}
    )
    job: dict[str, Any] = conversation["jobResponse"] if isinstance(conversation.get("jobResponse"), dict) else {}
    for candidate in (
        analysis.get("outcomeResult"),
        analysis.get("outcome_result"),
        conversation.get("outcomeResult"),
        job.get("outcomeResult"),
    ):
        value = _as_dict(candidate)
        if value:
            return value
    return analysis or None


def _as_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) and value else None


def _transcript(conversation: dict[str, Any]) -> list[dict[str, str]]:
    """Turns as ``[{"Speaker": "text"}]`` (the webhook's form), from ``transcription`` /
    ``transcript`` when present, else from the ``logs`` entries that carry a speaker and text."""
    for key in ("transcription", "transcript"):
        value = conversation.get(key)
        if isinstance(value, list) and value:
            return value
    turns: list[dict[str, str]] = []
    for entry in conversation.get("logs") or []:
        payload = entry.get("payload") if isinstance(entry, dict) else None
        if isinstance(payload, str):
            payload = _as_dict(payload)
        if not isinstance(payload, dict):
            continue
        speaker = payload.get("speaker") or payload.get("role")
        text = payload.get("text") or payload.get("message") or payload.get("content")
        if speaker and isinstance(text, str) and text:
            turns.append({str(speaker).capitalize(): text})
    return turns


def now_utc() -> datetime:
    return datetime.now(UTC)
