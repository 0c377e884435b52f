"""Structured JSON logs that never carry a token, a full phone number or a transcript.

Code logs ids and masked numbers only; ``RedactFilter`` is the second line of defence:
it masks anything that looks like a phone number and drops bearer tokens from every
message before it is written. Call ids travel as the ``call_id`` extra.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

from crmsync.phones import mask

_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s().-]?\d){8,14}(?![\w-])")
_BEARER = re.compile(r"(?i)(bearer|token)\s+[A-Za-z0-9._~+/=-]{6,}")


def redact(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m[1]} [redacted]", text)
    return _PHONE.sub(lambda m: mask(re.sub(r"[^\d+]", "", m[0])), text)


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(vars(record).items()):  # the extras become JSON fields too
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            # Vendor exception texts may contain request URLs with numbers (SOSL): keep the type only.
            record.exc_text = f"{type(record.exc_info[1]).__name__}: {redact(str(record.exc_info[1]))}"
            record.exc_info = None
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(level: str = "INFO", stream: object = None) -> None:
    """JSON lines on stderr for every logger (ours, RQ's, gunicorn's), redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(json_formatter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # RQ logs job arguments and results at INFO; ours carry ids only, but keep its noise down.
    logging.getLogger("rq.worker").setLevel(max(logging.getLevelName(level), logging.INFO))
