"""What crmsync keeps in Redis, and for how long: every key family, in ``KEY_FAMILIES``.

A key crmsync (or a library it drives: RQ) writes belongs to exactly one
family below; ``tests/conftest.py`` fails a test that leaves a key of an undeclared family,
or one that lives longer than its family's TTL. A new kind of record starts here.

Everything per call expires: Redis on a managed plan must not fill up, and its eviction
policy must be ``noeviction`` (the deploy guide says so).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import orjson
from redis import Redis

from crmsync.canonical import CanonicalEvent
from crmsync.settings import AUDIT_TTL, DEDUPE_TTL, Settings

QUEUE_NAME = "crmsync"
STATUS_TTL = 30 * 24 * 3600  # seconds
QUARANTINE_TTL = 30 * 24 * 3600  # seconds
RECEIPTS_MAX = 500  # entries per call
QUARANTINE_MAX = 1_000  # bodies kept at most (up to 2 MiB each)
LEDGER_TTLS = {  # seconds an in-flight ledger entry (crmsync.crm.ledger) is kept, per kind
    "activity": 90 * 24 * 3600,  # longer than any replay window
    "person": 3600,  # longer than any search-index lag (the pipeline searches before creating)
    "follow_up": 90 * 24 * 3600,  # a call's follow-up task, by call id: as long as its activity
}
# seconds a conversation's claim (which call owns it) is kept: as long as the activity ledger,
# so that whatever runs over a call crmsync received within it (a sweep, a backfill) finds it
CONVERSATION_TTL = LEDGER_TTLS["activity"]
CREATED_TTL = 3600  # seconds a created person is remembered by number: longer than any search-index lag
NUMBER_LOCK_TIMEOUT = 60  # seconds
RECONCILE_LOCK_TTL = 180  # seconds: crmsync.hamsa.sweep.LOCK_TTL, renewed between calls and retries
CALL_LOCK_TTL = 60  # seconds a call stays locked by its job (RQ stops a job after queue.JOB_TIMEOUT, 50 s)
DAY = 24 * 3600


@dataclass(frozen=True)
class KeyFamily:
    """Keys matching ``pattern`` (a glob): what they hold, who writes them, and ``ttl``: the
    longest they live, in seconds (None: no expiry; the family is bounded another way)."""

    pattern: str
    holds: str
    ttl: int | None
    writer: str

    def matches(self, key: str) -> bool:
        return fnmatchcase(key, self.pattern)


KEY_FAMILIES: tuple[KeyFamily, ...] = (
    KeyFamily("crmsync:seen:*", 'an event delivered before ("1")', DEDUPE_TTL, "queue (DEDUPE_TTL)"),
    KeyFamily(
        "crmsync:call:*:events",
        "list of the call's canonical events (zlib-compressed JSON, raw body included unless RAW_BODY_TTL is shorter)",
        DEDUPE_TTL,
        "queue; jobs keep it",
    ),
    KeyFamily(
        "crmsync:call:*:raw", "list of raw bodies (compressed), when RAW_BODY_TTL < DEDUPE_TTL", DEDUPE_TTL, "queue"
    ),
    KeyFamily(
        "crmsync:call:*:receipts",
        f"list of {{event, at, answer}}, the last {RECEIPTS_MAX}",
        DEDUPE_TTL,
        "queue; jobs keep it",
    ),
    KeyFamily(
        "crmsync:conversation:*", "the call id that owns a Hamsa conversation", CONVERSATION_TTL, "queue (the ledger's)"
    ),
    KeyFamily("crmsync:status:*", "hash: the sync record (crmsync.record)", STATUS_TTL, "record"),
    KeyFamily("crmsync:calls:failed", "zset of call ids in state failed (replay --failed)", None, "record"),
    KeyFamily("crmsync:lock:call:*", "the lock of a call's running job", CALL_LOCK_TTL, "jobs"),
    KeyFamily("crmsync:quarantine:*", "hash: a refused (422) body", QUARANTINE_TTL, "web"),
    KeyFamily("crmsync:quarantine", f"zset of quarantine ids by time, the last {QUARANTINE_MAX}", None, "web"),
    KeyFamily("crmsync:metrics:*", "hash: one /metrics counter by labels", None, "metrics"),
    KeyFamily(
        "crmsync:credentials",
        "hash crm -> problem, while a CRM or Hamsa refuses crmsync",
        None,
        "jobs (900 s), hamsa.sweep (3 x HAMSA_RECONCILE_INTERVAL)",
    ),
    KeyFamily("crmsync:index:*", "the call index the console lists from (crmsync.callindex)", STATUS_TTL, "callindex"),
    KeyFamily(
        "crmsync:lock:reconcile", "the lock of the running reconciliation sweep", RECONCILE_LOCK_TTL, "hamsa.sweep"
    ),
    KeyFamily(
        "crmsync:reconcile:slot:*",
        "one scheduled sweep per slot",
        None,
        "hamsa.schedule (2 x HAMSA_RECONCILE_INTERVAL + 60 s)",
    ),
    KeyFamily("crmsync:reconcile:watermark", "hash scope -> epoch ms the sweeps have covered", None, "hamsa.sweep"),
    KeyFamily("crmsync:reconcile:last", "hash: the last sweep's outcome", None, "hamsa.sweep"),
    KeyFamily("crmsync:reconcile:runs", "list: the latest sweeps, newest first (trimmed)", None, "hamsa.sweep"),
    KeyFamily(
        "crmsync:reconcile:missed", "zset of calls a sweep found without a webhook (trimmed)", None, "hamsa.sweep"
    ),
    KeyFamily("crmsync:console:session:*", "a console login", 8 * 3600, "web.console.auth"),
    KeyFamily("crmsync:console:failures:*", "wrong console passwords from one source", 15 * 60, "web.console.auth"),
    KeyFamily("crmsync:console:wait:*", "a source slowed after wrong passwords", 60, "web.console.auth"),
    KeyFamily("crmsync:lock:number:*", "lock: one create per number at a time", NUMBER_LOCK_TIMEOUT, "pipeline"),
    KeyFamily("crmsync:created:*", "JSON: the person created for a number", CREATED_TTL, "pipeline"),
    KeyFamily(
        "crmsync:activity:*", 'ledger: "pending:<time>" | activity id, per call', LEDGER_TTLS["activity"], "crm.ledger"
    ),
    KeyFamily(
        "crmsync:person:*",
        'ledger: "pending:<time>" | person id, per number digest',
        LEDGER_TTLS["person"],
        "crm.ledger",
    ),
    KeyFamily(
        "crmsync:follow_up:*",
        'ledger: "pending:<time>" | follow-up task id, per call',
        LEDGER_TTLS["follow_up"],
        "crm.ledger",
    ),
    KeyFamily("crmsync:salesforce:api_usage", "Salesforce's last Sforce-Limit-Info", 300, "crm.salesforce_client"),
    KeyFamily(
        "crmsync:limits:*",
        "a CRM rate limit's moving window: slot times, newest first",
        DAY + 60,  # the longest window (Salesforce's day) plus the guard
        "crm.ratelimit",
    ),
    KeyFamily("crmsync:audit:call:*", "a call's field-write audit: JSON lines (crmsync.audit)", AUDIT_TTL, "audit"),
    KeyFamily("crmsync:audit:record:*", "the calls that wrote a CRM record, one id a line", AUDIT_TTL, "audit"),
    KeyFamily("crmsync:audit:calls", "zset call id -> time of its last audit entry", AUDIT_TTL, "audit"),
    KeyFamily("rq:*", "RQ's own keys (jobs, queues, registries, workers, results)", None, "RQ"),
)


def key_family(key: str) -> KeyFamily | None:
    """The family ``key`` belongs to (the first that matches), or None."""
    return next((family for family in KEY_FAMILIES if family.matches(key)), None)


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


def call_lock_key(call_id: str) -> str:
    return f"crmsync:lock:call:{call_id}"


FAILED_KEY = "crmsync:calls:failed"
QUARANTINE_INDEX = "crmsync:quarantine"


def quarantine_key(qid: str) -> str:
    return f"crmsync:quarantine:{qid}"


def raw_key(call_id: str) -> str:
    """The call's raw bodies when they are kept for less time than its events (``RAW_BODY_TTL``)."""
    return f"crmsync:call:{call_id}:raw"


def dump_json(value: Any) -> bytes:
    """``value`` as crmsync writes JSON into Redis: orjson's compact UTF-8; the standard library
    for what orjson refuses (integers beyond 64 bits, text with lone surrogates)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def pack_event(event: Any, *, apart: bool) -> tuple[bytes, bytes]:
    """An event as the store script keeps it: compressed JSON (the canonical event and its raw
    body hold the same transcript twice, which compression stores about once), and, with
    ``apart``, the raw body compressed on its own (kept for ``RAW_BODY_TTL``) instead."""
    if not apart:
        return zlib.compress(dump_json(event), 6), b""
    canonical = {k: v for k, v in event.items() if k != "raw"}
    return zlib.compress(dump_json(canonical), 6), zlib.compress(dump_json(event.get("raw")), 6)


def _unpack(item: bytes) -> Any:
    return json.loads(zlib.decompress(item) if item[:1] == b"\x78" else item)  # JSON starts with "{"


def load_events(redis: Redis, call_id: str) -> list[CanonicalEvent]:
    """The call's events, oldest first (those stored compressed or as plain JSON alike)."""
    items: list[bytes] = redis.lrange(events_key(call_id), 0, -1)  # type: ignore[assignment]
    return [_unpack(item) for item in items]


def load_raw(redis: Redis, call_id: str) -> list[Any]:
    """The raw bodies kept apart (``RAW_BODY_TTL`` shorter than ``DEDUPE_TTL``), oldest first."""
    items: list[bytes] = redis.lrange(raw_key(call_id), 0, -1)  # type: ignore[assignment]
    return [_unpack(item) for item in items]


def load_receipts(redis: Redis, call_id: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in redis.lrange(receipts_key(call_id), 0, -1)]
