"""Sign a body the way each platform documents it (``reference/voice-providers.md``),
written out with ``hmac``/``hashlib`` here, never with crmsync's own code."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
SECRETS = {
    "retell": "key_e2e_retell_5f1c2a",
    "vapi": "vapi-e2e-server-secret-77",
    "elevenlabs": "wsec_e2e_elevenlabs_9d3e",
    "bland": "bland-e2e-signing-secret-41",
}
ENV = {
    "RETELL_API_KEY": f"key_rotated_old,{SECRETS['retell']}",
    "VAPI_WEBHOOK_SECRET": SECRETS["vapi"],
    "ELEVENLABS_WEBHOOK_SECRET": SECRETS["elevenlabs"],
    "BLAND_WEBHOOK_SECRET": SECRETS["bland"],
}
# Vapi in its HMAC mode (Vapi's default plan: hex SHA-256 of "{timestamp}.{body}").
ENV_VAPI_HMAC = {**ENV, "VAPI_AUTH": "hmac"}
# The final event of each platform, as its fixture.
FINAL = {
    "retell": "retell_call_analyzed",
    "vapi": "vapi_end_of_call_report",
    "elevenlabs": "elevenlabs_post_call_transcription",
    "bland": "bland_post_call",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def call_id(platform: str) -> str:
    body = json.loads(fixture(FINAL[platform]))
    return {
        "retell": lambda: body["call"]["call_id"],
        "vapi": lambda: body["message"]["call"]["id"],
        "elevenlabs": lambda: body["data"]["conversation_id"],
        "bland": lambda: body["call_id"],
    }[platform]()


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed(
    platform: str, body: bytes, secret: str | None = None, at: float | None = None, *, vapi_hmac: bool = False
) -> dict[str, str]:
    """The headers the platform sends with ``body``, signed with ``secret`` at time ``at``
    (Vapi: its legacy verbatim secret, or with ``vapi_hmac`` an HMAC credential's headers)."""
    key = SECRETS[platform] if secret is None else secret
    now = time.time() if at is None else at
    if platform == "retell":
        ms = str(int(now * 1000))
        return {"X-Retell-Signature": f"v={ms},d={_hex(key, body + ms.encode())}"}
    if platform == "elevenlabs":
        ts = str(int(now))
        return {"ElevenLabs-Signature": f"t={ts},v0={_hex(key, ts.encode() + b'.' + body)}"}
    if platform == "bland":
        return {"X-Webhook-Signature": _hex(key, body)}
    if vapi_hmac:
        ts = str(int(now))
        return {"x-signature": _hex(key, ts.encode() + b"." + body), "x-timestamp": ts}
    return {"X-Vapi-Secret": key}  # Vapi's legacy server secret, verbatim


# A request each platform refuses although its body is untouched: too old (where the
# scheme signs a time; Vapi's legacy secret and Bland sign none), or signed with another secret.
STALE = {"retell": 5 * 60 + 30, "elevenlabs": 30 * 60 + 30, "vapi": 5 * 60 + 30}  # seconds ago (Vapi: HMAC)
