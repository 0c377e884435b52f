"""Where Hamsa and integrators put each field of the canonical event (SPEC §5): one table.

The validator (``schema.py``) and the extraction (``normalise.py``) both read bodies
through this table and nothing else, so what is validated is what is extracted: a body
that passes validation with a call id at some path is stored under the id at that path.

Each ``Alias`` lists its paths, most specific first. The call's content sits at
``data.data`` (Hamsa's documented example) or at ``data`` (what integrators observed);
``content(key)`` expands to both, ``data.data`` first. The ``kind`` says what a value
must be for the validator:

- ``ID``: a call or conversation id — a non-empty string or an integer. A wrong type is a
  422; ``null``, ``""``, the texts ``"null"``/``"None"``/``"undefined"`` and text that is no
  valid Unicode (a lone surrogate) count as absent.
- ``TEXT``: a string or null (the event type).
- ``OBJECT``: a JSON object or null; containers the extraction walks into.
- ``ANY``: anything; coerced leniently (an unusable value is dropped, the raw body keeps it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Path = tuple[str, ...]
Kind = Literal["id", "text", "object", "any"]
ID: Kind = "id"
TEXT: Kind = "text"
OBJECT: Kind = "object"
ANY: Kind = "any"

_CONTENT_AT: tuple[Path, ...] = (("data", "data"), ("data",))
# Texts a template or a serializer writes for "no value"; never a call id.
_NO_ID_TEXTS = frozenset({"null", "none", "undefined", "nil"})


@dataclass(frozen=True)
class Alias:
    """One canonical field and every path it may arrive at."""

    name: str
    kind: Kind
    paths: tuple[Path, ...]

    def dotted(self) -> list[str]:
        return [".".join(path) for path in self.paths]


def content(*keys: str) -> tuple[Path, ...]:
    """``data.data.<key>`` for every key, then ``data.<key>`` for every key."""
    return tuple((*where, key) for where in _CONTENT_AT for key in keys)


def _under(containers: tuple[Path, ...], keys: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple((*where, key) for where in containers for key in keys)


_CUSTOMER_KEYS = ("userNumber", "user_number", "customerNumber", "customer_number", "callerNumber")
_AGENT_KEYS = ("machineNumber", "agentNumber", "agent_number", "machine_number")
ECHOED_PHONE_KEYS = ("phone", "phone_number", "phoneNumber", "customer_phone", "mobile", "user_number", "userNumber")

# Containers: walked into; anything but an object (or null) there is a 422 — except
# ``data.data``, which only counts as the content when it is an object.
CALLER = Alias("caller_info", OBJECT, (("caller_info",),))
DATA = Alias("data", OBJECT, (("data",),))
CALL_PARAMS = Alias("call_params", OBJECT, content("callParams"))
ECHOED_PARAMS = Alias("params", OBJECT, content("params"))
CONTENT = Alias("content", ANY, _CONTENT_AT)

EVENT_TYPE = Alias("event", TEXT, (("eventType",), ("event_type",)))
CALL_ID = Alias("call_id", ID, (("callId",), ("call_id",), ("caller_info", "call_id")))
CONVERSATION_ID = Alias("conversation_id", ID, (*content("conversationId"), ("caller_info", "conversationId")))
TIMESTAMP = Alias("timestamp", ANY, (("timestamp",), ("data", "timestamp"), ("data", "data", "timestamp")))
PROJECT_ID = Alias("project_id", ANY, (("projectId",), *content("projectId")))
AGENT_ID = Alias("agent_id", ANY, (("agentId",), ("caller_info", "agent_id"), *content("agentId")))
AGENT_NAME = Alias("agent_name", ANY, (("agentName",), *content("agentName")))
DIRECTION = Alias(
    "direction", ANY, (*content("direction"), *_under(CALL_PARAMS.paths, ("direction",)), ("caller_info", "direction"))
)
CUSTOMER_NUMBER = Alias(
    "customer_number",
    ANY,
    (*_under(CALL_PARAMS.paths, _CUSTOMER_KEYS), *content(*_CUSTOMER_KEYS), *_under(CALLER.paths, _CUSTOMER_KEYS)),
)
AGENT_NUMBER = Alias("agent_number", ANY, (*_under(CALL_PARAMS.paths, _AGENT_KEYS), *content(*_AGENT_KEYS)))
FROM_NUMBER = Alias("from_number", ANY, content("from", "fromNumber", "from_number"))
TO_NUMBER = Alias("to_number", ANY, content("to", "toNumber", "to_number"))
ECHOED_NUMBER = Alias("echoed_number", ANY, _under(ECHOED_PARAMS.paths, ECHOED_PHONE_KEYS))
STARTED_AT = Alias("started_at", ANY, (*content("callStartedAt", "startedAt"), ("caller_info", "call_start_time")))
ANSWERED_AT = Alias("answered_at", ANY, content("callAnsweredAt", "answeredAt"))
ENDED_AT = Alias("ended_at", ANY, content("callEndedAt", "endedAt"))
DURATION = Alias("duration_seconds", ANY, content("callDuration", "duration"))
STATUS = Alias("status", ANY, content("status", "callStatus"))  # endReason says why a call ended, not how
RECORDING_URL = Alias("recording_url", ANY, content("conversationRecording", "recordingUrl", "mediaUrl"))
CHANNEL = Alias("channel", ANY, content("channelType", "channel"))
TRANSCRIPT = Alias("transcript", ANY, content("transcription", "transcript"))
OUTCOME = Alias("outcome", ANY, content("outcomeResult"))
TOOL_NAME = Alias("tool.name", ANY, content("toolName", "tool_name", "name", "tool"))
TOOL_INPUT = Alias("tool.input", ANY, content("input", "arguments", "params"))
TOOL_OUTPUT = Alias("tool.output", ANY, content("output", "result"))
TOOL_DURATION = Alias("tool.duration_ms", ANY, content("durationMs", "duration_ms", "duration"))

TABLE: tuple[Alias, ...] = (
    CALLER, DATA, CALL_PARAMS, ECHOED_PARAMS, CONTENT, EVENT_TYPE, CALL_ID, CONVERSATION_ID, TIMESTAMP,
    PROJECT_ID, AGENT_ID, AGENT_NAME, DIRECTION, CUSTOMER_NUMBER, AGENT_NUMBER, FROM_NUMBER, TO_NUMBER,
    ECHOED_NUMBER, STARTED_AT, ANSWERED_AT, ENDED_AT, DURATION, STATUS, RECORDING_URL, CHANNEL, TRANSCRIPT,
    OUTCOME, TOOL_NAME, TOOL_INPUT, TOOL_OUTPUT, TOOL_DURATION,
)  # fmt: skip


def at(body: Any, path: Path) -> Any:
    """The value at ``path`` in ``body``; ``None`` when any step is missing or not an object."""
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def present(body: Any, alias: Alias) -> Iterator[tuple[Path, Any]]:
    """``(path, value)`` for every path of ``alias`` that holds a non-null value, in table order."""
    for path in alias.paths:
        value = at(body, path)
        if value is not None:
            yield path, value


def first(body: Any, alias: Alias) -> Any:
    """The first value of ``alias`` that is not null, empty text, ``[]`` or ``{}``."""
    for _, value in present(body, alias):
        if value not in ("", [], {}):
            return value
    return None


def is_id_type(value: Any) -> bool:
    """A call or conversation id must be a string or an integer (a boolean is neither)."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def identifier(value: Any) -> str | None:
    """An id as text, or ``None`` when ``value`` is no usable id (wrong type, empty, "null")."""
    if not is_id_type(value):
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    if not text or text.lower() in _NO_ID_TEXTS or not is_unicode(text):
        return None
    return text


def is_unicode(text: str) -> bool:
    """False for text JSON can carry but Unicode cannot (a lone surrogate such as ``"\\ud800"``):
    no Redis key, log line or answer could hold it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def first_id(body: Any, alias: Alias) -> tuple[Path, str] | None:
    """The first usable id of ``alias`` and the path it was found at."""
    for path, value in present(body, alias):
        text = identifier(value)
        if text is not None:
            return path, text
    return None


def call_identity(body: Any) -> tuple[Path, str] | None:
    """The call id (SPEC §5, Identity): ``callId``, ``call_id``, ``caller_info.call_id``,
    failing those a conversation id; ``None`` when the body has none."""
    return first_id(body, CALL_ID) or first_id(body, CONVERSATION_ID)


def content_of(body: Any) -> dict[str, Any]:
    """The call's content object: ``data.data`` when it is an object, else ``data``, else ``{}``."""
    for _, value in present(body, CONTENT):
        if isinstance(value, dict):
            return value
    return {}
