"""Bland: ``X-Webhook-Signature`` and the post-call webhook body (the call's details).

Signature (https://docs.bland.ai/tutorials/webhook-signing): ``X-Webhook-Signature`` is
``hex(HMAC-SHA256(secret, raw body))``. There is no timestamp, so a replayed delivery is
caught by the duplicate check on ``call_id``, not by the signature.

Events: the post-call body has no event type; it is ``call.ended``. ``call_length`` is in
minutes. A body with a ``category`` and none of the post-call fields (a live event) is
recorded as ``bland.<category>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.canonical import CanonicalEvent
from crmsync.providers import canonical as c
from crmsync.providers.signing import SignatureRefused, hex_bytes, hex_hmac_matches, required_header

NAME = "bland"
TITLE = "Bland"
SETTING = "BLAND_WEBHOOK_SECRET"
HEADER = "X-Webhook-Signature"
_FORM = "<hex HMAC-SHA256 of the body>"
_POST_CALL = ("call_length", "transcripts", "concatenated_transcript", "completed", "end_at", "answered_by")
_STATUSES = {
    "completed": "completed",
    "complete": "completed",
    "no-answer": "no_answer",
    "no_answer": "no_answer",
    "busy": "busy",
    "failed": "failed",
    "error": "failed",
    "voicemail": "voicemail",
}


def verify(headers: Mapping[str, str], raw: bytes, secrets: Sequence[str], now: float | None = None) -> None:
    """Raise ``SignatureRefused`` unless one of ``secrets`` signed ``raw`` (``now`` is unused: no timestamp)."""
    given = hex_bytes(required_header(headers, HEADER, _FORM), HEADER, _FORM)
    if not hex_hmac_matches([given], secrets, raw):
        raise SignatureRefused(f"The {HEADER} signature does not match: set {SETTING} to Bland's signing secret.")


def normalise(body: dict[str, Any], region: str, received_at: str | None = None) -> CanonicalEvent:
    """A Bland post-call body → the canonical event; ``InvalidEvent`` lists every problem."""
    problems = c.Problems()
    call_id = c.identifier(body, "call_id", problems, "call_id")
    category = c.text(body.get("category"))
    post_call = any(key in body for key in _POST_CALL)
    if not post_call and category is None:
        problems.add("body", f"No post-call fields: expected the call's details ({', '.join(_POST_CALL[:3])}, …).")
    if "variables" in body and not isinstance(body["variables"], dict | None):
        problems.add("variables", "must be a JSON object.")
    problems.raise_if_any()
    event = "call.ended" if post_call else f"{NAME}.{category}"
    direction = _direction(body.get("inbound"))
    customer, agent = c.parties(direction, body.get("from"), body.get("to"))
    analysis = body.get("analysis") if isinstance(body.get("analysis"), dict) else None
    ended = c.epoch_iso(body.get("end_at"))
    fields = {
        "agent_id": c.text(c.first(body.get("pathway_id"), body.get("persona_id"))),
        "direction": direction,
        "customer_number": customer,
        "agent_number": agent,
        "started_at": c.epoch_iso(c.first(body.get("started_at"), body.get("created_at"))),
        "ended_at": ended,
        "duration_seconds": c.seconds(body.get("call_length"), 60),  # minutes
        "status": _status(body) if post_call else None,
        "recording_url": c.text(body.get("recording_url")),
        "channel": "phone",
    }
    transcript = c.turns(body.get("transcripts"), "user", "text") or c.lines(body.get("concatenated_transcript"))
    outcome = c.merged(
        body.get("variables") if isinstance(body.get("variables"), dict) else None,
        {"summary": body["summary"]} if c.text(body.get("summary")) else None,
        analysis,
    )
    return c.canonical_event(
        provider=NAME,
        call_id=call_id,
        event=event,
        as_sent="post_call" if post_call else str(category),
        timestamp=ended,
        call=fields,
        transcript=transcript,
        outcome=outcome,
        raw=body,
        region=region,
        received_at=received_at,
    )


def _direction(inbound: Any) -> str | None:
    if isinstance(inbound, str):
        inbound = {"true": True, "false": False}.get(inbound.strip().lower())
    if isinstance(inbound, bool):
        return "inbound" if inbound else "outbound"
    return None


def _status(body: dict[str, Any]) -> str:
    if str(body.get("answered_by") or "").lower() == "voicemail":
        return "voicemail"
    status = str(body.get("status") or "").strip().lower()
    if status in _STATUSES:
        return _STATUSES[status]
    if body.get("error_message") and body.get("completed") is not True:
        return "failed"
    return "completed"
