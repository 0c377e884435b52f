"""The RQ job: sync one call, exactly once, whatever fails on the way (SPEC §8).

``sync_call(call_id, trigger)`` holds the call's lock (two jobs for one call never run
at once), rebuilds the call from every event recorded for it, runs the pipeline and
keeps the sync record that ``crmsync status`` shows. Failures are sorted by what they
need:

* retryable (outage, 5xx, timeouts, and anything unexpected such as RQ's job timeout):
  the call is queued again after a jittered exponential backoff (first retry within
  seconds, at most 60 s apart) for at least ``RETRY_WINDOW``, then marked ``failed``;
* waits (refused credentials, a wrong instance, a broken mapping: every ``CONFIG_RETRY``
  seconds, loudly in ``/readyz`` and the logs; a rate limit: as ``Retry-After`` says):
  tried again however long it takes, never failed for it;
* permanent (the CRM refused the data): ``failed`` at once with the CRM's own reason.

A job whose worker died is handed back by RQ's maintenance (its ``Retry``; after
``CRASH_RETRIES`` deaths ``job_failed`` marks the call failed); the activity ledger inside
the connector keeps the retry from writing a second activity.

This module runs jobs: every enqueue, and the job's description, is ``crmsync.queue``'s.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.exceptions import LockError

from crmsync import audit, callindex, hamsa, metrics, pipeline, queue, record, store
from crmsync.audit import Audit
from crmsync.callindex import CallIndex
from crmsync.errors import ConfigurationError, CredentialsError, PermanentError, RateLimited, RetryableError
from crmsync.events import call_context
from crmsync.hamsa import schedule
from crmsync.mapping.model import Mapping
from crmsync.queue import JOB_TIMEOUT, reschedule
from crmsync.record import SyncRecord, SyncState
from crmsync.runtime import Runtime
from crmsync.times import now_iso

log = logging.getLogger(__name__)

CALL_LOCK_TIMEOUT = JOB_TIMEOUT + 10  # seconds (= store.CALL_LOCK_TTL): RQ stops a job at JOB_TIMEOUT
RETRY_WINDOW = 3600  # seconds of retryable failures before a call is marked failed
MAX_BACKOFF = 60  # seconds between two retries at most
CONFIG_RETRY = 300  # seconds between retries while credentials or the mapping are broken
LOCKED_RETRY = 5  # seconds before trying a call whose lock another job holds


def sync_call(call_id: str, trigger: str) -> SyncState:
    """RQ entry point. Returns the call's state, or ``retrying``/``locked`` when it was
    queued again (kept in RQ's result for a day)."""
    runtime = Runtime.current()
    lock = runtime.redis.lock(store.call_lock_key(call_id), timeout=CALL_LOCK_TIMEOUT, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        reschedule(runtime.redis, call_id, trigger, LOCKED_RETRY)
        return SyncState.LOCKED
    try:
        return _sync_locked(runtime, call_id, trigger)
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


def _sync_locked(runtime: Runtime, call_id: str, trigger: str) -> SyncState:
    redis = runtime.redis
    before = SyncRecord.load(redis, call_id) or SyncRecord()
    attempts = before.attempts + 1
    if before.state and before.state.done and trigger != "replay" and not _new_events(before, redis, call_id):
        return before.state
    started = time.monotonic()
    record.update(redis, call_id, attempts=attempts, crm=runtime.connector.name)
    extra = {"call_id": call_id, "attempt": attempts}
    try:
        events = store.load_events(redis, call_id)
        if not events:
            return _finish(
                runtime,
                call_id,
                state=SyncState.SKIPPED,
                reason="no events are recorded for this call (expired after DEDUPE_TTL?)",
            )
        context = call_context(events)
        hamsa.enrich(context, runtime.settings, runtime.redis)
        mapping, route = runtime.routes.choose(context["call"])
        used = mapping.path.name if mapping is not None else None
        record.update(redis, call_id, mapping=used, route=route if mapping is not None else None)
        CallIndex(redis).write(
            call_id,
            SyncState.QUEUED,
            call=callindex.summary(context, used),
            crm=runtime.connector.name,
            updated_at=now_iso(),
        )
        if mapping is None:
            log.info("call skipped: no mapping serves it", extra=extra)
            return _finish(runtime, call_id, state=SyncState.SKIPPED, reason=route)
        outcome = pipeline.sync(context, mapping, runtime.connector, redis, runtime.settings.default_region)
    except PermanentError as exc:
        log.warning("call failed: the CRM refused it", extra={**extra, "code": exc.code, "status": exc.status})
        return _finish(runtime, call_id, state=SyncState.FAILED, errors=[exc.to_dict()], reason=exc.message)
    except CredentialsError as exc:
        with redis.pipeline() as pipe:  # /readyz forgets it once nothing is refused
            pipe.hset(metrics.CREDENTIALS_KEY, exc.crm, str(exc))
            pipe.expire(metrics.CREDENTIALS_KEY, 3 * CONFIG_RETRY)
            pipe.execute()
        log.error("the CRM refuses crmsync's credentials; the call waits", extra=extra)
        return _wait(runtime, call_id, trigger, CONFIG_RETRY, error={"message": str(exc)})
    except ConfigurationError as exc:
        log.error("configuration problem; the call waits", extra={**extra, "problem": str(exc).splitlines()[0]})
        return _wait(runtime, call_id, trigger, CONFIG_RETRY, error={"message": str(exc)})
    except RateLimited as exc:
        # A rate limit delays a call; it never counts towards failing it.
        delay = max(backoff(1), exc.retry_after)
        log.warning("CRM rate limit; waiting", extra={**extra, "status": exc.status, "delay": round(delay, 1)})
        return _wait(runtime, call_id, trigger, delay, error=exc.to_dict())
    except RetryableError as exc:
        log.warning("CRM unavailable; retrying", extra={**extra, "status": exc.status})
        return _retry_later(runtime, call_id, trigger, error=exc.to_dict())
    except Exception as exc:  # a bug, RQ's job timeout, Redis trouble: retried like an outage, never lost
        log.error("sync interrupted", extra={**extra, "error": type(exc).__name__})
        return _retry_later(runtime, call_id, trigger, error={"message": f"crmsync error: {type(exc).__name__}"})
    return _synced(runtime, call_id, outcome, len(events), extra, started, mapping)


def _synced(
    runtime: Runtime,
    call_id: str,
    outcome: pipeline.Outcome,
    events: int,
    extra: dict[str, Any],
    started: float,
    mapping: Mapping,
) -> SyncState:
    """The pipeline ran: the CRM accepts crmsync again; record what the sync did."""
    runtime.redis.hdel(metrics.CREDENTIALS_KEY, runtime.connector.name)
    Audit(runtime.redis, runtime.settings.audit_ttl).record(
        audit.sync_entries(call_id, runtime.connector.name, runtime.connector.profile, mapping, outcome)
    )
    log.info(
        "call " + str(outcome.state),
        extra={
            **extra,
            "person_id": (outcome.person or {}).get("id"),
            "activity_id": outcome.activity_id,
            "ms": round((time.monotonic() - started) * 1000),
        },
    )
    return _finish(
        runtime,
        call_id,
        state=SyncState(outcome.state),
        person=outcome.person,
        activity_id=outcome.activity_id,
        links=outcome.links,
        fields={
            "written": outcome.written,
            "values": outcome.values,
            "skipped": outcome.skipped,
            "previous": outcome.previous,
        },
        errors=outcome.errors,
        reason=outcome.reason,
        events_synced=events,
    )


def _new_events(before: SyncRecord, redis: Redis, call_id: str) -> bool:
    return before.events_synced < int(redis.llen(store.events_key(call_id)))


def _finish(runtime: Runtime, call_id: str, *, state: SyncState, **fields: Any) -> SyncState:
    """Record a final state; ``fields`` are further ``SyncRecord`` attributes."""
    at = now_iso()
    record.update(
        runtime.redis,
        call_id,
        state=state,
        updated_at=at,
        first_failure_at=None,
        retry_streak=0,
        next_attempt_at=None,
        **fields,
    )
    CallIndex(runtime.redis).write(
        call_id, state, person=fields.get("person"), crm=runtime.connector.name, updated_at=at
    )
    if state == SyncState.FAILED:
        _keep_events(runtime, call_id)  # replayable for DEDUPE_TTL from now
    raw = runtime.redis.hget(store.status_key(call_id), "mapping")  # the file the call used (saved before syncing)
    mapping = json.loads(raw) if raw else None
    runtime.metrics.incr("calls_total", state=state, mapping=mapping or "none")
    return state


def _retry_later(runtime: Runtime, call_id: str, trigger: str, *, error: dict[str, Any]) -> SyncState:
    """A retryable failure: back off, or fail once they have lasted ``RETRY_WINDOW``."""
    before = SyncRecord.load(runtime.redis, call_id) or SyncRecord()
    first = before.first_failure_at or time.time()
    streak = before.retry_streak + 1
    if time.time() - first >= RETRY_WINDOW:
        log.error("call failed: retries exhausted", extra={"call_id": call_id})
        return _finish(
            runtime,
            call_id,
            state=SyncState.FAILED,
            errors=[error],
            reason=f"the CRM stayed unavailable for {RETRY_WINDOW // 60} minutes",
        )
    delay = backoff(streak)
    record.update(
        runtime.redis,
        call_id,
        state=SyncState.QUEUED,
        first_failure_at=first,
        retry_streak=streak,
        errors=[error],
        next_attempt_at=time.time() + delay,
    )
    _keep_events(runtime, call_id)
    reschedule(runtime.redis, call_id, trigger, delay)
    return SyncState.RETRYING


def _wait(runtime: Runtime, call_id: str, trigger: str, delay: float, *, error: dict[str, Any]) -> SyncState:
    """A wait that is no failure (refused credentials, a broken mapping, a rate limit): the
    call is tried again after ``delay``, however long that goes on."""
    record.update(
        runtime.redis,
        call_id,
        state=SyncState.QUEUED,
        first_failure_at=None,
        retry_streak=0,
        errors=[error],
        next_attempt_at=time.time() + delay,
    )
    _keep_events(runtime, call_id)
    reschedule(runtime.redis, call_id, trigger, delay)
    return SyncState.RETRYING


def _keep_events(runtime: Runtime, call_id: str) -> None:
    """A call that still waits, or failed and may be replayed, keeps its events."""
    pipe = runtime.redis.pipeline()
    for key in (store.events_key(call_id), store.receipts_key(call_id)):
        pipe.expire(key, max(runtime.settings.dedupe_ttl, CONFIG_RETRY * 2))
    pipe.execute()


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


def backoff(attempt: int) -> float:
    """Exponential with jitter: 1–2 s, 2–4 s, 4–8 s … never more than ``MAX_BACKOFF``."""
    ceiling = min(MAX_BACKOFF, 2.0**attempt)
    return random.uniform(ceiling / 2, ceiling)


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
