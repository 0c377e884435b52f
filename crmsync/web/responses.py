"""JSON answers (SPEC §4: every error has a stable ``error`` code and a one-sentence
``message``), and the app-wide error handlers, so that no answer is an HTML page."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from crmsync.web.state import state

log = logging.getLogger("crmsync.web")

RETRY_AFTER = "5"  # seconds a sender should wait after a 503


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": code, "message": message, **extra}
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="crmsync"'
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def ok(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status=200, mimetype="application/json")


def source() -> str:
    """The sender's address: the platform's router appends the one it saw; earlier
    ``X-Forwarded-For`` entries are the client's word."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.split(",")[-1].strip() or (request.remote_addr or "?")


def refuse(status: int, code: str, message: str, **extra: Any) -> Response:
    """A refused webhook: logged with the reason and the source (never a token) and,
    unless unauthenticated (401, 403: such a request writes nothing), counted."""
    if status not in (401, 403):
        state().metrics.incr("events_received_total", answer=code, event="unknown")
    log.warning(
        "webhook refused",
        extra={"status": status, "reason": code, "source": source(), "call_id": g.get("call_id")},
    )
    return error(status, code, message, **extra)


def register_error_handlers(app: Flask) -> None:
    """Unknown routes, wrong methods and unexpected errors answer JSON too."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, code, exc.description or exc.name or "Error.")

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.error("unexpected error", extra={"error": type(exc).__name__, "call_id": g.get("call_id")})
        return error(500, "internal", "Something went wrong on our side; retry later.")
