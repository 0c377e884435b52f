"""A call's sync record: its state and what the last sync did (SPEC §7 ``crmsync status``).

The record lives in one Redis hash (``store.status_key``, ``store.STATUS_TTL``), one hash
field per ``SyncRecord`` attribute, each value JSON. Writers merge only the attributes they
change (``update``): the ingest script sets ``state`` and ``updated_at`` of a call whose job
runs, and the job must not write back what it read before. Readers get a ``SyncRecord``
(``SyncRecord.load``); hash fields it does not know are ignored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from redis import Redis

from crmsync import store
from crmsync.times import now_iso


class SyncState(StrEnum):
    """What happened to a call. The first six are stored; the last two are only
    ``sync_call``'s answers (kept in RQ's result), the record then says ``queued``."""

    RECEIVED = "received"  # events recorded, nothing queued for them (no record yet)
    QUEUED = "queued"  # a job will (re)try it; also while waiting for credentials or a rate limit
    SYNCED = "synced"
    PARTIAL = "partial"  # the activity was written, a field was not (SPEC §7)
    SKIPPED = "skipped"  # nothing to write: no number, no match, ambiguous
    FAILED = "failed"  # the CRM refused it, or retries ran out; ``replay`` queues it again
    RETRYING = "retrying"  # answer: queued again after a failure or a wait
    LOCKED = "locked"  # answer: another job holds the call; queued again shortly

    @property
    def final(self) -> bool:
        """No job will touch the call again unless a new event or a replay comes."""
        return self in FINAL_STATES

    @property
    def done(self) -> bool:
        """The call is in the CRM (its activity was written)."""
        return self in (SyncState.SYNCED, SyncState.PARTIAL)


FINAL_STATES = frozenset({SyncState.SYNCED, SyncState.PARTIAL, SyncState.SKIPPED, SyncState.FAILED})


@dataclass
class SyncRecord:
    """One call's sync record, as stored. ``fields`` holds ``written`` (name → the CRM's wire
    value), ``values`` (name → the value as a person reads it), ``skipped`` (name → reason)
    and ``previous`` (name → the CRM's value before)."""

    state: SyncState | None = None
    crm: str | None = None
    mapping: str | None = None  # the mapping file the call used (None: not routed yet, or no file served it)
    route: str | None = None  # why that file: "agent a-1", "project p-7", "provider retell", "default"
    person: dict[str, Any] | None = None  # {type, id, created}
    activity_id: str | None = None
    links: dict[str, Any] = field(default_factory=dict)  # company / deal the activity is on, follow-up task id
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    attempts: int = 0
    events_synced: int = 0  # events the last finished sync was built from
    updated_at: str | None = None
    next_attempt_at: float | None = None  # epoch seconds, while queued after a failure or a wait
    first_failure_at: float | None = None  # epoch seconds: start of the current run of retryable failures
    retry_streak: int = 0
    source: str | None = None  # reconcile / backfill: found in Hamsa's call history (None: a webhook)
    unavailable: list[str] = field(default_factory=list)  # what Hamsa's conversation answer lacked

    @classmethod
    def load(cls, redis: Redis, call_id: str) -> SyncRecord | None:
        """The call's record, or None when it has none."""
        raw: dict[bytes, bytes] = redis.hgetall(store.status_key(call_id))  # type: ignore[assignment]
        return cls.from_hash(raw) if raw else None

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> SyncRecord:
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.decode()
            if name in _NAMES:
                values[name] = _decode(value.decode())
        record = cls(**{k: v for k, v in values.items() if v is not None or k not in _NOT_NULL})
        if record.state is not None:
            record.state = SyncState(record.state)
        return record

    def status(self, call_id: str, receipts: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``crmsync status --json`` document (SPEC §7 keys, and a few more)."""
        return {
            "call_id": call_id,
            "state": str(self.state or SyncState.RECEIVED),
            "source": self.source or "webhook",
            "unavailable": self.unavailable,
            "crm": self.crm,
            "mapping": self.mapping,
            "route": self.route,
            "person": self.person,
            "activity_id": self.activity_id,
            "links": self.links,
            # values: the written fields as a person reads them (a date, not the CRM's epoch ms)
            "fields": {part: self.fields.get(part, {}) for part in ("written", "values", "skipped", "previous")},
            "errors": self.errors,
            "reason": self.reason,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "updated_at": self.updated_at,
            "events": receipts,
        }


_NAMES = {f.name for f in fields(SyncRecord)}
# a stored null reads as the default for these
_NOT_NULL = {"links", "fields", "errors", "attempts", "events_synced", "retry_streak", "unavailable"}


def call_status(redis: Redis, call_id: str) -> dict[str, Any] | None:
    """``crmsync status CALL_ID --json`` and the console's call page: the sync record and the
    events received (``SyncRecord.status``), or None when no call has that id."""
    record = SyncRecord.load(redis, call_id)
    receipts = store.load_receipts(redis, call_id)
    if record is None and not receipts:
        return None
    return (record or SyncRecord()).status(call_id, receipts)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # written by hand or by an older release
        return text


def update(redis: Redis, call_id: str, **changes: Any) -> None:
    """Merge ``changes`` (``SyncRecord`` attribute names) into the call's record, stamp its
    ``updated_at`` (unless given) and keep it for ``STATUS_TTL``. A call entering ``failed``
    joins ``store.FAILED_KEY`` (``replay --failed``), one leaving it leaves. Raises
    TypeError for a name the record has not."""
    unknown = set(changes) - _NAMES
    if unknown:
        raise TypeError(f"a sync record has no {', '.join(sorted(unknown))}")
    changes.setdefault("updated_at", now_iso())
    key = store.status_key(call_id)
    pipe = redis.pipeline()
    pipe.hset(key, mapping={k: json.dumps(v) for k, v in changes.items()})
    pipe.expire(key, store.STATUS_TTL)
    state = changes.get("state")
    if state == SyncState.FAILED:
        pipe.zadd(store.FAILED_KEY, {call_id: time.time()})
    elif state is not None:
        pipe.zrem(store.FAILED_KEY, call_id)
    pipe.execute()
