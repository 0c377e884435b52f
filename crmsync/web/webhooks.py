"""``POST /webhooks/<platform>``: the answers of SPEC §4.

Every platform's view does only its own authentication, then hands the raw bytes to
``accept``, which owns everything else the table of §4 says: 400 for a body that is no
JSON object, 422 with the body kept in quarantine when it is no recognisable event, 503
when Redis cannot store it, and 200 ``accepted`` or ``duplicate``. A new platform adds its
normaliser to ``quarantine.NORMALISERS`` (so that a quarantined body of its own can be
replayed) and a view here: check the signature over ``read_body()``, then ``accept``.
The https check (403 before the body is read) and the 413 answer cover every view.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, g, request
from redis.exceptions import RedisError
from werkzeug.exceptions import RequestEntityTooLarge

from crmsync import events, quarantine
from crmsync.providers.registry import PLATFORMS, without_secrets
from crmsync.providers.signing import SignatureRefused
from crmsync.settings import MAX_BODY_BYTES
from crmsync.web.auth import AuthProblem, check_bearer
from crmsync.web.responses import error, ok, refuse, source
from crmsync.web.state import WebState, state

log = logging.getLogger("crmsync.web")

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.before_request
def https_only() -> Response | None:
    if request.headers.get("X-Forwarded-Proto", "").lower() == "http":
        return refuse(403, "https_required", "Send webhooks over https; plain http is refused.")
    return None


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> Response:
    return refuse(413, "too_large", f"The body is over the {MAX_BODY_BYTES // 1048576} MiB limit.")


def read_body() -> bytes:
    """The raw body; raises ``RequestEntityTooLarge`` (answered 413) over the limit."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    return request.get_data(cache=False)


def accept(raw: bytes, provider: str, started: float, web: WebState | None = None) -> Response:
    """Parse, normalise (``quarantine.NORMALISERS[provider]``) and store one authenticated
    body; ``started`` is the request's ``time.perf_counter()``, for the log, ``web`` the state the
    view already looked up (once per request)."""
    web = web or state()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return refuse(400, "invalid_json", "The body is not valid JSON.")
    if not isinstance(body, dict):
        return refuse(400, "invalid_json", "The body must be a JSON object.")
    try:
        event = quarantine.NORMALISERS[provider](body, web.settings.default_region)
    except events.InvalidEvent as invalid:
        return keep(raw, invalid.details, provider, web)
    g.call_id = event["call_id"]
    try:
        accepted = web.ingest.store(event, events.dedupe_key(event), enqueue=web.subscriptions.wants(event["event"]))
    except RedisError:
        log.error("redis unavailable: event not stored", extra={"call_id": event["call_id"]})
        return error(503, "unavailable", "The event could not be stored; retry later.")
    answer = {"status": "accepted" if accepted else "duplicate", "call_id": event["call_id"], "event": event["event"]}
    log.info(
        "webhook " + answer["status"],
        extra={
            "call_id": event["call_id"],
            "event": event["event"],
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    return ok(answer)


def keep(raw: bytes, details: dict[str, list[str]], provider: str, web: WebState) -> Response:
    """422: the body is kept for an admin (``crmsync quarantine``); 503 if it cannot be."""
    title = PLATFORMS[provider].title if provider in PLATFORMS else "Hamsa"
    try:
        qid = quarantine.keep(web.redis, raw, details, source(), provider)
    except RedisError:
        return error(503, "unavailable", "The body could not be kept for review; retry later.")
    return refuse(
        422,
        "invalid_event",
        f"The body is not a recognisable {title} event; it was kept in quarantine for an admin.",
        details=details,
        quarantine_id=qid,
    )


@bp.post("/hamsa")
def hamsa() -> Response:
    """Hamsa sends ``Authorization: Bearer <token>`` (``WEBHOOK_TOKENS``, or none with
    ``WEBHOOK_AUTH=none``)."""
    started = time.perf_counter()
    web = state()
    settings = web.settings
    if settings.webhook_auth == "bearer":
        try:
            check_bearer(request.headers.get("Authorization"), settings.webhook_tokens)
        except AuthProblem as problem:
            return refuse(401, "unauthorized", str(problem))
    return accept(read_body(), "hamsa", started, web)


@bp.post("/<platform>")
def other_platform(platform: str) -> Response:
    """Retell, Vapi, ElevenLabs and Bland: each platform's own signature over the raw bytes
    (``crmsync.providers``) instead of the bearer token; 404 while its setting is unset.
    Configured secrets are taken out of the body before it is parsed or kept."""
    started = time.perf_counter()
    web = state()
    settings = web.settings.providers
    chosen = PLATFORMS.get(platform)
    if chosen is None or not chosen.enabled(settings):
        return error(404, "not_found", "No webhook is configured at this address.")
    raw = read_body()
    try:
        chosen.verify(dict(request.headers), raw, settings, None)
    except SignatureRefused as problem:
        return refuse(401, "unauthorized", str(problem))
    return accept(without_secrets(raw, settings), platform, started, web)
