"""The web process: receives webhooks and answers within milliseconds (SPEC §4).

``create_app()`` is what gunicorn serves: it reads and checks the settings once, builds
the per-process state (``web/state.py``) and registers the blueprints: ``webhooks``
(``/webhooks/hamsa``) and ``status`` (``/healthz``, ``/readyz``, ``/metrics``), and ``console``
(``/console``) while ``CONSOLE_PASSWORD`` is set. Nothing
connects to Redis at import time or while the app is built.
"""

from __future__ import annotations

import logging

from flask import Flask
from redis import Redis

from crmsync import logs
from crmsync.errors import SettingsError
from crmsync.settings import MAX_BODY_BYTES, Settings
from crmsync.web import status, webhooks
from crmsync.web.console import register_console
from crmsync.web.responses import register_error_handlers
from crmsync.web.state import WebState

log = logging.getLogger("crmsync.web")


def create_app(config: Settings | None = None, redis: Redis | None = None) -> Flask:
    """Build the web app. ``config`` defaults to the environment (and then configures the
    logs); a bad setting stops the process with one line naming the variable."""
    try:
        settings = config or Settings.from_env()
        settings.require_webhook_auth()
        console = settings.require_console()
    except SettingsError as exc:
        raise SystemExit(f"crmsync web: {exc}") from None
    if config is None:
        logs.configure(settings.log_level)
    if settings.webhook_auth == "none":
        log.warning("WEBHOOK_AUTH=none: webhooks are accepted without a token (local development only)")

    app = Flask("crmsync")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["crmsync"] = WebState.build(settings, redis)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(status.bp)
    register_error_handlers(app)
    if console:
        register_console(app, app.extensions["crmsync"])
    return app
