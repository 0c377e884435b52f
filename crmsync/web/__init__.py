"""The web process: receives Hamsa webhooks and answers within milliseconds (SPEC §4).

``create_app()`` is what gunicorn serves. Nothing connects to Redis at import time.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from crmsync import events, logs, store
from crmsync.errors import SettingsError
from crmsync.events.normalise import now_iso
from crmsync.metrics import Metrics
from crmsync.queue import Ingest
from crmsync.settings import MAX_BODY_BYTES, Settings
from crmsync.web.auth import AuthProblem, check_bearer
from crmsync.web.status import register_status_routes
from crmsync.web.subscriptions import Subscriptions

log = logging.getLogger("crmsync.web")

RETRY_AFTER = "5"  # seconds Hamsa should wait after a 503


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": code, "message": message, **extra}
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="crmsync"'
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def ok(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=200, mimetype="application/json")


def create_app(config: Settings | None = None, redis: Redis | None = None) -> Flask:
    """Build the web app. ``config`` defaults to the environment; a bad setting stops the
    process with one line naming the variable."""
    try:
        settings = config or Settings.from_env()
        settings.require_webhook_auth()
    except SettingsError as exc:
        raise SystemExit(f"crmsync web: {exc}") from None
    if config is None:
        logs.configure(settings.log_level)
    if settings.webhook_auth == "none":
        log.warning("WEBHOOK_AUTH=none: webhooks are accepted without a token (local development only)")

    app = Flask("crmsync")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    client = redis or store.redis_client(settings)
    ingest = Ingest(client, settings.dedupe_ttl)
    subscriptions = Subscriptions(settings)
    app.extensions["crmsync"] = {"settings": settings, "redis": client, "subscriptions": subscriptions}

    def source() -> str:
        # The platform's router appends the address it saw; earlier entries are the client's word.
        forwarded = request.headers.get("X-Forwarded-For", "")
        return forwarded.split(",")[-1].strip() or (request.remote_addr or "?")

    def refuse(status: int, code: str, message: str, **extra: Any) -> Response:
        if status not in (401, 403):  # an unauthenticated request writes nothing, not even a count
            Metrics(client).incr("events_received_total", answer=code, event="unknown")
        log.warning(
            "webhook refused",
            extra={"status": status, "reason": code, "source": source(), "call_id": g.get("call_id")},
        )
        return error(status, code, message, **extra)

    @app.post("/webhooks/hamsa")
    def receive() -> Response:
        started = time.perf_counter()
        if request.headers.get("X-Forwarded-Proto", "").lower() == "http":
            return refuse(403, "https_required", "Send webhooks over https; plain http is refused.")
        if settings.webhook_auth == "bearer":
            try:
                check_bearer(request.headers.get("Authorization"), settings.webhook_tokens)
            except AuthProblem as problem:
                return refuse(401, "unauthorized", str(problem))
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return refuse(413, "too_large", f"The body is over the {MAX_BODY_BYTES // 1048576} MiB limit.")
        raw = request.get_data(cache=False)
        try:
            body = json.loads(raw)
        except ValueError:
            return refuse(400, "invalid_json", "The body is not valid JSON.")
        if not isinstance(body, dict):
            return refuse(400, "invalid_json", "The body must be a JSON object.")
        try:
            event = events.normalise(body, settings.default_region)
        except events.InvalidEvent as invalid:
            return quarantine(raw, invalid.details)
        g.call_id = event["call_id"]
        dedupe = events.dedupe_key(event)
        try:
            accepted = ingest.store(event, dedupe, enqueue=subscriptions.wants(event["event"]))
        except RedisError:
            log.error("redis unavailable: event not stored", extra={"call_id": event["call_id"]})
            return error(503, "unavailable", "The event could not be stored; retry later.")
        answer = {"status": "accepted" if accepted else "duplicate", "call_id": event["call_id"],
                  "event": event["event"]}
        log.info(
            "webhook " + answer["status"],
            extra={"call_id": event["call_id"], "event": event["event"],
                   "ms": round((time.perf_counter() - started) * 1000, 2)},
        )
        return ok(answer)

    def quarantine(raw: bytes, details: dict[str, list[str]]) -> Response:
        qid = uuid.uuid4().hex[:16]
        record: dict[str | bytes, str | bytes] = {
            "id": qid,
            "received_at": now_iso(),
            "source": source(),
            "details": json.dumps(details),
            "body": raw,
        }
        try:
            pipe = client.pipeline()
            pipe.hset(store.quarantine_key(qid), mapping=record)  # type: ignore[arg-type]
            pipe.expire(store.quarantine_key(qid), store.QUARANTINE_TTL)
            pipe.zadd(store.QUARANTINE_INDEX, {qid: time.time()})
            pipe.zcard(store.QUARANTINE_INDEX)
            kept = pipe.execute()[-1]
            if kept > store.QUARANTINE_MAX:  # bounded: the oldest bodies go first
                oldest = client.zpopmin(store.QUARANTINE_INDEX, int(kept) - store.QUARANTINE_MAX)
                client.delete(*(store.quarantine_key(member.decode()) for member, _ in oldest))  # type: ignore[union-attr,str-unpack]
        except RedisError:
            return error(503, "unavailable", "The body could not be kept for review; retry later.")
        return refuse(
            422,
            "invalid_event",
            "The body is not a recognisable Hamsa event; it was kept in quarantine for an admin.",
            details=details,
            quarantine_id=qid,
        )

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        return refuse(413, "too_large", f"The body is over the {MAX_BODY_BYTES // 1048576} MiB limit.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, code, exc.description or exc.name or "Error.")

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.error("unexpected error", extra={"error": type(exc).__name__, "call_id": g.get("call_id")})
        return error(500, "internal", "Something went wrong on our side; retry later.")

    register_status_routes(app)
    return app
