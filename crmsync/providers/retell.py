"""Retell AI: ``x-retell-signature`` and the ``{event, call}`` webhook body.

Signature (Retell's SDK, ``lib/webhook_auth.py``): ``x-retell-signature: v=<epoch ms>,d=<hex>``
where ``d = HMAC-SHA256(key=API key, msg=raw body + str(v))``, no separator; refused when
``v`` is more than 5 minutes from now.

Events: ``call_analyzed`` (the call with ``call_analysis``) is the event that syncs, as
``call.ended``; ``call_ended`` (the same call without the analysis) is recorded as
``retell.call_ended`` for the audit trail, and both are one call; ``call_started`` is
``call.started``; any other event is recorded as ``retell.<event>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.canonical import CanonicalEvent
from crmsync.providers import canonical as c
from crmsync.providers.signing import SignatureRefused, check_age, epoch_seconds, hex_hmac_matches, stamped_signatures

NAME = "retell"
TITLE = "Retell"
SETTING = "RETELL_API_KEY"
HEADER = "x-retell-signature"
TOLERANCE = 5 * 60  # seconds
_FORM = "v=<timestamp in ms>,d=<hex signature>"
_EVENTS = {"call_analyzed": "call.ended", "call_started": "call.started"}
_CHANNELS = {"phone_call": "phone", "web_call": "web"}
_STATUSES = {
    "dial_no_answer": "no_answer",
    "dial_busy": "busy",
    "dial_failed": "failed",
    "voicemail_reached": "voicemail",
    "error": "failed",
    "not_connected": "failed",
    "ended": "completed",
}


def verify(headers: Mapping[str, str], raw: bytes, secrets: Sequence[str], now: float | None = None) -> None:
    """Raise ``SignatureRefused`` unless one of ``secrets`` (API keys) signed ``raw``."""
    stamp, given = stamped_signatures(headers, HEADER, _FORM, "v", "d")
    check_age(epoch_seconds(stamp, HEADER, _FORM, milliseconds=True), TOLERANCE, HEADER, now)
    if not hex_hmac_matches(given, secrets, raw + stamp.encode()):
        raise SignatureRefused(
            f"The {HEADER} signature does not match: set {SETTING} to the Retell API key that has the webhook badge."
        )


def normalise(body: dict[str, Any], region: str, received_at: str | None = None) -> CanonicalEvent:
    """A Retell webhook body → the canonical event; ``InvalidEvent`` lists every problem."""
    problems = c.Problems()
    as_sent = c.first(c.text(body.get("event")), c.text(body.get("event_type")))
    if as_sent is None:
        problems.add("event", 'No event type: expected event (or event_type) such as "call_analyzed".')
    call = c.obj(body, "call", problems, required=True)
    call_id = c.identifier(body, "call.call_id", problems, "call.call_id") if isinstance(body.get("call"), dict) else ""
    problems.raise_if_any()
    event = _EVENTS.get(str(as_sent), f"{NAME}.{as_sent}")
    analysis = c.obj(body, "call.call_analysis", problems)
    problems.raise_if_any()
    direction = c.direction(call.get("direction"))
    customer, agent = c.parties(direction, call.get("from_number"), call.get("to_number"))
    started = c.epoch_iso(call.get("start_timestamp"))
    ended = c.epoch_iso(call.get("end_timestamp"))
    fields = {
        "agent_id": c.text(call.get("agent_id")),
        "agent_name": c.text(call.get("agent_name")),
        "direction": direction,
        "customer_number": customer,
        "agent_number": agent,
        "started_at": started,
        "ended_at": ended,
        "duration_seconds": c.seconds(call.get("duration_ms"), 0.001),
        "status": _status(call, analysis, event),
        "recording_url": c.text(call.get("recording_url")),
        "channel": _CHANNELS.get(str(call.get("call_type")), c.text(call.get("call_type"))),
    }
    outcome = c.merged(
        call.get("retell_llm_dynamic_variables"),
        {
            key: analysis[key]
            for key in ("call_summary", "call_successful", "user_sentiment", "in_voicemail")
            if analysis.get(key) is not None
        },
        analysis.get("custom_analysis_data"),
    )
    return c.canonical_event(
        provider=NAME,
        call_id=call_id,
        event=event,
        as_sent=str(as_sent),
        timestamp=ended or started,
        call=fields,
        transcript=c.turns(call.get("transcript_object"), "role", "content"),
        outcome=outcome,
        raw=body,
        region=region,
        received_at=received_at,
    )


def _status(call: dict[str, Any], analysis: dict[str, Any], event: str) -> str | None:
    reason = str(call.get("disconnection_reason") or "").lower()
    if reason in _STATUSES:
        return _STATUSES[reason]
    if analysis.get("in_voicemail") is True:
        return "voicemail"
    status = str(call.get("call_status") or "").lower()
    if status in _STATUSES:
        return _STATUSES[status]
    if event == "call.ended" or event == f"{NAME}.call_ended":
        return "completed"
    return c.text(status)
