"""gunicorn settings for the web process, from the platform's environment.

Threads suit this endpoint: a request is mostly waiting on one Redis round trip. The app
is built once, in the master, before the workers fork (``preload_app``): the settings are
read and checked once per web process, and a bad one stops gunicorn with one line
(``create_app`` exits with it) instead of workers that fail to boot again and again.
Nothing connects while the app is built, so each worker opens its own Redis connections.
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
preload_app = True


# gunicorn's own error log as JSON lines, redacted like every crmsync log.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "crmsync.logs.json_formatter"}},
    "filters": {"redact": {"()": "crmsync.logs.RedactFilter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact"],
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
}
