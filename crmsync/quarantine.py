"""The quarantine: authenticated webhook bodies refused with 422, kept for an admin (SPEC §4, §7).

One module for every reader and writer: the web process keeps a body (``keep``), the
``crmsync quarantine`` commands list, show, replay and drop them. Each body is a hash
``store.quarantine_key(qid)`` that expires after ``store.QUARANTINE_TTL``, indexed by time
in the sorted set ``store.QUARANTINE_INDEX``; at most ``store.QUARANTINE_MAX`` are kept,
the oldest going first. Every function raises Redis errors as they come.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis import Redis

from crmsync import events, store
from crmsync.events import CanonicalEvent
from crmsync.providers.registry import PLATFORMS
from crmsync.times import now_iso

if TYPE_CHECKING:
    from crmsync.ingest import Ingest

LIST_LIMIT = 200  # newest bodies listed

# How each platform's bodies become canonical events, by the name ``keep`` was given.
Normaliser = Callable[[dict[str, Any], str], CanonicalEvent]
NORMALISERS: dict[str, Normaliser] = {
    "hamsa": events.normalise,
    **{name: platform.normalise for name, platform in PLATFORMS.items()},
}


@dataclass(frozen=True)
class Quarantined:
    """One kept body; ``body`` is ``None`` when only the summary was read."""

    id: str
    received_at: str
    source: str
    details: dict[str, list[str]]
    provider: str = "hamsa"
    body: bytes | None = None

    def problems(self) -> str:
        """The validation messages on one line."""
        return "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in self.details.items())

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "source": self.source,
            "provider": self.provider,
            "details": self.details,
        }


class StillInvalid(Exception):
    """Replay refused: the body is still no recognisable event; it stays in the quarantine."""

    def __init__(self, qid: str, details: dict[str, list[str]]) -> None:
        self.qid = qid
        self.details = details
        problems = "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in details.items())
        super().__init__(f"{qid} is still not a recognisable event: {problems}")


@dataclass(frozen=True)
class Replayed:
    qid: str
    accepted: bool  # False: the event had been delivered before (a duplicate)
    event: str
    call_id: str


def keep(redis: Redis, raw: bytes, details: dict[str, list[str]], source: str, provider: str = "hamsa") -> str:
    """Keep ``raw`` with its validation ``details``; returns the new quarantine id."""
    qid = uuid.uuid4().hex[:16]
    record: dict[str, str | bytes] = {
        "id": qid,
        "received_at": now_iso(),
        "source": source,
        "details": json.dumps(details),
        "body": raw,
    }
    if provider != "hamsa":
        record["provider"] = provider
    key = store.quarantine_key(qid)
    pipe = redis.pipeline()
    pipe.hset(key, mapping=record)  # type: ignore[arg-type]
    pipe.expire(key, store.QUARANTINE_TTL)
    pipe.zadd(store.QUARANTINE_INDEX, {qid: time.time()})
    pipe.zcard(store.QUARANTINE_INDEX)
    kept = int(pipe.execute()[-1])
    if kept > store.QUARANTINE_MAX:  # bounded: the oldest bodies go first
        oldest = redis.zpopmin(store.QUARANTINE_INDEX, kept - store.QUARANTINE_MAX)
        redis.delete(*(store.quarantine_key(member.decode()) for member, _ in oldest))  # type: ignore[union-attr,str-unpack]
    return qid


def newest(redis: Redis, limit: int = LIST_LIMIT) -> list[Quarantined]:
    """The newest ``limit`` bodies' summaries, newest first; expired ones leave the index."""
    ids = [member.decode() for member in redis.zrevrange(store.QUARANTINE_INDEX, 0, limit - 1)]  # type: ignore[union-attr]
    found = []
    for qid in ids:
        fields: list[bytes | None] = redis.hmget(  # type: ignore[assignment]
            store.quarantine_key(qid), "received_at", "source", "details", "provider"
        )
        received, source, details, provider = fields
        if received is None or source is None or details is None:
            redis.zrem(store.QUARANTINE_INDEX, qid)
            continue
        found.append(
            Quarantined(qid, received.decode(), source.decode(), json.loads(details), (provider or b"hamsa").decode())
        )
    return found


def get(redis: Redis, qid: str) -> Quarantined | None:
    """One body with its summary, or ``None`` when there is none (dropped, replayed or expired)."""
    raw: dict[bytes, bytes] = redis.hgetall(store.quarantine_key(qid))  # type: ignore[assignment]
    if not raw:
        return None
    return Quarantined(
        qid,
        raw[b"received_at"].decode(),
        raw[b"source"].decode(),
        json.loads(raw[b"details"]),
        raw.get(b"provider", b"hamsa").decode(),
        raw[b"body"],
    )


def drop(redis: Redis, qid: str) -> bool:
    """Remove one body; False when there was none."""
    pipe = redis.pipeline()
    pipe.delete(store.quarantine_key(qid))
    pipe.zrem(store.QUARANTINE_INDEX, qid)
    return bool(pipe.execute()[0])


def replay(redis: Redis, qid: str, ingest: Ingest, wants: Callable[[str], bool], default_region: str) -> Replayed:
    """Submit a kept body again, as the webhook would, and drop it once stored.

    ``wants(event_type)`` says whether the event becomes a job (the active mapping's
    ``events:``). Raises ``LookupError`` when ``qid`` is not kept and ``StillInvalid``
    when the body is still refused (it is then kept as it was).
    """
    kept = get(redis, qid)
    if kept is None or kept.body is None:
        raise LookupError(qid)
    try:
        body = json.loads(kept.body)
        if not isinstance(body, dict):
            raise StillInvalid(qid, {"body": ["must be a JSON object"]})
        event = NORMALISERS[kept.provider](body, default_region)
    except events.InvalidEvent as invalid:  # before ValueError, which it is
        raise StillInvalid(qid, invalid.details) from None
    except ValueError:
        raise StillInvalid(qid, {"body": ["is not valid JSON"]}) from None
    accepted = ingest.store(event, events.dedupe_key(event), enqueue=wants(event["event"]))
    drop(redis, qid)
    return Replayed(qid, accepted, event["event"], event["call_id"])
