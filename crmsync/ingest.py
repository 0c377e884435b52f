"""Storing an accepted event durably, in one Redis round trip.

``Ingest.store(event, enqueue=…)`` runs one Lua script that, atomically:

1. marks the event seen (``SET NX`` with ``DEDUPE_TTL``); if it was seen before, it only
   appends a ``duplicate`` receipt and returns;
2. appends the canonical event to the call's record and an ``accepted`` receipt;
3. when the active mapping subscribes to the event type, saves an RQ job (RQ's own hash
   layout, JSON serializer, a deterministic id) and pushes it on RQ's queue, exactly as
   RQ's ``unique=True`` enqueue does, and marks the call ``queued``;
4. counts the answer for ``/metrics``.

The job it saves is ``crmsync.queue.SyncJob``'s, built by RQ itself (``JobTemplate``):
``crmsync.queue`` stays the one description of the job.

Being one script, nothing can happen between the duplicate check and the enqueue: an
event is never marked seen without being stored, and two identical deliveries in flight
at once give one job.

Before all that, the script joins the call with Hamsa's call history (SPEC §5, Identity):
the first event of a conversation that syncs (one the mapping subscribes to, so enqueued)
claims ``crmsync:conversation:<conversation id>`` for its call id (a body without a
conversation id claims its own call id); an event that is only recorded (``call.started``,
``transcription.update``) claims nothing, so a call whose ``call.ended`` was lost is still
taken by the sweep. An event of a
conversation whose owner is the conversation id itself (a reconciled call, or a webhook
whose ``callId`` is the conversation id) is recorded for that call, also when its own
``callId`` differs; a reconciled call (``store_reconciled``) is stored only while nobody
has claimed its conversation. Two webhooks with different call ids and one conversation
id stay two calls, as before.
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from crmsync import store
from crmsync.canonical import CanonicalEvent
from crmsync.metrics import PREFIX as METRICS_PREFIX
from crmsync.metrics import label_field
from crmsync.queue import SyncJob, job_id_for, queue_for
from crmsync.record import SyncState

_STORE_SCRIPT = """
-- KEYS: seen, events, receipts, status, job, queue, rq:queues, metric events, metric duplicates,
--       conversation claim, raw bodies
-- ARGV: ttl, event, receipt accepted, receipt duplicate, enqueue, job id, now, metric field,
--       metric field duplicate, receipts max, status ttl, join mode ('', 'webhook', 'reconcile'),
--       call id, conversation id, raw body ('' when the event holds it), raw body ttl,
--       conversation claim ttl, then job hash field/value pairs
-- Returns 1 (stored), 0 (a duplicate), 2 (reconcile: the conversation is already received)
-- or the call id that owns the conversation when that id is the conversation id itself
-- (a reconciled call: record the webhook's event there instead).
local ttl = tonumber(ARGV[1])
local mode = ARGV[12]
if mode ~= '' then
  local owner = redis.call('GET', KEYS[10])
  if owner then
    if mode == 'reconcile' then return 2 end
    if owner ~= ARGV[13] and owner == ARGV[14] then return owner end
  end
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then
  redis.call('RPUSH', KEYS[3], ARGV[4])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[10]), -1)
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('HINCRBY', KEYS[8], ARGV[9], 1)
  redis.call('HINCRBY', KEYS[9], ARGV[9], 1)
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[15] ~= '' then
  redis.call('RPUSH', KEYS[11], ARGV[15])
  redis.call('EXPIRE', KEYS[11], tonumber(ARGV[16]))
end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[10]), -1)
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('HINCRBY', KEYS[8], ARGV[8], 1)
if mode == 'reconcile' or (mode ~= '' and ARGV[5] == '1') then
  redis.call('SET', KEYS[10], ARGV[13], 'NX', 'EX', tonumber(ARGV[17]))
  redis.call('EXPIRE', KEYS[10], tonumber(ARGV[17]))
end
if ARGV[5] == '1' then
  if redis.call('EXISTS', KEYS[5]) == 0 then
    redis.call('HSET', KEYS[5], unpack(ARGV, 18))
    redis.call('RPUSH', KEYS[6], ARGV[6])
    redis.call('SADD', KEYS[7], KEYS[6])
  end
  redis.call('HSET', KEYS[4], 'state', '@QUEUED@', 'updated_at', ARGV[7])
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[11]))
end
return 1
""".replace("@QUEUED@", json.dumps(SyncState.QUEUED))  # the sync record's state field (crmsync.record)


class JobTemplate:
    """RQ's job hash for ``SyncJob``, built once by RQ itself; per event only the id, the
    arguments and the times change (building a ``Job`` per request costs more than the rest
    of the request). ``tests/test_queue.py`` compares it with RQ's own unique enqueue."""

    _PER_JOB = ("data", "created_at", "enqueued_at", "description")

    def __init__(self, queue: Queue) -> None:
        probe = SyncJob.create(queue, "probe", "call.ended", "sync-probe")
        probe.enqueued_at = now()  # what Queue._prepare_for_queue sets before RQ saves it
        self._static: list[Any] = []
        for key, value in probe.to_dict().items():
            if value is not None and key not in self._PER_JOB:
                self._static += [key, value if isinstance(value, bytes | str) else str(value)]

    def fields(self, call_id: str, trigger: str) -> list[Any]:
        moment = utcformat(now())
        data = zlib.compress(JSONSerializer.dumps([SyncJob.func, None, [call_id, trigger], {}]))
        return [
            *self._static,
            "data",
            data,
            "created_at",
            moment,
            "enqueued_at",
            moment,
            "description",
            SyncJob.description(call_id, trigger),
        ]


class Ingest:
    """Stores accepted events; one per process, shared by its request threads."""

    def __init__(self, redis: Redis, dedupe_ttl: int, raw_body_ttl: int | None = None) -> None:
        self._redis = redis
        self._ttl = dedupe_ttl
        self._raw_ttl = min(raw_body_ttl or dedupe_ttl, dedupe_ttl)  # RAW_BODY_TTL
        self._script = redis.register_script(_STORE_SCRIPT)
        queue = queue_for(redis)
        self._queue_key = queue.key
        self._queues_key = queue.redis_queues_keys
        self._template = JobTemplate(queue)

    def store(self, event: CanonicalEvent, dedupe: str, enqueue: bool) -> bool:
        """True when accepted, False when a duplicate. Raises redis errors as they come.
        An event of a conversation that another call id owns is recorded for that call:
        ``event`` then says so (``call_id`` is the owner's, ``joined_from`` its own)."""
        keys, args = self.script_call(event, dedupe, enqueue, join="webhook")
        result = self._script(keys=keys, args=args)
        if isinstance(result, bytes):
            own = event["call_id"]
            rekey(event, result.decode())
            dedupe = event["call_id"] + dedupe[len(own) :] if dedupe.startswith(own + "|") else dedupe
            keys, args = self.script_call(event, dedupe, enqueue, join="")
            result = self._script(keys=keys, args=args)
        return bool(result)

    def store_reconciled(self, event: CanonicalEvent, dedupe: str, enqueue: bool) -> bool:
        """Store a call found in Hamsa's history; False (nothing stored) when its
        conversation was received already, by a webhook or an earlier sweep."""
        keys, args = self.script_call(event, dedupe, enqueue, join="reconcile")
        return self._script(keys=keys, args=args) == 1

    def script_call(
        self, event: CanonicalEvent, dedupe: str, enqueue: bool, join: str = "webhook"
    ) -> tuple[list[str], list[Any]]:
        """The store script's keys and arguments for one event."""
        call_id = event["call_id"]
        conversation = event["call"].get("conversation_id") or call_id
        at = event["received_at"]
        job_id = job_id_for(dedupe, attempt=at)  # one per acceptance: a finished job never blocks a new one
        fields = self._template.fields(call_id, event["event"]) if enqueue else []
        receipt = {
            "event": event["event"],
            "at": at,
            "answer": "accepted",
            "queued": enqueue,
            "source": event.get("source") or "webhook",
        }
        if event.get("joined_from"):
            receipt["call_id"] = event["joined_from"]
        duplicate = {"event": event["event"], "at": at, "answer": "duplicate"}
        keys = [
            store.seen_key(dedupe),
            store.events_key(call_id),
            store.receipts_key(call_id),
            store.status_key(call_id),
            Job.key_for(job_id),
            self._queue_key,
            self._queues_key,
            METRICS_PREFIX + "events_received_total",
            METRICS_PREFIX + "duplicates_total",
            store.conversation_key(conversation),
            store.raw_key(call_id),
        ]
        stored, raw = store.pack_event(event, apart=self._raw_ttl < self._ttl)
        accepted_field, duplicate_field = _answer_fields(event["event"])
        args = [
            self._ttl,
            stored,
            store.dump_json(receipt),
            store.dump_json(duplicate),
            "1" if enqueue else "0",
            job_id,
            store.dump_json(at),
            accepted_field,
            duplicate_field,
            store.RECEIPTS_MAX,
            store.STATUS_TTL,
            join,
            call_id,
            conversation,
            raw,
            self._raw_ttl,
            store.CONVERSATION_TTL,
            *fields,
        ]
        return keys, args


@lru_cache(maxsize=256)
def _answer_fields(event: str) -> tuple[str, str]:
    """The ``/metrics`` label fields of an accepted and a duplicate ``event`` (built once per type)."""
    return label_field(answer="accepted", event=event), label_field(answer="duplicate", event=event)


def rekey(event: CanonicalEvent, owner: str) -> None:
    """Make ``event`` an event of call ``owner`` (the call that claimed its conversation)."""
    event["joined_from"] = event["call_id"]
    event["call_id"] = owner
    event["call"]["id"] = owner
