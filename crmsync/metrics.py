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
    "hamsa_requests_total": ("Hamsa API requests by HTTP status (network: no answer)", "counter"),
    "reconcile_sweeps_total": ("Reconciliation sweeps by result (done, locked, failed, refused)", "counter"),
    "reconcile_calls_total": ("Calls of Hamsa's history by source and outcome (queued, received, skipped)", "counter"),
    "calls_logged_total": ("Calls logged in the CRM (their activity written), by CRM", "counter"),
    "sync_batches_total": ("Batches of calls synced together, by CRM", "counter"),
    "sync_batch_calls_total": ("Calls synced in batches, by CRM (over sync_batches_total: the mean batch)", "counter"),
    "webhooks_missed_total": ("Calls a sweep found that no webhook delivered (rising: deliveries fail)", "counter"),
}


def label_field(**labels: object) -> str:
    """``a=1,b=2``: the hash field one counter's labels are kept under (``,`` and ``=``
    inside a value, e.g. an unknown event type as sent, become ``_``)."""
    return ",".join(f"{k}={str(labels[k]).replace(',', '_').replace('=', '_')}" for k in sorted(labels))


def parse_field(field: str) -> dict[str, str]:
    """The labels of a hash field written by ``label_field``."""
    return dict(pair.split("=", 1) for pair in field.split(",") if "=" in pair)


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


CREDENTIALS_KEY = "crmsync:credentials"  # hash crm -> problem, set while a CRM refuses us


def credential_problems(redis: Redis) -> list[str]:
    raw: dict[bytes, bytes] = redis.hgetall(CREDENTIALS_KEY)  # type: ignore[assignment]
    return [f"{crm.decode()} refuses crmsync's credentials: {problem.decode()}" for crm, problem in raw.items()]


def snapshot(redis: Redis) -> dict[str, dict[str, float]]:
    """Every counter: name -> {label field -> value}, plus the queue depths."""
    pipe = redis.pipeline()
    for name in COUNTERS:
        pipe.hgetall(PREFIX + name)
    results = pipe.execute()
    figures: dict[str, dict[str, float]] = {}
    for name, raw in zip(COUNTERS, results, strict=True):
        figures[name] = {k.decode(): float(v) for k, v in raw.items()}
    figures["queue_depth"] = queue_depths(redis)
    return figures


def queue_depths(redis: Redis) -> dict[str, float]:
    from rq import Queue
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from crmsync.store import QUEUE_NAME

    queue = Queue(QUEUE_NAME, connection=redis)
    return {
        "state=queued": float(queue.count),
        "state=started": float(StartedJobRegistry(queue=queue).count),
        "state=scheduled": float(ScheduledJobRegistry(queue=queue).count),
        "state=failed": float(FailedJobRegistry(queue=queue).count),
    }


def render(redis: Redis) -> str:
    """The Prometheus text format."""
    lines: list[str] = []
    figures = snapshot(redis)
    helps = {**COUNTERS, "queue_depth": ("Jobs in the crmsync queue and its registries", "gauge")}
    for name, values in figures.items():
        text, kind = helps[name]
        lines += [f"# HELP crmsync_{name} {text}", f"# TYPE crmsync_{name} {kind}"]
        for field, value in sorted(values.items()):
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in parse_field(field).items())
            number = int(value) if float(value).is_integer() else value
            lines.append(f"crmsync_{name}{{{labels}}} {number}" if labels else f"crmsync_{name} {number}")
    return "\n".join(lines + _calls_per_request(figures)) + "\n"


def _calls_per_request(figures: dict[str, dict[str, float]]) -> list[str]:
    """``crmsync_calls_per_crm_request{crm}``: calls logged per CRM request sent (any answer),
    since the counters began; it rises above 1 when calls go in batch requests (for the
    current rate, divide ``rate()`` of the two counters)."""
    requests = _by_crm(figures["crm_requests_total"])
    lines = [
        "# HELP crmsync_calls_per_crm_request Calls logged per CRM request sent (above 1: batch requests)",
        "# TYPE crmsync_calls_per_crm_request gauge",
    ]
    for crm, logged in sorted(_by_crm(figures["calls_logged_total"]).items()):
        if requests.get(crm):
            lines.append(f'crmsync_calls_per_crm_request{{crm="{_escape(crm)}"}} {round(logged / requests[crm], 3)}')
    return lines


def _by_crm(values: dict[str, float]) -> dict[str, float]:
    """A counter's values summed per ``crm`` label, over its other labels."""
    totals: dict[str, float] = {}
    for field, value in values.items():
        crm = parse_field(field).get("crm", "")
        totals[crm] = totals.get(crm, 0.0) + value
    return totals


def _escape(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
