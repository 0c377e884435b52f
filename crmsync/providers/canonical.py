"""Building blocks the platform normalisers share: reading a body by path while collecting
every problem, and assembling the canonical event that ``crmsync.events.normalise`` builds
for Hamsa (the same keys, plus ``call.provider``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from crmsync import phones, times
from crmsync.canonical import CALL_KEYS, CanonicalEvent
from crmsync.events import InvalidEvent

# How each platform names the two sides of a conversation, as Hamsa's transcripts do.
_SPEAKERS = {
    "agent": "Agent",
    "assistant": "Agent",
    "bot": "Agent",
    "ai": "Agent",
    "robot": "Agent",
    "user": "User",
    "customer": "User",
    "human": "User",
}
# Turns that are no speech: the system prompt, tool calls and their results.
_NOT_SPEECH = (
    "system",
    "tool",
    "tool_calls",
    "tool_call_result",
    "tool_call_invocation",
    "function",
    "agent-action",
    "node_transition",
)


class Problems:
    """Every reason a body is no recognisable event, by path (the 422 ``details``)."""

    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.details.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.details:
            raise InvalidEvent(self.details)


def get(body: Any, path: str) -> Any:
    """The value at a dotted ``path`` (dicts only), or None."""
    for key in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def obj(body: Any, path: str, problems: Problems, *, required: bool = False) -> dict[str, Any]:
    """The object at ``path``; a value of another kind (or a missing required one) is a problem."""
    value = get(body, path)
    if isinstance(value, dict):
        return value
    if value is not None:
        problems.add(path, "must be a JSON object.")
    elif required:
        problems.add(path, "is missing: expected a JSON object.")
    return {}


def identifier(body: Any, path: str, problems: Problems, what: str) -> str:
    """A non-empty string or number at ``path``, as text; anything else is a problem."""
    value = get(body, path)
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    if value is None or value == "":
        problems.add(path, f"No call id: expected {what} (a non-empty string).")
    else:
        problems.add(path, "must be a string or a number.")
    return ""


def text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    stripped = str(value).strip()
    return stripped or None


def first(*values: Any) -> Any:
    for value in values:
        if value not in (None, "", [], {}):
            return value
    return None


def seconds(value: Any, scale: float = 1.0) -> int | None:
    """A non-negative number of ``scale``-second units as whole seconds; None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) * scale
    except (TypeError, ValueError):
        return None
    return round(number) if number >= 0 else None


def span(started: str | None, ended: str | None) -> int | None:
    if not (started and ended):
        return None
    start, end = times.parse(started), times.parse(ended)
    return max(round((end - start).total_seconds()), 0) if start and end else None


def epoch_iso(value: Any) -> str | None:
    """Epoch seconds or milliseconds, or ISO 8601 text → ISO 8601 UTC; None when unreadable."""
    return times.to_iso(value) if not isinstance(value, bool) else None


def plus_seconds(iso: str | None, amount: int | None) -> str | None:
    if not iso or amount is None:
        return None
    moment = times.parse(iso)
    try:
        return times.iso(moment + timedelta(seconds=amount)) if moment else None
    except OverflowError:  # a duration past the calendar's end
        return None


def direction(value: Any) -> str | None:
    lowered = str(value or "").strip().lower()
    if lowered in ("inbound", "outbound"):
        return lowered
    return None


def parties(direction: str | None, from_number: Any, to_number: Any) -> tuple[Any, Any]:
    """(customer, agent) numbers: inbound calls come from the customer, outbound calls go to them."""
    if direction == "inbound":
        return from_number, to_number
    if direction == "outbound":
        return to_number, from_number
    return None, None


def turns(items: Any, speaker_key: str, text_key: str) -> list[dict[str, str]] | None:
    """A platform's transcript list → ``[{speaker, text}]``, speech only, in order."""
    if not isinstance(items, list):
        return None
    result = []
    for item in items:
        if not isinstance(item, dict):
            continue
        role = str(item.get(speaker_key) or "").strip()
        words = item.get(text_key)
        if role.lower() in _NOT_SPEECH or not isinstance(words, str) or not words.strip():
            continue
        result.append({"speaker": _SPEAKERS.get(role.lower(), role), "text": words.strip()})
    return result


def lines(value: Any) -> list[dict[str, str]] | None:
    """A text transcript (``Speaker: words`` per line) → turns, as ``turns`` reads them."""
    if not isinstance(value, str) or not value.strip():
        return None
    items = []
    for line in value.splitlines():
        speaker, sep, words = line.partition(":")
        if sep:
            items.append({"speaker": speaker.strip(), "text": words})
    return turns(items, "speaker", "text")


def merged(*parts: dict[str, Any] | None) -> dict[str, Any] | None:
    """Dicts merged left to right (a later one's keys win); None when all are empty."""
    result: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, dict):
            result.update(part)
    return result or None


def canonical_event(
    *,
    provider: str,
    call_id: str,
    event: str,
    as_sent: str,
    timestamp: str | None,
    call: dict[str, Any],
    transcript: list[dict[str, str]] | None,
    outcome: dict[str, Any] | None,
    raw: dict[str, Any],
    region: str,
    received_at: str | None,
) -> CanonicalEvent:
    """The canonical event; ``call`` holds the SPEC §5 call fields this event tells."""
    fields: dict[str, Any] = dict.fromkeys(CALL_KEYS)
    fields.update({key: value for key, value in call.items() if key in CALL_KEYS})
    fields["id"] = call_id
    fields["provider"] = provider
    fields["customer_number"] = phones.normalise(text(fields["customer_number"]), region)
    fields["agent_number"] = phones.normalise(text(fields["agent_number"]), region)
    if fields["duration_seconds"] is None:
        fields["duration_seconds"] = span(fields["started_at"], fields["ended_at"])
    built = {
        "call_id": call_id,
        "event": event,
        "event_as_sent": as_sent,
        "timestamp": timestamp or fields["ended_at"] or fields["answered_at"] or fields["started_at"],
        "received_at": received_at or times.now_iso(),
        "call": fields,
        "transcript": transcript,
        "outcome": outcome,
        "tool": None,
        "raw": raw,
    }
    return cast(CanonicalEvent, built)  # the call fields are built by key above
