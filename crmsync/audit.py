"""The field-write audit: what crmsync wrote onto which CRM record, when, from what, and why.

Every sync that writes records one entry per CRM record it touched: the fields written
(field, the value it replaced, the value written, both in the CRM's wire form), the
activity and the person it created, the call id, the CRM, the mapping file and its content
hash. ``crmsync rollback`` appends its own entries (what it put back, what it left). Kept in
Redis for ``AUDIT_TTL`` and bounded per call and per record:

    crmsync:audit:call:<call id>      string: entries, one compact JSON line each   AUDIT_TTL, AUDIT_CALL_BYTES
    crmsync:audit:record:<crm>:<id>   string: the calls that wrote it, one id a line   AUDIT_TTL, AUDIT_RECORD_BYTES
    crmsync:audit:calls               zset call id -> time of its last entry (``--since``), trimmed to AUDIT_TTL

Strings, appended to, rather than lists: a typical call's audit (five fields and its
activity) then costs about 600 bytes in Redis instead of about 1,100 (docs/benchmarks.md).
A string past its bound keeps its newest lines.

No key holds a phone number: call ids and CRM record ids only. Values may (a phone field's
old value): ``crmsync forget`` erases a call's entries.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from crmsync.settings import AUDIT_TTL
from crmsync.times import iso, now_iso

PREFIX = "crmsync:audit:"
CALLS_KEY = PREFIX + "calls"
AUDIT_CALL_BYTES = 64 * 1024  # bytes of entries kept per call (a sync adds about 500, a rollback less)
AUDIT_RECORD_BYTES = 16 * 1024  # bytes of call ids kept per CRM record (the last few hundred calls)
KINDS = ("fields", "activity", "person", "rollback")


def call_key(call_id: str) -> str:
    return f"{PREFIX}call:{call_id}"


def record_key(crm: str, record_id: str) -> str:
    return f"{PREFIX}record:{crm}:{record_id}"


@dataclass
class Entry:
    """One write (or rollback) on one CRM record by one call.

    ``kind``: ``fields`` (``writes`` holds ``(field, old, new)``), ``activity`` or ``person``
    (created by this call: ``record_id`` is the new record), ``rollback`` (``writes`` holds
    ``(field, crmsync's value, the value put back)``, ``left`` the fields a person changed
    since: field -> the CRM's current value, ``deleted`` True for a deleted activity).
    """

    kind: str
    call_id: str
    crm: str
    object: str
    record_id: str
    mapping: str = ""  # the mapping file's name
    mapping_hash: str = ""  # sha256 of its content (12 hex digits)
    at: str = ""  # ISO 8601 UTC
    writes: list[tuple[str, Any, Any]] = field(default_factory=list)
    left: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False

    def pack(self) -> str:
        row: list[Any] = [
            self.kind,
            self.at,
            self.crm,
            self.mapping,
            self.mapping_hash,
            self.object,
            self.record_id,
            [list(w) for w in self.writes],
        ]
        if self.left or self.deleted:
            row += [self.left, self.deleted]
        return json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str)

    @classmethod
    def unpack(cls, call_id: str, raw: bytes | str) -> Entry:
        row = json.loads(raw)
        kind, at, crm, mapping, digest, obj, record_id, writes = row[:8]
        left, deleted = (row[8], row[9]) if len(row) > 8 else ({}, False)
        return cls(
            kind=kind,
            call_id=call_id,
            crm=crm,
            object=obj,
            record_id=record_id,
            mapping=mapping,
            mapping_hash=digest,
            at=at,
            writes=[(w[0], w[1], w[2]) for w in writes],
            left=left,
            deleted=bool(deleted),
        )

    def rows(self) -> list[dict[str, Any]]:
        """``history --json``: one object per field write (or created record, or left field),
        with at least ``field``, ``old``, ``new``, ``at``, ``call_id``, ``mapping``."""
        base = {
            "at": self.at,
            "call_id": self.call_id,
            "crm": self.crm,
            "object": self.object,
            "record_id": self.record_id,
            "mapping": self.mapping,
            "mapping_hash": self.mapping_hash,
        }
        if self.kind in ("activity", "person"):
            return [{**base, "kind": f"{self.kind} created", "field": None, "old": None, "new": self.record_id}]
        kind = "rollback" if self.kind == "rollback" else "write"
        out = [{**base, "kind": kind, "field": name, "old": old, "new": new} for name, old, new in self.writes]
        out += [
            {
                **base,
                "kind": "rollback left",
                "field": name,
                "old": None,
                "new": current,
                "reason": "changed in the CRM since crmsync wrote it",
            }
            for name, current in self.left.items()
        ]
        if self.deleted:
            out.append({**base, "kind": "rollback deleted", "field": None, "old": self.record_id, "new": None})
        return out


class Audit:
    """The audit in Redis. Cheap to build; one per use."""

    def __init__(self, redis: Redis, ttl: int = AUDIT_TTL) -> None:
        self.redis = redis
        self.ttl = ttl

    def record(self, entries: Sequence[Entry]) -> None:
        """Append ``entries`` (one call's), in one round trip (two when a bound is passed)."""
        if not entries:
            return
        now = time.time()
        lines: dict[str, list[str]] = {}
        for entry in entries:
            entry.at = entry.at or now_iso()
            lines.setdefault(call_key(entry.call_id), []).append(entry.pack())
            calls = lines.setdefault(record_key(entry.crm, entry.record_id), [])
            if entry.call_id not in calls:
                calls.append(entry.call_id)
        pipe = self.redis.pipeline(transaction=False)
        for key, items in lines.items():
            pipe.append(key, "".join(item + "\n" for item in items))
            pipe.expire(key, self.ttl)
        for call_id in {e.call_id for e in entries}:
            pipe.zadd(CALLS_KEY, {call_id: now})
        pipe.zremrangebyscore(CALLS_KEY, "-inf", now - self.ttl)
        pipe.expire(CALLS_KEY, self.ttl)
        sizes = pipe.execute()[: 2 * len(lines) : 2]
        for key, size in zip(lines, sizes, strict=True):
            bound = AUDIT_CALL_BYTES if key.startswith(PREFIX + "call:") else AUDIT_RECORD_BYTES
            if int(size) > bound:
                self._trim(key, bound)

    def _trim(self, key: str, bound: int) -> None:
        text = (self.redis.get(key) or b"").decode()  # type: ignore[union-attr]
        kept = text[-(bound // 2) :]
        if len(kept) < len(text):  # start at a whole line: the newest entries stay
            kept = kept[kept.find("\n") + 1 :]
        self.redis.set(key, kept, keepttl=True)

    def _lines(self, key: str) -> list[str]:
        raw: bytes | None = self.redis.get(key)  # type: ignore[assignment]
        return [line for line in (raw or b"").decode().split("\n") if line]

    def for_call(self, call_id: str) -> list[Entry]:
        """The call's entries, oldest first."""
        return [Entry.unpack(call_id, line) for line in self._lines(call_key(call_id))]

    def for_record(self, crm: str, record_id: str) -> list[Entry]:
        """Every entry on ``crm``'s record ``record_id``, oldest first."""
        calls = dict.fromkeys(self._lines(record_key(crm, record_id)))
        entries = [e for c in calls for e in self.for_call(c) if e.record_id == record_id and e.crm == crm]
        return sorted(entries, key=lambda e: e.at)

    def calls_since(self, since: float, mapping: str | None = None) -> list[str]:
        """The call ids that wrote (fields, or created records) at or after ``since`` (epoch
        seconds), oldest first; with ``mapping`` only writes made by that mapping file."""
        raw: list[bytes] = self.redis.zrangebyscore(CALLS_KEY, since, "+inf")  # type: ignore[assignment]
        start = iso(datetime.fromtimestamp(since, UTC))
        out = []
        for call_id in (c.decode() for c in raw):
            if any(
                e.kind != "rollback" and e.at >= start and (mapping is None or e.mapping == mapping)
                for e in self.for_call(call_id)
            ):
                out.append(call_id)
        return out

    def forget(self, call_ids: Iterable[str]) -> list[str]:
        """Erase the calls' entries and their ids in the record lists; the keys removed."""
        removed: list[str] = []
        for call_id in call_ids:
            for crm, record_id in {(e.crm, e.record_id) for e in self.for_call(call_id)}:
                key = record_key(crm, record_id)
                others = [c for c in self._lines(key) if c != call_id]
                if others:
                    self.redis.set(key, "".join(c + "\n" for c in others), keepttl=True)
                elif self.redis.delete(key):
                    removed.append(key)
            if self.redis.delete(call_key(call_id)):
                removed.append(call_key(call_id))
            self.redis.zrem(CALLS_KEY, call_id)
        return removed


def sync_entries(call_id: str, crm: str, profile: Any, mapping: Any, outcome: Any) -> list[Entry]:
    """The entries one sync (``crmsync.outcome.Outcome``) leaves: the person it created, the
    activity and follow-up task it created, the fields it wrote on the person and on the
    linked deal (``<deal object>.<field>`` in the outcome). ``profile`` is the CRM's
    (``crmsync.crm.base.Profile``), ``mapping`` the ``Mapping`` the call used."""
    person = outcome.person or {}
    links = getattr(outcome, "links", None) or {}
    common = {
        "call_id": call_id,
        "crm": crm,
        "mapping": mapping.path.name,
        "mapping_hash": getattr(mapping, "digest", ""),
        "at": now_iso(),
    }
    entries: list[Entry] = []
    if person.get("id") and person.get("created"):
        entries.append(Entry(kind="person", object=str(person.get("type")), record_id=str(person["id"]), **common))
    if outcome.activity_id and getattr(outcome, "activity_created", False):
        entries.append(
            Entry(kind="activity", object=profile.activity_object, record_id=str(outcome.activity_id), **common)
        )
    task_object = getattr(profile, "follow_up_object", None)
    follow_up = links.get("follow_up")
    if task_object and isinstance(follow_up, str) and follow_up and not follow_up.startswith("not created"):
        entries.append(Entry(kind="activity", object=task_object, record_id=follow_up, **common))
    deal = f"{getattr(profile, 'deal_object', '')}."
    writes = [(n, outcome.previous.get(n), v) for n, v in outcome.written.items() if not n.startswith(deal)]
    on_deal = [(n[len(deal) :], outcome.previous.get(n), v) for n, v in outcome.written.items() if n.startswith(deal)]
    if writes and person.get("id"):
        entries.append(
            Entry(kind="fields", object=str(person.get("type")), record_id=str(person["id"]), writes=writes, **common)
        )
    if on_deal and links.get("deal"):
        entries.append(Entry(kind="fields", object=deal[:-1], record_id=str(links["deal"]), writes=on_deal, **common))
    return entries
