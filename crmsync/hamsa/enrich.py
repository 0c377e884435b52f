"""Filling a call's missing details from Hamsa's conversation API (optional).

When ``HAMSA_API_KEY`` is set and the webhook left out the customer's number or the
duration, ``HamsaClient.conversation`` (``GET /v1/voice-agents/conversation/{id}``, the id
quoted) has them as ``callParams.userNumber`` and ``callDuration``. It is the sweep's
client: 429 and 5xx retried (here briefly: ``ATTEMPTS`` tries, waits of at most ``MAX_WAIT``
seconds, so the job stays well inside its timeout), every answer counted in ``/metrics``,
and a refused key shown in ``/readyz`` (``crmsync:credentials``, as the sweep does). A
failure here never fails the call: it syncs with what it has.
"""

from __future__ import annotations

import logging

from redis import Redis

from crmsync import phones
from crmsync.canonical import CallContext
from crmsync.errors import CredentialsError, CrmsyncError
from crmsync.hamsa.client import HamsaClient
from crmsync.metrics import CREDENTIALS_KEY, Metrics
from crmsync.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 10)  # seconds: connect, read
ATTEMPTS = 2  # tries
MAX_WAIT = 2  # seconds between the two tries at most
REFUSED_KEPT = 900  # seconds /readyz names a refused key after enrichment saw it


def enrich(context: CallContext, settings: Settings, redis: Redis | None = None) -> bool:
    """Fill ``customer_number``, ``duration_seconds`` and ``recording_url`` when missing.
    Returns True when Hamsa was asked. ``redis`` (optional) counts the requests and keeps a
    refused key for ``/readyz``."""
    call = context["call"]
    missing = not call.get("customer_number") or call.get("duration_seconds") is None
    if call.get("source") in ("reconcile", "backfill"):
        return False  # built from this very conversation answer: asking again tells nothing new
    if not (settings.hamsa_api_key and call.get("conversation_id") and missing):
        return False
    metrics = Metrics(redis) if redis is not None else None
    client = HamsaClient(
        settings.hamsa_api_key, settings.hamsa_base_url, metrics=metrics, attempts=ATTEMPTS, timeout=TIMEOUT,
        max_wait=MAX_WAIT,
    )  # fmt: skip
    try:
        with client:
            data = client.conversation(str(call["conversation_id"])) or {}
    except CredentialsError as exc:
        log.warning("Hamsa refused HAMSA_API_KEY; the call syncs without its details", extra={"call_id": call["id"]})
        if redis is not None:
            redis.hset(CREDENTIALS_KEY, "hamsa", str(exc))
            redis.expire(CREDENTIALS_KEY, REFUSED_KEPT)
        return True
    except CrmsyncError as exc:
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
