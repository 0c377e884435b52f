"""What crmsync keeps in Redis, and for how long.

    crmsync:seen:<dedupe key>        "1"                     DEDUPE_TTL   an event delivered before
    crmsync:call:<id>:events         list of canonical events DEDUPE_TTL   what the job rebuilds the call from
    crmsync:call:<id>:receipts       list of {event, at, answer}          the audit trail (capped)
    crmsync:status:<id>              hash: the sync record (SPEC §7 status)  STATUS_TTL
    crmsync:conversation:<id>        the call id that owns a Hamsa conversation  DEDUPE_TTL
    crmsync:calls:failed             zset of call ids in state failed     for replay --failed
    crmsync:quarantine:<qid>         hash: a refused (422) body           QUARANTINE_TTL
    crmsync:quarantine               zset of quarantine ids by time
    crmsync:activity:<crm>:<call id> ledger: "pending:<time>" | activity id   LEDGER_TTLS["activity"]
    crmsync:person:<crm>:<digest>    ledger: "pending:<time>" | person id     LEDGER_TTLS["person"]
    crmsync:created:<crm>:<digest>   JSON: the person created for a number     CREATED_TTL
    crmsync:lock:number:<crm>:<digest>  lock: one create per number at a time  NUMBER_LOCK_TIMEOUT
    rq:job:<id>, rq:queue:crmsync    RQ's own keys (RQ's default prefix, so ``rq info`` shows them)

Everything per call expires: Redis on a managed plan must not fill up, and its eviction
policy must be ``noeviction`` (the deploy guide says so).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from redis import Redis

from crmsync.canonical import CanonicalEvent
from crmsync.settings import Settings

QUEUE_NAME = "crmsync"
STATUS_TTL = 30 * 24 * 3600  # seconds
QUARANTINE_TTL = 30 * 24 * 3600  # seconds
RECEIPTS_MAX = 500  # entries per call
QUARANTINE_MAX = 1_000  # bodies kept at most (up to 2 MiB each)
LEDGER_TTLS = {  # seconds an in-flight ledger entry (crmsync.crm.ledger) is kept, per kind
    "activity": 90 * 24 * 3600,  # longer than any replay window
    "person": 3600,  # longer than any search-index lag (the pipeline searches before creating)
}
CREATED_TTL = 3600  # seconds a created person is remembered by number: longer than any search-index lag
NUMBER_LOCK_TIMEOUT = 60  # seconds


def redis_client(settings: Settings, **kwargs: Any) -> Redis:
    """A client for ``REDIS_URL``; ``rediss://`` honours ``REDIS_SSL_CERT_REQS``."""
    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 30}
    if settings.redis_url.startswith("rediss://") and settings.redis_ssl_cert_reqs:
        options["ssl_cert_reqs"] = settings.redis_ssl_cert_reqs
    options.update(kwargs)
    return Redis.from_url(settings.redis_url, **options)


def ledger_key(kind: str, crm: str, name: str) -> str:
    """An in-flight ledger entry; ``name`` is a call id or a digest, never a phone number."""
    return f"crmsync:{kind}:{crm}:{name}"


def number_key(kind: str, crm: str, number: str) -> str:
    """A per-number key (``created``, ``lock:number``): a digest, never the number itself."""
    return f"crmsync:{kind}:{crm}:{hashlib.sha256(number.encode()).hexdigest()[:32]}"


def seen_key(dedupe: str) -> str:
    return f"crmsync:seen:{dedupe}"


def events_key(call_id: str) -> str:
    return f"crmsync:call:{call_id}:events"


def receipts_key(call_id: str) -> str:
    return f"crmsync:call:{call_id}:receipts"


def conversation_key(conversation_id: str) -> str:
    """Which call owns a Hamsa conversation: how webhooks and the call history join."""
    return f"crmsync:conversation:{conversation_id}"


def status_key(call_id: str) -> str:
    return f"crmsync:status:{call_id}"


FAILED_KEY = "crmsync:calls:failed"
QUARANTINE_INDEX = "crmsync:quarantine"


def quarantine_key(qid: str) -> str:
    return f"crmsync:quarantine:{qid}"


def load_events(redis: Redis, call_id: str) -> list[CanonicalEvent]:
    return [json.loads(item) for item in redis.lrange(events_key(call_id), 0, -1)]


def load_receipts(redis: Redis, call_id: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in redis.lrange(receipts_key(call_id), 0, -1)]


def load_status(redis: Redis, call_id: str) -> dict[str, Any] | None:
    raw: dict[bytes, bytes] = redis.hgetall(status_key(call_id))  # type: ignore[assignment]
    if not raw:
        return None
    record: dict[str, Any] = {}
    for key, value in raw.items():
        text = value.decode()
        try:
            record[key.decode()] = json.loads(text)
        except ValueError:
            record[key.decode()] = text
    return record


def save_status(redis: Redis, call_id: str, **fields: Any) -> None:
    """Merge ``fields`` into the call's sync record (values stored as JSON)."""
    key = status_key(call_id)
    pipe = redis.pipeline()
    pipe.hset(key, mapping={k: json.dumps(v) for k, v in fields.items()})
    pipe.expire(key, STATUS_TTL)
    state = fields.get("state")
    if state == "failed":
        pipe.zadd(FAILED_KEY, {call_id: _now_ts()})
    elif state is not None:
        pipe.zrem(FAILED_KEY, call_id)
    pipe.execute()


def _now_ts() -> float:
    import time

    return time.time()


def call_status(redis: Redis, call_id: str) -> dict[str, Any] | None:
    """``crmsync status CALL_ID --json`` and the console's call page: the sync record and the
    events received, or None when no call has that id."""
    record = load_status(redis, call_id)
    receipts = load_receipts(redis, call_id)
    if record is None and not receipts:
        return None
    return status_document(call_id, record or {}, receipts)


def status_document(call_id: str, record: dict[str, Any], receipts: list[dict[str, Any]]) -> dict[str, Any]:
    fields = record.get("fields") or {}
    return {
        "call_id": call_id,
        "state": record.get("state", "received"),
        "source": record.get("source") or "webhook",  # reconcile / backfill: found in Hamsa's call history
        "unavailable": record.get("unavailable") or [],  # what Hamsa's conversation answer lacked
        "crm": record.get("crm"),
        "person": record.get("person"),
        "activity_id": record.get("activity_id"),
        "fields": {
            "written": fields.get("written", {}),
            "values": fields.get("values", {}),  # the written fields as a person reads them
            "skipped": fields.get("skipped", {}),
            "previous": fields.get("previous", {}),
        },
        "errors": record.get("errors") or [],
        "reason": record.get("reason"),
        "attempts": int(record.get("attempts") or 0),
        "next_attempt_at": record.get("next_attempt_at"),
        "updated_at": record.get("updated_at"),
        "events": receipts,
    }
