"""Logs are JSON and never carry a full phone number or a token, extras included."""

import io
import json
import logging

from crmsync.logs import configure, redact


def test_messages_and_extras_are_redacted():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure("INFO", stream)
    try:
        logging.getLogger("crmsync.test").warning(
            "calling +966 50 123 4567 with Bearer sk_live_abc123xyz789",
            extra={"problem": "stored as 00966501234567", "call_id": "call-1"},
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(stream.getvalue())
    assert line["call_id"] == "call-1" and line["level"] == "WARNING"
    text = stream.getvalue()
    for secret in ("501234567", "sk_live_abc123xyz789"):
        assert secret not in text
    assert "+9665*****567" in line["message"]


def test_dates_and_ids_are_left_alone():
    text = "at 2026-03-02T09:14:52Z call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"
    assert redact(text) == text
