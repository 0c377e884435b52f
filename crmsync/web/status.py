"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import hmac
import json

from flask import Flask, Response, request
from redis.exceptions import RedisError

from crmsync import metrics


def register_status_routes(app: Flask) -> None:
    state = app.extensions["crmsync"]

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(json.dumps({"status": "ok"}), mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        problems = []
        try:
            state["redis"].ping()
        except RedisError as exc:
            problems.append(f"redis is unreachable ({type(exc).__name__})")
        subscriptions = state["subscriptions"]
        if not subscriptions.loaded:
            problems.append(subscriptions.problem)
        try:
            problems += metrics.credential_problems(state["redis"])
        except RedisError:
            pass
        body = {"status": "ready" if not problems else "not_ready", "problems": problems,
                "events": list(subscriptions.events)}
        return Response(json.dumps(body), status=200 if not problems else 503, mimetype="application/json")

    @app.get("/metrics")
    def metrics_text() -> Response:
        token = state["settings"].metrics_token
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                body = json.dumps({"error": "unauthorized", "message": "/metrics needs the METRICS_TOKEN bearer."})
                return Response(body, status=401, mimetype="application/json",
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        try:
            text = metrics.render(state["redis"])
        except RedisError:
            body = json.dumps({"error": "unavailable", "message": "Redis is unreachable; no figures."})
            return Response(body, status=503, mimetype="application/json", headers={"Retry-After": "5"})
        return Response(text, mimetype="text/plain; version=0.0.4")
