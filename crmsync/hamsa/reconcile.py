"""Reconciliation: find the calls of Hamsa's history that crmsync never received, and queue them.

``Reconciler.run(start_ms, end_ms)`` pages ``minimal-list`` over the window (one page in
memory at a time) and decides each listed call:

* ``PENDING`` / ``IN_PROGRESS``, or ended less than ``grace`` seconds ago: not yet — the
  call holds the watermark (``Summary.hold_ms``) so that the next sweep sees it again;
* received already (an event that syncs — one the mapping subscribes to — claimed its
  conversation, or a sweep did, or the call has a sync record under that id): nothing to
  do, and nothing fetched. An event that is only recorded (``call.started``,
  ``transcription.update``) does not count: its ``call.ended`` may be the one lost;
* a status the mapping does not log (``statuses:``, default ``[completed]``): skipped;
* a conversation Hamsa answers 404 for, or refuses (another 4xx): skipped with the reason
  (``Hamsa refused: <status>``), counted, and the run goes on — one bad call never holds
  the watermark;
* otherwise fetched (``GET /v1/voice-agents/conversation/{id}``), built into the canonical
  ``call.ended`` event (``crmsync.hamsa.conversation``) and queued like a webhook event,
  atomically with the claim (``Ingest.store_reconciled``): a webhook arriving meanwhile
  makes it one call, not two.

A dry run lists and joins but neither fetches, writes nor queues. The sweep that runs this
periodically, the lock and the watermark are in ``crmsync.hamsa.sweep``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis import Redis

from crmsync import record, store
from crmsync.errors import PermanentError
from crmsync.hamsa.client import HamsaClient
from crmsync.hamsa.conversation import (
    RUNNING,
    canonical_status,
    created_at,
    dedupe_key,
    ended_at,
    now_utc,
    reconciled_event,
)
from crmsync.ingest import Ingest
from crmsync.metrics import Metrics

log = logging.getLogger(__name__)

STUCK_AFTER = 24 * 3600  # seconds: a call still "in progress" after this holds the watermark no longer


@dataclass(frozen=True)
class Rules:
    """What a run takes: ``statuses`` are the canonical statuses the mapping logs."""

    statuses: frozenset[str] = frozenset({"completed"})
    grace: int = 300  # seconds after a call ended before it is taken
    region: str = "US"
    enqueue: bool = True  # the mapping subscribes to call.ended
    source: str = "reconcile"  # or "backfill"
    dry_run: bool = False


@dataclass
class Summary:
    """What one run found. ``received``: already in crmsync; ``queued``: queued now (in a
    dry run: would be); ``skipped``: reason → count."""

    listed: int = 0
    received: int = 0
    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    fetched: int = 0
    hold_ms: int | None = None  # createdAt (epoch ms) of the earliest call not decided yet
    total: int = 0  # Hamsa's count of matching calls (for a progress bar)

    def to_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "already_in_crmsync": self.received,
            "queued": self.queued,
            "skipped": dict(self.skipped),
            "pages": self.pages,
            "fetched": self.fetched,
        }

    def count(self, counters: Metrics, source: str) -> None:
        """Add this run to ``crmsync_reconcile_calls_total`` (by source and outcome)."""
        outcomes = (("queued", self.queued), ("received", self.received), ("skipped", sum(self.skipped.values())))
        for outcome, number in outcomes:
            if number:
                counters.incr("reconcile_calls_total", number, source=source, outcome=outcome)

    def add(self, other: Summary) -> None:
        """Add another run's counts (a sweep over several agents)."""
        self.listed += other.listed
        self.received += other.received
        self.queued += other.queued
        self.skipped.update(other.skipped)
        self.pages += other.pages
        self.fetched += other.fetched
        self.total += other.total

    def hold(self, moment: datetime | None) -> None:
        if moment is None:
            return
        ms = int(moment.timestamp() * 1000)
        self.hold_ms = ms if self.hold_ms is None else min(self.hold_ms, ms)


class Reconciler:
    """One run over one window. ``progress(done, total)`` is called after each page,
    ``heartbeat()`` after each call and around each of the client's waits between retries
    (the sweep renews its lock there: one request may retry for longer than the lock lives) and
    ``on_queued(call_id)`` for each call queued."""

    def __init__(
        self,
        redis: Redis,
        client: HamsaClient,
        ingest: Ingest,
        rules: Rules,
        *,
        progress: Callable[[int, int], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
        on_queued: Callable[[str], None] | None = None,
        now: Callable[[], datetime] = now_utc,
    ) -> None:
        self._redis = redis
        self._client = client
        self._ingest = ingest
        self.rules = rules
        self._progress = progress
        self._heartbeat = heartbeat
        if heartbeat is not None:
            client.on_wait = heartbeat
        self._on_queued = on_queued
        self._now = now

    def run(self, start_ms: int, end_ms: int, agent_id: str | None = None, summary: Summary | None = None) -> Summary:
        """Reconcile the calls created in ``[start_ms, end_ms]``; ``summary`` adds up runs."""
        summary = summary if summary is not None else Summary()
        base = summary.total
        for calls, filtered in self._client.list_pages(start_ms, end_ms, agent_id=agent_id):
            summary.pages += 1
            summary.total = base + filtered
            self._page(calls, summary)
            if self._progress:
                self._progress(summary.listed, max(summary.total, summary.listed))
        return summary

    def _page(self, calls: list[dict[str, Any]], summary: Summary) -> None:
        ids = [str(c["id"]) for c in calls]
        pipe = self._redis.pipeline(transaction=False)
        for call_id in ids:
            pipe.exists(store.conversation_key(call_id), store.status_key(call_id))
        known = pipe.execute()
        for listed, seen in zip(calls, known, strict=True):
            summary.listed += 1
            self._decide(listed, bool(seen), summary)
            if self._heartbeat:
                self._heartbeat()

    def _decide(self, listed: dict[str, Any], received: bool, summary: Summary) -> None:
        now = self._now()
        created = created_at(listed)
        raw_status = str(listed.get("status") or "").upper()
        if raw_status in RUNNING:
            summary.skipped["in progress"] += 1
            if created is not None and now - created < timedelta(seconds=STUCK_AFTER):
                summary.hold(created)
            return
        ended = ended_at(listed)
        if ended is not None and now - ended < timedelta(seconds=self.rules.grace):
            summary.skipped["ended within HAMSA_RECONCILE_GRACE"] += 1
            summary.hold(created)
            return
        if received:
            summary.received += 1
            return
        status = canonical_status(listed)
        if status not in self.rules.statuses:
            summary.skipped[f"status {status} not in the mapping's statuses"] += 1
            return
        if self.rules.dry_run:
            summary.queued += 1
            return
        self._take(listed, summary)

    def _take(self, listed: dict[str, Any], summary: Summary) -> None:
        call_id = str(listed["id"])
        try:
            conversation = self._client.conversation(call_id)
        except PermanentError as exc:  # one call Hamsa refuses must not stop every later sweep
            summary.fetched += 1
            summary.skipped[f"Hamsa refused: {exc.status}"] += 1
            log.warning(
                "Hamsa refused a conversation; the call is skipped", extra={"call_id": call_id, "status": exc.status}
            )
            return
        summary.fetched += 1
        if conversation is None:
            summary.skipped["not found by Hamsa's conversation API"] += 1
            return
        event = reconciled_event(conversation, listed, source=self.rules.source, region=self.rules.region)
        if not self._ingest.store_reconciled(event, dedupe_key(call_id), self.rules.enqueue):
            summary.received += 1  # a webhook claimed it while we fetched
            return
        record.update(self._redis, call_id, source=self.rules.source, unavailable=event["unavailable"])
        summary.queued += 1
        if self._on_queued:
            self._on_queued(call_id)
        log.info(
            "call reconciled from Hamsa's history",
            extra={"call_id": call_id, "source": self.rules.source, "unavailable": event["unavailable"]},
        )
