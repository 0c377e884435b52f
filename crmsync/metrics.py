"""Counters kept in Redis so that every web and worker process adds up (SPEC §4 /metrics).

Each counter is one field of one Redis hash: ``crmsync:metrics:<name>`` with the field
``label=value,label=value``. Writes are fire-and-forget ``HINCRBY`` calls; a metrics
failure never fails a request or a call.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.client import Pipeline

log = logging.getLogger(__name__)

PREFIX = "crmsync:metrics:"

# name -> (help text, prometheus type)
COUNTERS: dict[str, tuple[str, str]] = {
    "events_received_total": ("Webhook requests by event type and answer", "counter"),
    "duplicates_total": ("Events delivered again and not queued", "counter"),
    "calls_total": ("Calls by final sync state", "counter"),
    "crm_requests_total": ("CRM requests by CRM and HTTP status", "counter"),
    "rate_limit_waits_total": ("Waits for room in a shared CRM rate limit", "counter"),
    "rate_limit_wait_seconds_total": ("Seconds spent waiting for a shared CRM rate limit", "counter"),
    "credential_errors_total": ("CRM requests refused for bad credentials", "counter"),
}


def label_field(**labels: object) -> str:
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


class Metrics:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def incr(self, name: str, amount: float = 1, pipeline: Pipeline | None = None, **labels: object) -> None:
        target = pipeline if pipeline is not None else self._redis
        try:
            if isinstance(amount, float) and not amount.is_integer():
                target.hincrbyfloat(PREFIX + name, label_field(**labels), amount)
            else:
                target.hincrby(PREFIX + name, label_field(**labels), int(amount))
        except Exception:  # metrics must never break the product
            log.debug("metrics write failed", exc_info=True)

    def crm_request(self, crm: str, status: int | str) -> None:
        self.incr("crm_requests_total", crm=crm, status=status)

    def rate_limit_wait(self, limit: str, seconds: float) -> None:
        self.incr("rate_limit_waits_total", limit=limit)
        self.incr("rate_limit_wait_seconds_total", float(seconds), limit=limit)
