"""Filling a call's missing details from Hamsa's conversation API (optional).

When ``HAMSA_API_KEY`` is set and the webhook left out the customer's number or the
duration, ``GET /v1/voice-agents/conversation/{conversationId}`` (header
``Authorization: Token <key>``) has them as ``callParams.userNumber`` and
``callDuration``. A failure here never fails the call: it syncs with what it has.
"""

from __future__ import annotations

import logging

import requests

from crmsync import phones
from crmsync.canonical import CallContext
from crmsync.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 10)  # seconds: connect, read


def enrich(context: CallContext, settings: Settings, session: requests.Session | None = None) -> bool:
    """Fill ``customer_number``, ``duration_seconds`` and ``recording_url`` when missing.
    Returns True when Hamsa was asked."""
    call = context["call"]
    missing = not call.get("customer_number") or call.get("duration_seconds") is None
    if call.get("source") in ("reconcile", "backfill"):
        return False  # built from this very conversation answer: asking again tells nothing new
    if not (settings.hamsa_api_key and call.get("conversation_id") and missing):
        return False
    url = f"{settings.hamsa_base_url}/v1/voice-agents/conversation/{call['conversation_id']}"
    try:
        http = session or requests
        response = http.get(url, headers={"Authorization": f"Token {settings.hamsa_api_key}"}, timeout=TIMEOUT)
        response.raise_for_status()
        data = (response.json() or {}).get("data") or {}
    except (requests.RequestException, ValueError) as exc:
        log.warning("Hamsa conversation API unavailable", extra={"call_id": call["id"], "error": type(exc).__name__})
        return True
    params = data.get("callParams") or {}
    if not call.get("customer_number") and params.get("userNumber"):
        call["customer_number"] = phones.normalise(str(params["userNumber"]), settings.default_region)
    if call.get("duration_seconds") is None and isinstance(data.get("callDuration"), int | float):
        call["duration_seconds"] = round(data["callDuration"])
    if not call.get("recording_url") and data.get("mediaUrl"):
        call["recording_url"] = data["mediaUrl"]
    return True
