"""``/healthz``, ``/readyz`` and ``/metrics`` (SPEC §4)."""

from __future__ import annotations

import hmac
import json

from flask import Blueprint, Response, request
from redis.exceptions import RedisError

from crmsync import metrics
from crmsync.hamsa import sweep
from crmsync.web.state import state

bp = Blueprint("status", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@bp.get("/readyz")
def readyz() -> Response:
    """200 when Redis answers, the mapping is loaded and neither a CRM nor Hamsa refuses the
    credentials; ``warnings`` say what the reconciliation sweeps found wrong (no 503)."""
    web = state()
    problems = []
    try:
        web.redis.ping()
    except RedisError as exc:
        problems.append(f"redis is unreachable ({type(exc).__name__})")
    if not web.subscriptions.loaded:
        problems.append(web.subscriptions.problem or "the mapping is not loaded")
    try:
        problems += metrics.credential_problems(web.redis)
    except RedisError:
        pass
    try:
        warnings = sweep.warnings(web.redis) if web.settings.sweeps_on else []
    except RedisError:
        warnings = []
    body = {
        "status": "ready" if not problems else "not_ready",
        "problems": problems,
        "warnings": warnings,
        "events": list(web.subscriptions.events),
        "mappings": web.subscriptions.routes,  # the routing table: which file serves which calls
    }
    return Response(json.dumps(body), status=200 if not problems else 503, mimetype="application/json")


@bp.get("/metrics")
def metrics_text() -> Response:
    web = state()
    token = web.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            body = json.dumps({"error": "unauthorized", "message": "/metrics needs the METRICS_TOKEN bearer."})
            return Response(
                body, status=401, mimetype="application/json", headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
            )
    try:
        text = metrics.render(web.redis)
    except RedisError:
        body = json.dumps({"error": "unavailable", "message": "Redis is unreachable; no figures."})
        return Response(body, status=503, mimetype="application/json", headers={"Retry-After": "5"})
    return Response(text, mimetype="text/plain; version=0.0.4")
