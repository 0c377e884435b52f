"""The events recorded for one call → the canonical call that mappings see (SPEC §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

CALL_FIELDS = (
    "id", "conversation_id", "event", "agent_id", "agent_name", "project_id", "direction",
    "customer_number", "agent_number", "started_at", "answered_at", "ended_at", "duration_seconds",
    "status", "recording_url", "channel",
)


def call_context(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge a call's events, oldest first; a later event's non-empty value wins.

    The transcript is the last full one sent (``call.ended``), else the
    ``transcription.update`` turns in order; ``tools`` lists every ``tool.executed``;
    the duration is ``callDuration`` where sent, else ended minus started.
    """
    ordered = sorted(events, key=lambda e: (e.get("timestamp") or e.get("received_at") or ""))
    call: dict[str, Any] = dict.fromkeys(CALL_FIELDS)
    outcome: dict[str, Any] = {}
    full_transcript: list[dict[str, str]] | None = None
    updates: list[dict[str, str]] = []
    tools: list[dict[str, Any]] = []
    for event in ordered:
        for key, value in (event.get("call") or {}).items():
            if value not in (None, ""):
                call[key] = value
        call["id"] = event["call_id"]
        call["event"] = event["event"]
        if event.get("outcome"):
            outcome.update(event["outcome"])
        if event["event"] == "transcription.update":
            updates.extend(event.get("transcript") or [])
        elif event.get("transcript"):
            full_transcript = event["transcript"]
        if event.get("tool"):
            tools.append(event["tool"])
    if call["duration_seconds"] is None and call["started_at"] and call["ended_at"]:
        started = datetime.fromisoformat(call["started_at"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(call["ended_at"].replace("Z", "+00:00"))
        call["duration_seconds"] = max(round((ended - started).total_seconds()), 0)
    transcript = full_transcript if full_transcript is not None else updates
    return {
        "call": call,
        "transcript": transcript,
        "transcript_text": "\n".join(f"{t['speaker']}: {t['text']}" if t["speaker"] else t["text"]
                                     for t in transcript),
        "outcome": outcome,
        "tools": tools,
    }
