"""The marshmallow validator of webhook bodies, built from the alias table (``aliases.TABLE``).

Every ``ID`` and ``TEXT`` path and every container of the table becomes a field of a
nested marshmallow schema, so the validator checks exactly the paths the extraction reads.
It refuses only what makes an event unusable: no event type, no call id, an id of the
wrong type, or a container that is not an object. Everything else is coerced leniently
later; outcome values are kept exactly as sent. ``problems(body)`` lists every problem at
once, by dotted path, in the shape of marshmallow's ``normalized_messages()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields

from crmsync.events import aliases
from crmsync.events.aliases import ANY, CALL_ID, CONTENT, CONVERSATION_ID, EVENT_TYPE, ID, OBJECT, TEXT, Path


class Identifier(fields.Field):
    """A call or conversation id: a string or an integer (empty means absent)."""

    default_error_messages = {"invalid": "must be a string or an integer."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not aliases.is_id_type(value):
            raise self.make_error("invalid")
        return value


class Text(fields.String):
    """A string that is valid Unicode (JSON's ``"\\ud800"`` escapes can make one that is not)."""

    default_error_messages = {"invalid": "must be a string.", "unicode": "must be valid Unicode text."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not aliases.is_unicode(text):
            raise self.make_error("unicode")
        return text


class Container(fields.Field):
    """A JSON object (or null) whose own fields a nested schema checks. A lenient container
    (``data.data``) that is not an object is simply not the content: no error."""

    default_error_messages = {"invalid": "must be a JSON object."}

    def __init__(self, schema: Schema | None, strict: bool, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)
        self.schema = schema
        self.strict = strict

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            if self.strict:
                raise self.make_error("invalid")
            return value
        return self.schema.load(value) if self.schema is not None else value


MAX_DEPTH = 64  # levels of objects and lists; Hamsa's bodies have fewer than 10
_LENIENT = "lenient"  # data.data: the content only when it is an object


@dataclass
class _Node:
    kind: str | None = None  # None: a step on the way to a validated path (an object)
    children: dict[str, _Node] = field(default_factory=dict)


def _tree() -> _Node:
    """The table's validated paths (``ID``, ``TEXT``, containers) as a tree of keys."""
    root = _Node(OBJECT)
    for alias in aliases.TABLE:
        if alias.kind == ANY and alias is not CONTENT:
            continue
        for path in alias.paths:
            node = root
            for key in path:
                node = node.children.setdefault(key, _Node())
            node.kind = node.kind or (_LENIENT if alias is CONTENT else alias.kind)
    return root


def _schema(node: _Node, path: Path) -> Schema:
    declared: dict[str, fields.Field] = {}
    for key, child in node.children.items():
        if child.kind == ID:
            declared[key] = Identifier(allow_none=True)
        elif child.kind == TEXT:
            declared[key] = Text(allow_none=True)
        else:
            declared[key] = Container(_schema(child, (*path, key)), strict=child.kind != _LENIENT)
    name = "Body" + "".join(part[:1].upper() + part[1:] for part in path)
    return Schema.from_dict(declared, name=name)(unknown=INCLUDE)


# Built once: a marshmallow schema keeps no state between loads, and building one costs
# more than loading a body with it.
BODY = _schema(_tree(), ())

_NO_CALL_ID = (
    "No call id: expected a non-empty string or integer at "
    + ", ".join(CALL_ID.dotted())
    + ", or failing those a conversation id at "
    + ", ".join(CONVERSATION_ID.dotted())
    + "."
)
_ID_RULE = "a call id is a non-empty string or integer."
_NO_EVENT_TYPE = 'No event type: expected eventType (or event_type) such as "call.ended".'


def problems(body: dict[str, Any]) -> dict[str, list[str]]:
    """Every problem of ``body`` by dotted path (``{}`` when it is a usable event)."""
    if too_deep(body):
        return {"body": [f"is nested deeper than {MAX_DEPTH} levels; no Hamsa event is."]}
    found: dict[str, list[str]] = {}
    try:
        BODY.load(body)
    except ValidationError as exc:
        _flatten(exc.normalized_messages(), "", found)
    if not any(isinstance(v, str) and v.strip() for _, v in aliases.present(body, EVENT_TYPE)):
        if "eventType" not in found and "event_type" not in found:
            found.setdefault("eventType", []).append(_NO_EVENT_TYPE)
    if aliases.call_identity(body) is None:
        for path in CALL_ID.paths + CONVERSATION_ID.paths:
            dotted = ".".join(path)
            parent = aliases.at(body, path[:-1])
            if isinstance(parent, dict) and path[-1] in parent and dotted not in found:  # sent, but unusable
                found[dotted] = [f"{_shown(parent[path[-1]])} is not a call id: {_ID_RULE}"]
        found.setdefault("callId", []).append(_NO_CALL_ID)
    return found


def too_deep(body: Any) -> bool:
    """Objects and lists nested deeper than ``MAX_DEPTH`` (walked without recursion, so a
    body of any depth is answered, never a ``RecursionError``)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):  # quoted, cut, and with any lone surrogate replaced (answers are UTF-8)
        shown = value.strip()[:24].encode(errors="replace").decode()
        return "empty text" if not value.strip() else f'"{shown}"'
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


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
