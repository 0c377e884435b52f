"""Vapi: its three ways of authenticating a server message, and the ``{message: …}`` body.

Authentication (https://docs.vapi.ai/server-url/server-authentication), as ``VAPI_AUTH`` says:

- ``secret``: the legacy ``server.secret`` arrives verbatim in ``x-vapi-secret``;
- ``bearer``: a Bearer Token credential, ``Authorization: Bearer <token>`` (or the header
  the credential names, with or without the ``Bearer`` prefix);
- ``hmac``: an HMAC credential: the signature of ``payload_format`` (``{timestamp}.{body}``
  by default) in ``signature_header``, hex or base64, after an optional prefix; the
  timestamp in ``timestamp_header`` (epoch seconds, or milliseconds) within ``tolerance``.

Events: ``end-of-call-report`` is the event that syncs, as ``call.ended``; every other
message type is recorded as ``vapi.<type>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.canonical import CanonicalEvent
from crmsync.provider_settings import ProviderSettings, VapiHmac
from crmsync.providers import canonical as c
from crmsync.providers.signing import (
    SignatureRefused,
    check_age,
    epoch_seconds,
    equals_any,
    hmac_digest,
    matches_any,
    required_header,
)

NAME = "vapi"
TITLE = "Vapi"
SETTING = "VAPI_WEBHOOK_SECRET"
SECRET_HEADER = "x-vapi-secret"
_PLACEHOLDER = re.compile(r"(\{timestamp\}|\{body\}|\{method\})")
_FAILED = ("error", "fail", "unavailable", "invalid")
_STATUSES = {
    "customer-did-not-answer": "no_answer",
    "customer-busy": "busy",
    "voicemail": "voicemail",
    "customer-did-not-give-microphone-permission": "failed",
    "twilio-failed-to-connect-call": "failed",
}


def verify(headers: Mapping[str, str], raw: bytes, settings: ProviderSettings, now: float | None = None) -> None:
    """Raise ``SignatureRefused`` unless the request carries one of ``VAPI_WEBHOOK_SECRET``'s values."""
    secrets = settings.vapi_secrets
    if settings.vapi_auth == "hmac":
        _verify_hmac(headers, raw, secrets, settings.vapi_hmac, now)
        return
    if settings.vapi_auth == "bearer":
        name = settings.vapi_bearer_header
        value = required_header(headers, name, "Bearer <token>")
        scheme, _, rest = value.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else value
        if not token or (name.lower() == "authorization" and scheme.lower() != "bearer"):
            raise SignatureRefused(f"The {name} header is not in the expected form Bearer <token>.")
        if not equals_any(token, secrets):
            raise SignatureRefused(f"The {name} token is not accepted: set {SETTING} to the credential's token.")
        return
    given = required_header(headers, SECRET_HEADER, "the assistant's server secret")
    if not equals_any(given, secrets):
        raise SignatureRefused(f"The {SECRET_HEADER} value is not accepted: set {SETTING} to the server secret.")


def _verify_hmac(
    headers: Mapping[str, str], raw: bytes, secrets: Sequence[str], plan: VapiHmac, now: float | None
) -> None:
    form = f"{plan.prefix}<{plan.encoding} {plan.algorithm} signature>"
    value = required_header(headers, plan.signature_header, form)
    if plan.prefix:
        if not value.startswith(plan.prefix):
            raise SignatureRefused(f"The {plan.signature_header} header is not in the expected form {form}.")
        value = value[len(plan.prefix) :]
    given = _decode(value.strip(), plan, form)
    stamp = ""
    if plan.signs_timestamp:
        stamp = required_header(headers, plan.timestamp_header, "the epoch time of signing")
        signed_at = epoch_seconds(stamp, plan.timestamp_header, "<epoch seconds>", milliseconds=None)
        if plan.tolerance:
            check_age(signed_at, plan.tolerance, plan.timestamp_header, now)
    values = {"{timestamp}": stamp.encode(), "{body}": raw, "{method}": b"POST"}
    message = b"".join(values.get(part, part.encode()) for part in _PLACEHOLDER.split(plan.payload_format))
    if not matches_any([given], secrets, lambda secret: hmac_digest(secret, message, plan.algorithm)):
        raise SignatureRefused(
            f"The {plan.signature_header} signature does not match: set {SETTING} to the HMAC credential's secret "
            "and the VAPI_HMAC_* settings to its plan."
        )


def _decode(value: str, plan: VapiHmac, form: str) -> bytes:
    try:
        decoded = bytes.fromhex(value) if plan.encoding == "hex" else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        decoded = b""
    if len(decoded) != hashlib.new(plan.algorithm).digest_size:
        raise SignatureRefused(f"The {plan.signature_header} header is not in the expected form {form}.")
    return decoded


def normalise(body: dict[str, Any], region: str, received_at: str | None = None) -> CanonicalEvent:
    """A Vapi server message → the canonical event; ``InvalidEvent`` lists every problem."""
    problems = c.Problems()
    message = c.obj(body, "message", problems, required=True)
    as_sent = c.text(message.get("type"))
    if message and as_sent is None:
        problems.add("message.type", 'No event type: expected message.type such as "end-of-call-report".')
    call = c.obj(body, "message.call", problems, required=bool(message))
    call_id = (
        c.identifier(body, "message.call.id", problems, "message.call.id")
        if isinstance(message.get("call"), dict)
        else ""
    )
    artifact = c.obj(body, "message.artifact", problems)
    analysis = c.obj(body, "message.analysis", problems)
    problems.raise_if_any()
    event = "call.ended" if as_sent == "end-of-call-report" else f"{NAME}.{as_sent}"
    kind = str(call.get("type") or "")
    started = c.epoch_iso(c.first(message.get("startedAt"), call.get("startedAt")))
    ended = c.epoch_iso(c.first(message.get("endedAt"), call.get("endedAt")))
    fields = {
        "agent_id": c.text(c.first(call.get("assistantId"), c.get(message, "assistant.id"))),
        "agent_name": c.text(c.get(message, "assistant.name")),
        "direction": {"inboundPhoneCall": "inbound", "outboundPhoneCall": "outbound"}.get(kind),
        "customer_number": c.first(c.get(call, "customer.number"), c.get(message, "customer.number")),
        "agent_number": c.first(c.get(message, "phoneNumber.number"), c.get(call, "phoneNumber.number")),
        "started_at": started,
        "ended_at": ended,
        "duration_seconds": c.seconds(message.get("durationSeconds")),
        "status": _status(c.first(message.get("endedReason"), call.get("endedReason")), event),
        "recording_url": c.text(c.first(artifact.get("recordingUrl"), message.get("recordingUrl"))),
        "channel": "web" if kind == "webCall" else "phone" if kind else None,
    }
    transcript = c.turns(artifact.get("messages"), "role", "message")
    if not transcript:
        transcript = c.lines(c.first(artifact.get("transcript"), message.get("transcript")))
    outcome = c.merged(
        {key: analysis[key] for key in ("summary", "successEvaluation") if analysis.get(key) is not None},
        _outputs(artifact.get("structuredOutputs")),
        analysis.get("structuredData"),
    )
    return c.canonical_event(
        provider=NAME,
        call_id=call_id,
        event=event,
        as_sent=str(as_sent),
        timestamp=c.epoch_iso(message.get("timestamp")) or ended or started,
        call=fields,
        transcript=transcript,
        outcome=outcome,
        raw=body,
        region=region,
        received_at=received_at,
    )


def _status(reason: Any, event: str) -> str | None:
    text = str(reason or "").strip().lower()
    if text in _STATUSES:
        return _STATUSES[text]
    if any(word in text for word in _FAILED):
        return "failed"
    return "completed" if event == "call.ended" else None


def _outputs(value: Any) -> dict[str, Any] | None:
    """``structuredOutputs`` ``{id: {name, result}}`` → ``{name: result}``."""
    if not isinstance(value, dict):
        return None
    found = {}
    for key, item in value.items():
        if isinstance(item, dict) and "result" in item:
            found[str(item.get("name") or key)] = item["result"]
    return found
