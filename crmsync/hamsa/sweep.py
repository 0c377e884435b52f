"""The reconciliation sweep (SPEC §5): one at a time, resumable. ``crmsync.hamsa.schedule``
runs it every ``HAMSA_RECONCILE_INTERVAL``.

One at a time. A sweep holds ``crmsync:lock:reconcile`` (renewed while it works, gone
``LOCK_TTL`` seconds after a dead worker); a second sweep finding it held ends at once.

No gaps. A watermark per scope (the project, or each of ``HAMSA_AGENT_IDS``) in Redis
says "every call created before this was decided". A sweep covers ``[min(now - LOOKBACK,
watermark), now]`` and moves the watermark only when it finished, and only up to the
earliest call it had to leave (in progress, within the grace): a sweep that died, or
that Hamsa refused for an hour, is followed by one that starts where it left off. A
window never reaches further back than ``DEDUPE_TTL`` (what crmsync remembers receiving).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import LockError

from crmsync import metrics, store
from crmsync.errors import CredentialsError, CrmsyncError
from crmsync.hamsa.reconcile import Reconciler, Summary
from crmsync.sub_settings import ReconcileSettings

log = logging.getLogger(__name__)

LOCK_KEY = "crmsync:lock:reconcile"
LOCK_TTL = store.RECONCILE_LOCK_TTL  # seconds; renewed after each call and around each retry wait, so
# the longest gap between renewals is one try (the client's timeout) plus one wait (at most MAX_WAIT)
WATERMARK_KEY = "crmsync:reconcile:watermark"  # hash: scope -> epoch ms
LAST_KEY = "crmsync:reconcile:last"  # hash: the last sweep's outcome, for /readyz and status
RUNS_KEY = "crmsync:reconcile:runs"  # list: the latest sweeps (start, end, result, counts), newest first
RUNS_KEPT = 50  # sweeps
MISSED_KEY = "crmsync:reconcile:missed"  # zset: call id -> when a sweep found it without a webhook
MISSED_WINDOW = 3600  # seconds of missed calls /readyz reports
MISSED_KEEP = 24 * 3600  # seconds of missed calls kept
PROJECT = "*"  # the watermark scope without HAMSA_AGENT_IDS


class Heartbeat:
    """Renews the sweep lock at most every few seconds."""

    def __init__(self, lock: Any, every: float = 10.0) -> None:
        self._lock, self._every, self._last = lock, every, time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self._last >= self._every:
            self._lock.reacquire()
            self._last = time.monotonic()


def sweep(
    redis: Redis,
    build: Callable[..., Reconciler],
    config: ReconcileSettings,
    dedupe_ttl: int,
    *,
    now_ms: int | None = None,
) -> Summary | None:
    """One sweep, if no other is running (None then). ``build(heartbeat=…, on_queued=…)``
    makes the ``Reconciler``. Raises what stopped it (the watermark then stays where it was)."""
    counters = metrics.Metrics(redis)
    lock = redis.lock(LOCK_KEY, timeout=LOCK_TTL)
    if not lock.acquire(blocking=False):
        counters.incr("reconcile_sweeps_total", result="locked")
        log.info("reconciliation sweep skipped: another one is running")
        return None
    started = time.time()
    try:
        reconciler = build(heartbeat=Heartbeat(lock), on_queued=lambda call_id: note_missed(redis, call_id))
        total = Summary()
        for scope in config.agent_ids or (PROJECT,):
            total.add(_sweep_scope(redis, reconciler, config, dedupe_ttl, scope, now_ms))
    except CredentialsError as exc:
        _failed(redis, counters, "refused", str(exc), started)
        redis.hset(metrics.CREDENTIALS_KEY, "hamsa", str(exc))
        redis.expire(metrics.CREDENTIALS_KEY, max(3 * config.interval, 900))
        raise
    except Exception as exc:
        _failed(redis, counters, "failed", problem_of(exc), started)
        raise
    finally:
        try:
            lock.release()
        except LockError:
            pass
    redis.hdel(metrics.CREDENTIALS_KEY, "hamsa")
    _done(redis, counters, total, started)
    return total


def _sweep_scope(
    redis: Redis, reconciler: Reconciler, config: ReconcileSettings, dedupe_ttl: int, scope: str, now_ms: int | None
) -> Summary:
    end = int(time.time() * 1000) if now_ms is None else now_ms
    start = end - config.lookback * 1000
    mark = redis.hget(WATERMARK_KEY, scope)
    if mark is not None:
        start = min(start, int(mark))
    floor = end - dedupe_ttl * 1000
    if start < floor:
        log.warning(
            "the reconciliation watermark is older than DEDUPE_TTL; the sweep starts from there "
            "(crmsync backfill covers the rest)",
            extra={"scope": scope},
        )
        start = floor
    summary = reconciler.run(start, end, agent_id=None if scope == PROJECT else scope)
    redis.hset(WATERMARK_KEY, scope, summary.hold_ms if summary.hold_ms is not None else end)
    return summary


def problem_of(exc: BaseException) -> str:
    """What a stopped sweep says in Redis and the logs: the error's type, and for crmsync's
    own errors (whose messages name no key, number or secret) their first line. Any other
    error's text may hold anything (a URL with a password, a number), so it is left out."""
    name = type(exc).__name__
    if not isinstance(exc, CrmsyncError):
        return name
    lines = str(getattr(exc, "message", None) or exc).splitlines()
    return f"{name}: {lines[0]}" if lines and lines[0] else name


def _done(redis: Redis, counters: metrics.Metrics, total: Summary, started: float) -> None:
    seconds = time.time() - started
    counters.incr("reconcile_sweeps_total", result="done")
    total.count(counters, "reconcile")
    if total.queued:
        counters.incr("webhooks_missed_total", total.queued)
        log.warning(
            "calls reached crmsync only through Hamsa's call history: their webhooks never came",
            extra={"calls": total.queued},
        )
    cut = time.time() - MISSED_KEEP
    pipe = redis.pipeline()
    pipe.hset(
        LAST_KEY,
        mapping={
            "at": time.time(),
            "result": "done",
            "problem": "",
            "summary": json.dumps(total.to_dict()),
            "seconds": round(seconds, 2),
        },
    )
    pipe.zremrangebyscore(MISSED_KEY, 0, cut)
    _remember(pipe, started, "done", total.to_dict())
    pipe.execute()
    log.info("reconciliation sweep done", extra={**total.to_dict(), "ms": round(seconds * 1000)})


def _failed(redis: Redis, counters: metrics.Metrics, result: str, problem: str, started: float) -> None:
    counters.incr("reconcile_sweeps_total", result=result)
    pipe = redis.pipeline()
    pipe.hset(LAST_KEY, mapping={"at": time.time(), "result": result, "problem": problem[:300]})
    _remember(pipe, started, result, {"problem": problem[:300]})
    pipe.execute()
    log.error(
        "reconciliation sweep stopped; the next one resumes from the watermark",
        extra={"result": result, "problem": problem[:300]},
    )


def _remember(pipe: Any, started: float, result: str, details: dict[str, Any]) -> None:
    run = {"started": started, "ended": time.time(), "result": result, **details}
    pipe.lpush(RUNS_KEY, json.dumps(run))
    pipe.ltrim(RUNS_KEY, 0, RUNS_KEPT - 1)


def recent_runs(redis: Redis) -> list[dict[str, Any]]:
    """The latest sweeps that ran (not those that found another running), newest first."""
    return [json.loads(raw) for raw in redis.lrange(RUNS_KEY, 0, -1)]


def note_missed(redis: Redis, call_id: str) -> None:
    """Remember that a sweep found ``call_id`` without its webhook (for /readyz)."""
    redis.zadd(MISSED_KEY, {call_id: time.time()})


def missed_recently(redis: Redis, seconds: int = MISSED_WINDOW) -> int:
    return int(redis.zcount(MISSED_KEY, time.time() - seconds, "+inf"))


def warnings(redis: Redis) -> list[str]:
    """What ``/readyz`` says about reconciliation: calls whose webhook never came (Hamsa's
    deliveries are failing), and a last sweep that stopped."""
    found: list[str] = []
    missed = missed_recently(redis)
    if missed:
        calls = "1 call" if missed == 1 else f"{missed} calls"
        found.append(
            f"{calls} in the last hour reached crmsync only through Hamsa's call history: Hamsa's "
            "webhook deliveries are failing (check the agent's webhook URL and token)"
        )
    last: dict[bytes, bytes] = redis.hgetall(LAST_KEY)  # type: ignore[assignment]
    if last and last.get(b"result", b"done") != b"done":
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(last.get(b"at", b"0"))))
        found.append(
            f"the last reconciliation sweep stopped at {at}: {last.get(b'problem', b'').decode()}; "
            "the next one resumes from the watermark"
        )
    return found
