"""Every time crmsync reads, in one place: what Hamsa, integrators and CRMs send → aware UTC.

``parse(value)`` reads

- epoch seconds or epoch milliseconds, as a number or a string of 9 to 13 digits (with an
  optional fraction); a value above ``MS_THRESHOLD`` is milliseconds (as seconds it would be
  after the year 5000);
- ISO 8601 with or without ``Z`` or an offset; a time without an offset is UTC, a date alone
  is midnight UTC;

and returns an aware ``datetime`` in UTC, or ``None`` for anything else (``None``, booleans,
text that is no time, a number out of range). ``to_iso`` writes the same moment as crmsync
stores it: ISO 8601, milliseconds, ``Z``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

MS_THRESHOLD = 10**11  # epoch values above this are milliseconds (10**11 s is the year 5138)
_EPOCH_TEXT = re.compile(r"^\d{9,13}(\.\d+)?$")


def parse(value: Any) -> datetime | None:
    """``value`` as an aware UTC ``datetime``; ``None`` when it is no time crmsync reads."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return from_epoch(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EPOCH_TEXT.match(text):
        return from_epoch(float(text))
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def from_epoch(number: float) -> datetime | None:
    """Epoch seconds, or milliseconds above ``MS_THRESHOLD``, as an aware UTC ``datetime``."""
    try:
        if not math.isfinite(number):
            return None
        seconds = number / 1000 if number > MS_THRESHOLD else number
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # out of datetime's range (or of a float's)
        return None


def from_epoch_ms(value: int | str) -> datetime | None:
    """Epoch milliseconds (HubSpot's wire form for dates and times, also as digits) as an aware
    UTC ``datetime``; ``None`` when it is no number of milliseconds within the calendar."""
    try:
        milliseconds = int(value)
    except (TypeError, ValueError):  # not digits, or more digits than Python reads as one int
        return None
    return from_epoch(milliseconds / 1000) if abs(milliseconds) < 10**17 else None


def iso(moment: datetime) -> str:
    """An aware ``datetime`` as crmsync writes times: ``2026-03-02T09:14:52.318Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_iso(value: Any) -> str | None:
    """``parse(value)`` written by ``iso``; ``None`` when it does not parse."""
    moment = parse(value)
    return iso(moment) if moment is not None else None


def now_iso() -> str:
    """The current time as ``iso`` writes it."""
    return iso(datetime.now(UTC))


def epoch_ms(moment: datetime) -> int:
    """An aware ``datetime`` as whole epoch milliseconds (HubSpot's wire form)."""
    return int(round(moment.timestamp() * 1000))
