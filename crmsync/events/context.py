"""The events recorded for one call → the canonical call that mappings see (SPEC §5)."""

from __future__ import annotations

from typing import Any

from crmsync import times
from crmsync.canonical import CallContext, CallView, CanonicalEvent, ToolRun, Turn

# Every call has these keys, and ``provider``: the platforms' normalisers set it, and a call
# whose events name none is a Hamsa call.
CALL_FIELDS = tuple(key for key in CallView.__annotations__ if key in CallView.__required_keys__)


def call_context(events: list[CanonicalEvent]) -> CallContext:
    """Merge a call's events, oldest first; a later event's non-empty value wins.

    The transcript is the last full one sent (``call.ended``), else the
    ``transcription.update`` turns in order; ``tools`` lists every ``tool.executed``;
    the duration is ``callDuration`` where sent, else ended minus started.
    """
    ordered = sorted(events, key=lambda e: e.get("timestamp") or e.get("received_at") or "")
    merged: dict[str, Any] = dict.fromkeys(CALL_FIELDS)
    outcome: dict[str, Any] = {}
    full_transcript: list[Turn] | None = None
    updates: list[Turn] = []
    tools: list[ToolRun] = []
    for event in ordered:
        for key, value in (event.get("call") or {}).items():
            if value not in (None, ""):
                merged[key] = value
        merged["id"] = event["call_id"]
        merged["event"] = event["event"]
        if event.get("outcome"):
            outcome.update(event["outcome"] or {})
        if event["event"] == "transcription.update":
            updates.extend(event.get("transcript") or [])
        elif event.get("transcript"):
            full_transcript = event["transcript"]
        tool = event.get("tool")
        if tool:
            tools.append(tool)
    merged.setdefault("source", "webhook")  # SPEC §5: webhook, or reconcile / backfill when Hamsa's history gave it
    merged["provider"] = merged.get("provider") or "hamsa"
    call: CallView = merged  # type: ignore[assignment]  # every CallView key, set above
    started, ended = times.parse(call["started_at"]), times.parse(call["ended_at"])
    if call["duration_seconds"] is None and started and ended:
        call["duration_seconds"] = max(round((ended - started).total_seconds()), 0)
    transcript = full_transcript if full_transcript is not None else updates
    return {
        "call": call,
        "transcript": transcript,
        "transcript_text": "\n".join(f"{t['speaker']}: {t['text']}" if t["speaker"] else t["text"] for t in transcript),
        "outcome": outcome,
        "tools": tools,
    }
