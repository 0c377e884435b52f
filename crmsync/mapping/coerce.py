"""From what Hamsa sends to what a CRM field takes.

``coerce(raw, type)`` reads a source value (usually a string: ``"80000"``, ``"true"``,
``"2026-04-01"``, ``'["price", "timing"]'``, epoch milliseconds) as a Python value of the
mapping ``type``; it raises ``CoercionError`` with a short reason that quotes no more than
the start of the value. The value stays typed (``date``, ``datetime``, ``int``/``float``,
``bool``, ``str``) until the connector writes it in its CRM's wire form
(``crmsync.crm.base.Profile.wire``).

Types: string, number, integer, boolean, date, datetime, enum, phone. ``enum`` values are
mapped by the caller (the value map) and travel as strings; several values (a list, or a
JSON array inside a string) become one multi-select value joined by ``;``, as both CRMs
write multi-select picklists.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

from crmsync import phones, times

TYPES = ("string", "number", "integer", "boolean", "date", "datetime", "enum", "phone")
TRUE = ("true", "yes", "y", "1", "on")
FALSE = ("false", "no", "n", "0", "off")
EMPTY_TEXT = ("", "null", "none", "[]", "{}")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


class CoercionError(ValueError):
    """A value that does not read as the wanted type."""


def short(value: Any, limit: int = 24) -> str:
    """``value`` quoted for a message, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text[:limit] + "…" if len(text) > limit else text, ensure_ascii=False)


def is_empty(value: Any) -> bool:
    """Missing, null, blank, ``"null"``, or an empty list or object (SPEC §6: leave the field alone)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in EMPTY_TEXT
    if isinstance(value, list | dict | tuple):
        return len(value) == 0
    return False


def as_list(value: Any) -> list[Any] | None:
    """A list when ``value`` is one, or a string holding a JSON array; else None."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def coerce(raw: Any, type: str, region: str = "US") -> Any:
    """``raw`` as a Python value of ``type``; raises ``CoercionError``. ``raw`` is not empty."""
    if type in ("string", "enum"):
        return _text(raw, type)
    if isinstance(raw, list | dict):
        raise CoercionError(f"{short(raw)} is a list or object, not one {type}")
    if type == "number":
        return _number(raw)
    if type == "integer":
        number = _number(raw)
        if isinstance(number, float):
            raise CoercionError(f"{short(raw)} is not a whole number")
        return number
    if type == "boolean":
        return _boolean(raw)
    if type == "date":
        return _date(raw)
    if type == "datetime":
        return _datetime(raw)
    if type == "phone":
        e164 = phones.to_e164(str(raw), region)
        if e164 is None:
            raise CoercionError(f"{_phone_hint(raw)} is not a phone number")
        return e164
    raise CoercionError(f"unknown type {type!r}")


def map_key(value: Any) -> str:
    """How value-map keys and source values are compared: trimmed, case-insensitive text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def readable(value: Any) -> Any:
    """A planned value as a person reads it (and JSON holds it): dates as ``2026-04-01``,
    datetimes as ISO 8601 UTC with milliseconds; other values unchanged."""
    if isinstance(value, datetime):
        return times.iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _text(raw: Any, type: str) -> str:
    items = as_list(raw)
    if items is not None:
        parts = [_scalar_text(item) for item in items if not is_empty(item)]
        return (";" if type == "enum" else ", ").join(parts)
    if isinstance(raw, dict):
        return json.dumps(raw, ensure_ascii=False, sort_keys=True)
    return _scalar_text(raw).strip()


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _number(raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise CoercionError(f"{short(raw)} is a yes/no value, not a number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        number = raw
    else:
        text = str(raw).strip().replace(" ", "").replace("_", "")
        if _GROUPED.match(text):
            text = text.replace(",", "")
        try:
            number = float(text)
        except ValueError:
            raise CoercionError(f"{short(raw)} is not a number") from None
    if not math.isfinite(number):
        raise CoercionError(f"{short(raw)} is not a finite number")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise CoercionError(f"{short(raw)} is not one of true/false, yes/no, 1/0")


def _date(raw: Any) -> date:
    moment = times.parse(raw)
    if moment is None:
        raise CoercionError(f"{short(raw)} is not a date (YYYY-MM-DD, ISO 8601 or epoch ms)")
    return moment.date()


def _datetime(raw: Any) -> datetime:
    moment = times.parse(raw)
    if moment is None:
        raise CoercionError(f"{short(raw)} is not a date and time (ISO 8601 or epoch ms)")
    return moment


def _phone_hint(raw: Any) -> str:
    """A phone-ish value without its digits: only its length is said."""
    digits = phones.digits(str(raw))
    return f"a value of {len(digits)} digits" if digits else short(raw)
