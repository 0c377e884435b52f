"""The canonical call as mappings see it (SPEC §5), and dotted paths into it.

A path such as ``outcome.budget`` or ``tools.0.output.available`` walks dicts by key and
lists by index. The first part must be one of ``ROOTS``; under ``call`` only ``CALL_KEYS``
exist. Under ``outcome`` and ``tools`` anything may exist: Hamsa sends what the agent's
outcome schema says.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from crmsync.canonical import CALL_KEYS as EVENT_CALL_KEYS

ROOTS = ("call", "transcript", "transcript_text", "outcome", "tools")
# ``call.*`` as mappings see it (SPEC §5): what the events tell of the call, the type of the
# latest event, and how the call came (``webhook``, ``reconcile``, ``backfill``)
CALL_KEYS = (*EVENT_CALL_KEYS, "event", "source")
_PART = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_-]*|\d+)$")
_MISSING = object()


def suggest(word: str, choices: Any) -> str:
    """`` (did you mean "x"?)`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def check_path(path: Any) -> str | None:
    """Why ``path`` is not a valid path into the context, or None when it is."""
    if not isinstance(path, str) or not path.strip():
        return "must be a dotted path such as outcome.budget or call.customer_number"
    parts = path.split(".")
    root = parts[0]
    if root not in ROOTS:
        return f'"{root}" is not one of {", ".join(ROOTS)}{suggest(root, ROOTS)}'
    for part in parts[1:]:
        if part.startswith("_"):
            return f'"{part}": names starting with _ are not allowed'
        if not _PART.match(part):
            return f'"{part}" is not a key or a list index (letters, digits, _ and -)'
    if root == "call":
        if len(parts) != 2:
            return "call.* has one level: call.customer_number, call.ended_at, ..."
        if parts[1] not in CALL_KEYS:
            return f'"{parts[1]}" is not a key of call: {", ".join(CALL_KEYS)}{suggest(parts[1], CALL_KEYS)}'
    if root == "transcript_text" and len(parts) > 1:
        return "transcript_text is text: it has no keys"
    return None


def resolve(context: Mapping[str, Any], path: str) -> Any:
    """The value at ``path``, or None where any part is missing."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else _MISSING
        else:
            return None
        if value is _MISSING:
            return None
    return value
