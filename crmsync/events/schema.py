"""marshmallow schemas for every shape of Hamsa webhook we know (SPEC §5).

Hamsa's examples disagree with each other and with live traffic, so the schemas accept
``eventType`` or ``event_type``, ``callId`` or ``caller_info.call_id``, and the call
content at ``data.data`` or ``data``. They refuse only what makes an event unusable: no
event type, no call id, or a structure of the wrong kind. Everything else is coerced
leniently later; outcome values are kept exactly as sent.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validates_schema


class Identifier(fields.Field):
    """A string or an integer id, returned as a non-empty string."""

    default_error_messages = {"invalid": "must be a string or a number."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("invalid")
        text = str(value).strip()
        return text or None


class Loose(fields.Field):
    """Any JSON value, kept as sent."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return value


class ObjectOrNull(fields.Field):
    """A JSON object (or null); anything else is an error."""

    default_error_messages = {"invalid": "must be a JSON object."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise self.make_error("invalid")
        return value


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


class CallerInfoSchema(_Open):
    call_id = Identifier(allow_none=True)
    agent_id = Identifier(allow_none=True)
    conversationId = Identifier(allow_none=True)  # noqa: N815 - Hamsa's own key
    call_start_time = Loose(allow_none=True)


class EnvelopeSchema(_Open):
    """The outer body. ``data`` is checked by ``ContentSchema`` separately."""

    eventType = fields.String(allow_none=True)  # noqa: N815
    event_type = fields.String(allow_none=True)
    callId = Identifier(allow_none=True)  # noqa: N815
    call_id = Identifier(allow_none=True)
    timestamp = Loose(allow_none=True)
    projectId = Identifier(allow_none=True)  # noqa: N815
    agentId = Identifier(allow_none=True)  # noqa: N815
    agentName = fields.String(allow_none=True)  # noqa: N815
    caller_info = fields.Nested(CallerInfoSchema, allow_none=True)
    data = ObjectOrNull(allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _needs_type_and_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        problems: dict[str, list[str]] = {}
        if not (data.get("eventType") or data.get("event_type")):
            problems["eventType"] = ["No event type: expected eventType (or event_type) such as \"call.ended\"."]
        caller: dict[str, Any] = data["caller_info"] if isinstance(data.get("caller_info"), dict) else {}
        content: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
        inner: dict[str, Any] = content["data"] if isinstance(content.get("data"), dict) else {}
        if not (
            data.get("callId")
            or data.get("call_id")
            or caller.get("call_id")
            or _text(inner.get("conversationId"))
            or _text(content.get("conversationId"))
            or caller.get("conversationId")
        ):
            problems["callId"] = [
                "No call id: expected callId, caller_info.call_id or data.conversationId."
            ]
        if problems:
            raise ValidationError(problems)


class ContentSchema(_Open):
    """The call content, wherever it sits (``data.data`` or ``data``)."""

    conversationId = Identifier(allow_none=True)  # noqa: N815
    conversationRecording = fields.String(allow_none=True)  # noqa: N815
    callParams = ObjectOrNull(allow_none=True)  # noqa: N815
    params = ObjectOrNull(allow_none=True)
    transcription = Loose(allow_none=True)
    outcomeResult = Loose(allow_none=True)  # noqa: N815
    callDuration = Loose(allow_none=True)  # noqa: N815
    callStartedAt = Loose(allow_none=True)  # noqa: N815
    callEndedAt = Loose(allow_none=True)  # noqa: N815
    direction = fields.String(allow_none=True)


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


# Built once: a marshmallow schema keeps no state between loads, and building one costs
# more than loading a body with it.
_ENVELOPE = EnvelopeSchema()
_CONTENT = ContentSchema()


def envelope_errors(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Load the envelope and its content; returns (loaded envelope, problems by path)."""
    problems: dict[str, list[str]] = {}
    try:
        envelope = _ENVELOPE.load(body)
    except ValidationError as exc:
        envelope = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        _flatten(exc.normalized_messages(), "", problems)
    content_path, content = content_of(body)
    if content:
        try:
            _CONTENT.load(content)
        except ValidationError as exc:
            _flatten(exc.normalized_messages(), content_path, problems)
    return envelope, problems


def content_of(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where the call content sits: ``("data.data", …)``, ``("data", …)`` or ``("", {})``."""
    data = body.get("data")
    if isinstance(data, dict):
        inner = data.get("data")
        if isinstance(inner, dict):
            return "data.data", inner
        return "data", data
    return "", {}


def _flatten(messages: Any, prefix: str, out: dict[str, list[str]]) -> None:
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "body"
            _flatten(value, path, out)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.setdefault(prefix or "body", []).extend(messages)
    elif isinstance(messages, list):
        for item in messages:
            _flatten(item, prefix, out)
    else:
        out.setdefault(prefix or "body", []).append(str(messages))
