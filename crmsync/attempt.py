"""One attempt at syncing one call: what it starts from, and what its end does to the
call's sync record (SPEC §8). The single-call job (``crmsync.jobs``) and a batch of calls
(``crmsync.batch``) share it, so a call in a batch is recorded, retried and failed exactly
as a call on its own.

Failures are sorted by what they need:

* retryable (outage, 5xx, timeouts, and anything unexpected such as RQ's job timeout):
  the call is queued again after a jittered exponential backoff (first retry within
  seconds, at most 60 s apart) for at least ``RETRY_WINDOW``, then marked ``failed``;
* waits (refused credentials, a wrong instance, a broken mapping: every ``CONFIG_RETRY``
  seconds, loudly in ``/readyz`` and the logs; a rate limit: as ``Retry-After`` says):
  tried again however long it takes, never failed for it;
* permanent (the CRM refused the data): ``failed`` at once with the CRM's own reason.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from crmsync import audit, callindex, hamsa, metrics, record, store
from crmsync.audit import Audit
from crmsync.callindex import CallIndex
from crmsync.canonical import CallContext
from crmsync.errors import ConfigurationError, CredentialsError, PermanentError, RateLimited, RetryableError
from crmsync.events import call_context
from crmsync.mapping.model import Mapping
from crmsync.outcome import Outcome
from crmsync.queue import reschedule
from crmsync.record import SyncRecord, SyncState
from crmsync.runtime import Runtime
from crmsync.times import now_iso

log = logging.getLogger(__name__)

RETRY_WINDOW = 3600  # seconds of retryable failures before a call is marked failed
MAX_BACKOFF = 60  # seconds between two retries at most
CONFIG_RETRY = 300  # seconds between retries while credentials or the mapping are broken
LOCKED_RETRY = 5  # seconds before trying a call whose lock another job holds


@dataclass
class Call:
    """A call whose attempt has begun: its events rebuilt into the context the mapping
    sees, and the mapping file that serves it."""

    call_id: str
    trigger: str
    context: CallContext
    mapping: Mapping
    events: int  # events recorded for it (the record's ``events_synced`` once it syncs)
    attempt: int
    started: float = field(default_factory=time.monotonic)

    @property
    def extra(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "attempt": self.attempt}


def begin(runtime: Runtime, call_id: str, trigger: str) -> Call | SyncState:
    """Start an attempt (counted in the record), or end it at once: a call already done
    (and not replayed, with no new event), one with no events left, one no mapping serves.
    Raises what reading the call may raise (Redis trouble, Hamsa's enrichment)."""
    started = time.monotonic()
    redis = runtime.redis
    before = SyncRecord.load(redis, call_id) or SyncRecord()
    if before.state and before.state.done and trigger != "replay" and not _new_events(before, redis, call_id):
        return before.state
    attempt = before.attempts + 1
    record.update(redis, call_id, attempts=attempt, crm=runtime.connector.name)
    events = store.load_events(redis, call_id)
    if not events:
        return finish(
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
        log.info("call skipped: no mapping serves it", extra={"call_id": call_id})
        return finish(runtime, call_id, state=SyncState.SKIPPED, reason=route)
    return Call(call_id, trigger, context, mapping, len(events), attempt, started)


def failed(runtime: Runtime, call_id: str, trigger: str, exc: Exception, attempt: int | None = None) -> SyncState:
    """What a sync that raised ``exc`` (or got it as its answer in a batch) does to the call."""
    redis = runtime.redis
    extra = {"call_id": call_id, "attempt": attempt}
    if isinstance(exc, PermanentError):
        log.warning("call failed: the CRM refused it", extra={**extra, "code": exc.code, "status": exc.status})
        return finish(runtime, call_id, state=SyncState.FAILED, errors=[exc.to_dict()], reason=exc.message)
    if isinstance(exc, CredentialsError):
        with redis.pipeline() as pipe:  # /readyz forgets it once nothing is refused
            pipe.hset(metrics.CREDENTIALS_KEY, exc.crm, str(exc))
            pipe.expire(metrics.CREDENTIALS_KEY, 3 * CONFIG_RETRY)
            pipe.execute()
        log.error("the CRM refuses crmsync's credentials; the call waits", extra=extra)
        return wait(runtime, call_id, trigger, CONFIG_RETRY, error={"message": str(exc)})
    if isinstance(exc, ConfigurationError):
        log.error("configuration problem; the call waits", extra={**extra, "problem": str(exc).splitlines()[0]})
        return wait(runtime, call_id, trigger, CONFIG_RETRY, error={"message": str(exc)})
    if isinstance(exc, RateLimited):
        # A rate limit delays a call; it never counts towards failing it.
        delay = max(backoff(1), exc.retry_after)
        log.warning("CRM rate limit; waiting", extra={**extra, "status": exc.status, "delay": round(delay, 1)})
        return wait(runtime, call_id, trigger, delay, error=exc.to_dict())
    if isinstance(exc, RetryableError):
        log.warning("CRM unavailable; retrying", extra={**extra, "status": exc.status})
        return retry_later(runtime, call_id, trigger, error=exc.to_dict())
    # a bug, RQ's job timeout, Redis trouble: retried like an outage, never lost
    log.error("sync interrupted", extra={**extra, "error": type(exc).__name__})
    return retry_later(runtime, call_id, trigger, error={"message": f"crmsync error: {type(exc).__name__}"})


def synced(runtime: Runtime, call: Call, outcome: Outcome) -> SyncState:
    """The pipeline ran: the CRM accepts crmsync again; record what the sync did."""
    runtime.redis.hdel(metrics.CREDENTIALS_KEY, runtime.connector.name)
    if outcome.activity_id:  # /metrics: calls per CRM request
        runtime.metrics.incr("calls_logged_total", crm=runtime.connector.name)
    Audit(runtime.redis, runtime.settings.audit_ttl).record(
        audit.sync_entries(call.call_id, runtime.connector.name, runtime.connector.profile, call.mapping, outcome)
    )
    log.info(
        "call " + str(outcome.state),
        extra={
            **call.extra,
            "person_id": (outcome.person or {}).get("id"),
            "activity_id": outcome.activity_id,
            "ms": round((time.monotonic() - call.started) * 1000),
        },
    )
    return finish(
        runtime,
        call.call_id,
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
        events_synced=call.events,
    )


def locked(runtime: Runtime, call_id: str, trigger: str) -> SyncState:
    """Another job holds the call's lock: try it again in ``LOCKED_RETRY`` seconds."""
    reschedule(runtime.redis, call_id, trigger, LOCKED_RETRY)
    return SyncState.LOCKED


def _new_events(before: SyncRecord, redis: Redis, call_id: str) -> bool:
    return before.events_synced < int(redis.llen(store.events_key(call_id)))


def finish(runtime: Runtime, call_id: str, *, state: SyncState, **fields: Any) -> SyncState:
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
        keep_events(runtime, call_id)  # replayable for DEDUPE_TTL from now
    raw = runtime.redis.hget(store.status_key(call_id), "mapping")  # the file the call used (saved before syncing)
    mapping = json.loads(raw) if raw else None
    runtime.metrics.incr("calls_total", state=state, mapping=mapping or "none")
    return state


def retry_later(runtime: Runtime, call_id: str, trigger: str, *, error: dict[str, Any]) -> SyncState:
    """A retryable failure: back off, or fail once they have lasted ``RETRY_WINDOW``."""
    before = SyncRecord.load(runtime.redis, call_id) or SyncRecord()
    first = before.first_failure_at or time.time()
    streak = before.retry_streak + 1
    if time.time() - first >= RETRY_WINDOW:
        log.error("call failed: retries exhausted", extra={"call_id": call_id})
        return finish(
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
    keep_events(runtime, call_id)
    reschedule(runtime.redis, call_id, trigger, delay)
    return SyncState.RETRYING


def wait(runtime: Runtime, call_id: str, trigger: str, delay: float, *, error: dict[str, Any]) -> SyncState:
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
    keep_events(runtime, call_id)
    reschedule(runtime.redis, call_id, trigger, delay)
    return SyncState.RETRYING


def keep_events(runtime: Runtime, call_id: str) -> None:
    """A call that still waits, or failed and may be replayed, keeps its events."""
    pipe = runtime.redis.pipeline()
    for key in (store.events_key(call_id), store.receipts_key(call_id)):
        pipe.expire(key, max(runtime.settings.dedupe_ttl, CONFIG_RETRY * 2))
    pipe.execute()


def backoff(attempt: int) -> float:
    """Exponential with jitter: 1–2 s, 2–4 s, 4–8 s … never more than ``MAX_BACKOFF``."""
    ceiling = min(MAX_BACKOFF, 2.0**attempt)
    return random.uniform(ceiling / 2, ceiling)
