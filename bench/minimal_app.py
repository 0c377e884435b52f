"""The yardstick for ingest: a Flask app that parses the JSON body and answers 200, nothing else.

It is served by gunicorn with crmsync's own gunicorn config, so the difference between the
two apps' figures is what crmsync's receiver does per request (auth, normalisation, Redis).
"""

from __future__ import annotations

import json

from flask import Flask, Response, request


def create_app() -> Flask:
    app = Flask("bench-minimal")

    @app.post("/webhooks/hamsa")
    def receive() -> Response:
        try:
            json.loads(request.get_data(cache=False))
        except ValueError:
            return Response('{"error":"invalid_json"}', status=400, mimetype="application/json")
        return Response('{"status":"ok"}', status=200, mimetype="application/json")

    return app
