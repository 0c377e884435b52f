"""The RQ jobs: sync one call, exactly once, whatever fails on the way (SPEC §8).

``sync_call(call_id, trigger)`` holds the call's lock (two jobs for one call never run
at once), rebuilds the call from every event recorded for it, runs the pipeline and
keeps the sync record that ``crmsync status`` shows (``crmsync.attempt``: how each kind
of failure is retried, waited out or failed). When other calls are waiting on the queue
and the CRM has batch requests, the job takes them too and syncs them all together
(``crmsync.batch``, ``crmsync.claim``); a call alone is synced at once.

A job whose worker died is handed back by RQ's maintenance (its ``Retry``; after
``CRASH_RETRIES`` deaths ``job_failed`` marks the call failed); the activity ledger inside
the connector keeps the retry from writing a second activity.

This module runs jobs: every enqueue, and the job's description, is ``crmsync.queue``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.exceptions import LockError

from crmsync import attempt, batch, metrics, pipeline, queue, record, store
from crmsync.callindex import CallIndex
from crmsync.hamsa import schedule
from crmsync.record import SyncState
from crmsync.runtime import Runtime
from crmsync.times import now_iso

log = logging.getLogger(__name__)


def sync_call(call_id: str, trigger: str) -> SyncState:
    """RQ entry point. Returns the call's state, or ``retrying``/``locked`` when it was
    queued again (kept in RQ's result for a day)."""
    runtime = Runtime.current()
    lock = runtime.redis.lock(store.call_lock_key(call_id), timeout=store.CALL_LOCK_TTL, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        return attempt.locked(runtime, call_id, trigger)
    try:
        most = batch.batch_limit(runtime)
        if most > 1:
            claimed = runtime.claims.gather(most - 1, runtime.settings.batch.window)
            if claimed:
                return batch.run(runtime, call_id, trigger, claimed)
        return _sync_alone(runtime, call_id, trigger)
    finally:
        try:
            lock.release()
        except LockError:
            pass


def reconcile() -> dict[str, Any]:
    """RQ entry point of the reconciliation sweep (scheduled by ``crmsync.hamsa.schedule``)."""
    runtime = Runtime.current()
    routes = runtime.routes
    rules = schedule.rules_for(runtime.settings, routes.statuses, "call.ended" in routes.events, "reconcile")
    return schedule.run(runtime.redis, runtime.settings, runtime.metrics, rules)


def _sync_alone(runtime: Runtime, call_id: str, trigger: str) -> SyncState:
    call: attempt.Call | SyncState | None = None
    try:
        call = attempt.begin(runtime, call_id, trigger)
        if isinstance(call, SyncState):
            return call
        outcome = pipeline.sync(
            call.context, call.mapping, runtime.connector, runtime.redis, runtime.settings.default_region
        )
    except Exception as exc:  # each kind of failure as crmsync.attempt sorts them; never lost
        return attempt.failed(runtime, call_id, trigger, exc, call.attempt if isinstance(call, attempt.Call) else None)
    return attempt.synced(runtime, call, outcome)


def job_failed(job: Any, connection: Redis, *exc_info: Any) -> None:
    """RQ's failure callback: a job that escaped the handling above (its worker died on
    it ``CRASH_RETRIES`` times) is marked failed, so ``replay --failed`` finds it."""
    if (job.retries_left or 0) > 0 or not job.args:
        return  # RQ hands it back
    call_id = str(job.args[0])
    record.update(
        connection,
        call_id,
        state=SyncState.FAILED,
        reason="the worker stopped while syncing this call, again and again",
        errors=[{"message": f"crmsync error: {getattr(exc_info[0], '__name__', 'unknown')}"}],
    )
    CallIndex(connection).write(call_id, SyncState.FAILED, updated_at=now_iso())
    metrics.Metrics(connection).incr("calls_total", state=SyncState.FAILED)


def replay_calls(redis: Redis, call_ids: Iterable[str]) -> dict[str, bool]:
    """``crmsync replay`` and the console's Replay: each call queued again (True), or not
    because its events are no longer kept (False)."""
    done = {}
    for call_id in call_ids:
        done[call_id] = bool(redis.exists(store.events_key(call_id)))
        if done[call_id]:
            queue.replay(redis, call_id)
            CallIndex(redis).write(call_id, SyncState.QUEUED, updated_at=now_iso())
    return done


def failed_calls(redis: Redis) -> list[str]:
    """The calls in state failed, newest failure first (``replay --failed``)."""
    return [member.decode() for member in redis.zrevrange(store.FAILED_KEY, 0, -1)]  # type: ignore[union-attr]
