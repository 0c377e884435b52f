"""Syncing many calls at once, so that the cost per call falls as volume rises.

When calls queue up faster than they sync (a campaign's calls ending together), the job
that a worker starts takes the next waiting calls too (``crmsync.claim``: up to the CRM's
per-request maximum or ``SYNC_BATCH_MAX``, gathering for at most ``SYNC_BATCH_WINDOW``;
with nothing else waiting, no batch and no wait). Then, for all of them together:

1. each call begins its attempt exactly as on its own (``crmsync.attempt.begin``: its
   record, its events, its mapping) and is planned up to its lookup;
2. the callers are looked up in as few requests as the CRM allows
   (``Connector.find_people_many``: one per group of calls that read the same fields);
3. each call's person is chosen or created (a create takes the one-call path, as does a
   call with links or a follow-up: ``pipeline.Planned.batchable``);
4. the activities and field updates go in batch requests (``Connector.write_calls``).

Every answer is per call: a lookup or write the CRM refused for one call is that call's
error, settled by ``crmsync.attempt`` exactly as if the call had been alone (retried,
waiting, or failed with the CRM's own reason), and the other calls sync. A refused
credential, RQ's job timeout or Redis trouble ends the batch: every call not yet settled
gets that error as its own. Each call is synced under its own lock; a call another worker
holds is queued again, as on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from redis.exceptions import LockError
from redis.lock import Lock

from crmsync import attempt, pipeline, store
from crmsync.attempt import Call
from crmsync.claim import Claimed
from crmsync.crm.base import Found
from crmsync.outcome import Outcome
from crmsync.queue import JOB_TIMEOUT, reschedule
from crmsync.record import SyncState
from crmsync.runtime import Runtime

log = logging.getLogger(__name__)

BUDGET = JOB_TIMEOUT / 2  # seconds of one-call writes a batch does before handing the rest back


def batch_limit(runtime: Runtime) -> int:
    """The most calls one batch takes: the CRM's per-request maximum, or less when
    ``SYNC_BATCH_MAX`` says so (1: no batches)."""
    most = runtime.connector.batch_size
    if runtime.settings.batch.max:
        most = min(most, runtime.settings.batch.max)
    return max(1, most)


def run(runtime: Runtime, call_id: str, trigger: str, claimed: Sequence[Claimed]) -> SyncState:
    """Sync ``call_id`` (whose lock the caller holds) and the ``claimed`` calls together;
    returns ``call_id``'s state. The claim of every call the batch settles is settled; a
    call cut short (the process stopping or dying) is left to RQ, which hands its job back
    (``crmsync.claim``)."""
    calls = {call_id: trigger}
    for claim in claimed:  # one call claimed twice (an event and a replay): one sync, replay wins
        if claim.call_id not in calls or claim.trigger == "replay":
            calls[claim.call_id] = claim.trigger
    with ExitStack() as locks:
        states = _lock_others(runtime, calls, call_id, locks)
        batch = Batch(runtime, {c: t for c, t in calls.items() if c not in states}, first=call_id)
        try:
            batch.sync()
        finally:  # only settled calls' claims: a call cut short (the process stopping) is RQ's again
            states.update(batch.states)
            runtime.claims.settle([claim for claim in claimed if claim.call_id in states])
    runtime.metrics.incr("sync_batches_total", crm=runtime.connector.name)
    runtime.metrics.incr("sync_batch_calls_total", len(calls), crm=runtime.connector.name)
    log.info("batch synced", extra={"call_id": call_id, "calls": len(calls), "claimed": len(claimed)})
    return states[call_id]


def _lock_others(runtime: Runtime, calls: dict[str, str], first: str, locks: ExitStack) -> dict[str, SyncState]:
    """Take each claimed call's lock (released when ``locks`` closes); a call whose lock
    another job holds is queued again (``attempt.locked``) and left out."""
    states: dict[str, SyncState] = {}
    for call_id, trigger in calls.items():
        if call_id == first:
            continue
        lock = runtime.redis.lock(store.call_lock_key(call_id), timeout=store.CALL_LOCK_TTL, blocking_timeout=0)
        if lock.acquire(blocking=False):
            locks.callback(_release, lock)
        else:
            states[call_id] = attempt.locked(runtime, call_id, trigger)
    return states


def _release(lock: Lock) -> None:
    try:
        lock.release()
    except LockError:
        pass  # expired: nothing to release


@dataclass
class Batch:
    """One batch's calls (id -> trigger) on their way through the stages of ``sync``."""

    runtime: Runtime
    calls: dict[str, str]
    first: str  # the job's own call: never handed back
    states: dict[str, SyncState] = field(default_factory=dict)
    begun: dict[str, Call] = field(default_factory=dict)
    deadline: float = field(default_factory=lambda: time.monotonic() + BUDGET)

    def sync(self) -> dict[str, SyncState]:
        """Every call's state: synced, skipped or failed on its own, or queued again."""
        try:
            lookups = self._begin()
            planned = self._plan(lookups, self._find(lookups))
            self._write(planned)
        except Exception as exc:  # credentials refused, RQ's job timeout, Redis trouble: the rest's error
            for call_id, trigger in self.calls.items():
                if call_id not in self.states:
                    self.states[call_id] = attempt.failed(self.runtime, call_id, trigger, exc, self._attempt(call_id))
        return self.states

    def _begin(self) -> dict[str, pipeline.Lookup]:
        """Each call's attempt begun, and planned up to its lookup."""
        lookups: dict[str, pipeline.Lookup] = {}
        region = self.runtime.settings.default_region
        for call_id, trigger in self.calls.items():
            try:
                call = attempt.begin(self.runtime, call_id, trigger)
            except Exception as exc:
                self.states[call_id] = attempt.failed(self.runtime, call_id, trigger, exc)
                continue
            if isinstance(call, SyncState):
                self.states[call_id] = call
                continue
            self.begun[call_id] = call
            step = pipeline.begin(call.context, call.mapping, region)
            if isinstance(step, Outcome):
                self.states[call_id] = attempt.synced(self.runtime, call, step)
            else:
                lookups[call_id] = step
        return lookups

    def _find(self, lookups: dict[str, pipeline.Lookup]) -> dict[str, Found]:
        """Each call's people: one ``find_people_many`` per group of calls that match the
        same objects and read the same fields."""
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
        for call_id, lookup in lookups.items():
            groups.setdefault((lookup.objects, lookup.read), []).append(call_id)
        found: dict[str, Found] = {}
        for (objects, read), call_ids in groups.items():
            numbers = [lookups[c].number for c in call_ids]
            by_number = self.runtime.connector.find_people_many(numbers, objects, read)
            found.update({c: by_number[lookups[c].number] for c in call_ids})
        return found

    def _plan(self, lookups: dict[str, pipeline.Lookup], found: dict[str, Found]) -> dict[str, pipeline.Planned]:
        """Each call's person chosen (or created) and its write planned; the calls whose write
        cannot join a batch are written now, on their own, for at most ``BUDGET`` seconds."""
        planned: dict[str, pipeline.Planned] = {}
        connector, redis = self.runtime.connector, self.runtime.redis
        for call_id, lookup in lookups.items():
            call = self.begun[call_id]
            if call_id != self.first and time.monotonic() > self.deadline:
                # one-call writes (creates, links, follow-ups) took the batch's time: the rest go
                # back on the queue at once, before RQ's job timeout could cut them short
                reschedule(redis, call_id, call.trigger, 0)
                self.states[call_id] = SyncState.RETRYING
                continue
            try:
                people = found[call_id]
                if isinstance(people, Exception):
                    raise people
                plan = pipeline.plan_call(lookup, people, connector, redis)
                if isinstance(plan, Outcome):
                    self.states[call_id] = attempt.synced(self.runtime, call, plan)
                elif not plan.batchable:
                    self.states[call_id] = attempt.synced(self.runtime, call, pipeline.write(plan, connector))
                else:
                    planned[call_id] = plan
            except Exception as exc:
                self.states[call_id] = attempt.failed(self.runtime, call_id, call.trigger, exc, call.attempt)
        return planned

    def _write(self, planned: dict[str, pipeline.Planned]) -> None:
        """The planned calls' activities and fields in batch requests; each call's answer settled."""
        if not planned:
            return
        connector = self.runtime.connector
        answers = connector.write_calls([plan.call_write() for plan in planned.values()])
        for (call_id, plan), answer in zip(planned.items(), answers, strict=True):
            call = self.begun[call_id]
            if isinstance(answer, Exception):
                self.states[call_id] = attempt.failed(self.runtime, call_id, call.trigger, answer, call.attempt)
            else:
                self.states[call_id] = attempt.synced(self.runtime, call, pipeline.complete(plan, connector, answer))

    def _attempt(self, call_id: str) -> int | None:
        call = self.begun.get(call_id)
        return call.attempt if call is not None else None
