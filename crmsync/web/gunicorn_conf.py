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
