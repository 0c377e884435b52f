"""Lenient readings of the values a body carries: text, direction, status, seconds,
JSON inside strings, transcripts and tool runs. None of these refuses a body: a value
that does not read is ``None`` (the raw body still holds it)."""

from __future__ import annotations

import json
from typing import Any

from crmsync.canonical import CALL_STATUSES, Turn

# The one table of call statuses: what a webhook body or Hamsa's call history (reference §9:
# COMPLETED, NO_ANSWER, FAILED, TERMINATED, FORWARDED, PENDING, IN_PROGRESS; read in lower
# case) may say → the canonical ``call.status`` of SPEC §5.
STATUSES = {
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
    "terminated": "terminated",
    "canceled": "canceled",
    "cancelled": "canceled",
    "forwarded": "forwarded",
    "in_progress": "in_progress",
    "pending": "pending",
    "voicemail": "voicemail",
}


def first(*values: Any) -> Any:
    """The first value that is not null, empty text, ``[]`` or ``{}``."""
    for value in values:
        if value is not None and value not in ("", [], {}):
            return value
    return None


def text(value: Any) -> str | None:
    """A scalar as stripped text; objects, lists, booleans and empty text are ``None``."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    shown = str(value).strip()
    return shown or None


def direction(value: Any) -> str | None:
    shown = str(value or "").strip().lower()
    return shown if shown in ("inbound", "outbound") else None


def status(value: Any) -> str | None:
    """The canonical status for a known one; other text passes through in lower case."""
    shown = str(value or "").strip().lower().replace(" ", "_")
    return STATUSES.get(shown, shown or None)


def ended_status(value: Any) -> str:
    """The status of a ``call.ended``: one of ``CALL_STATUSES``, else ``completed`` (a call
    that ended with no status, or with one crmsync does not know, e.g. a hang-up reason:
    only the known not-completed statuses keep a call from the default ``statuses:``)."""
    canonical = status(value)
    return canonical if canonical in CALL_STATUSES else "completed"


def seconds(value: Any) -> int | None:
    """A duration in whole seconds; negative, non-numeric or non-finite values are ``None``."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
        return round(number) if number >= 0 else None
    except (TypeError, ValueError, OverflowError):
        return None


def maybe_json(value: Any) -> Any:
    """JSON inside a string (``'{"a": 1}'``, ``'["x"]'``) parsed; anything else as it is."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def outcome(value: Any) -> dict[str, Any] | None:
    """``outcomeResult`` as an object (also when it arrives as JSON text), else ``None``."""
    value = maybe_json(value)
    return value if isinstance(value, dict) else None


def turn(item: Any) -> Turn | None:
    """One transcript turn: ``{speaker, text}``, ``{role, message}``, Hamsa's ``{"Agent": "Hello"}``
    or bare text."""
    if not isinstance(item, dict):
        return {"speaker": "", "text": str(item)} if item not in (None, "") else None
    speaker = first(item.get("speaker"), item.get("role"), item.get("name"))
    said = first(item.get("text"), item.get("message"), item.get("content"))
    if speaker is not None or said is not None:
        return {"speaker": str(speaker or ""), "text": str(said or "")}
    if len(item) == 1:  # Hamsa's documented form: {"Agent": "Hello"}
        ((speaker, said),) = item.items()
        return {"speaker": str(speaker), "text": "" if said is None else str(said)}
    return None


def transcript(value: Any) -> list[Turn] | None:
    """A transcript sent as a list of turns, as JSON text, or as ``Speaker: text`` lines."""
    value = maybe_json(value)
    if value is None:
        return None
    if isinstance(value, str):
        turns: list[Turn] = []
        for line in value.splitlines():
            speaker, sep, said = line.partition(":")
            turns.append({"speaker": speaker.strip(), "text": said.strip()} if sep else {"speaker": "", "text": line})
        return turns
    if isinstance(value, list):
        return [one for one in map(turn, value) if one]
    return None
