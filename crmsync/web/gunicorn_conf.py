"""gunicorn settings for the web process, from the platform's environment.

Threads suit this endpoint: a request is mostly waiting on one Redis round trip.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30  # seconds
graceful_timeout = 25  # seconds: inside the platform's 30 s between SIGTERM and SIGKILL
keepalive = 5  # seconds
accesslog = None  # crmsync logs each webhook itself, without tokens
errorlog = "-"


def on_starting(server: object) -> None:
    """Check the settings in the master, so a bad one stops the process with one line
    instead of workers that fail to boot again and again."""
    import sys

    from crmsync.errors import SettingsError
    from crmsync.settings import Settings

    try:
        Settings.from_env().require_webhook_auth()
    except SettingsError as exc:
        sys.stderr.write(f"crmsync web: {exc}\n")
        sys.exit(1)


# gunicorn's own error log as JSON lines, redacted like every crmsync log.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "crmsync.logs.json_formatter"}},
    "filters": {"redact": {"()": "crmsync.logs.RedactFilter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"],
                   "stream": "ext://sys.stderr"},
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
}
