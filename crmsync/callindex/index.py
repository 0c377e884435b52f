"""Writing the call index (the worker) and reading entries back: its keys, its one Lua
script, ``CallIndex`` and ``Entry``. The package docstring lists the keys."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from crmsync import phones, store
from crmsync.canonical import CallContext
from crmsync.record import SyncState

PREFIX = "crmsync:index:"
ALL_KEY = PREFIX + "calls"
AGENTS_KEY = PREFIX + "agents"
MAPPINGS_KEY = PREFIX + "mappings"
# plain strings: click's Choice matches enum members by their names
STATES = tuple(
    s.value for s in (SyncState.QUEUED, SyncState.SYNCED, SyncState.PARTIAL, SyncState.SKIPPED, SyncState.FAILED)
)
# what ``summary`` keeps of a call, and so what an entry holds of it
SUMMARY_FIELDS = (
    "agent_id",
    "agent_name",
    "mapping",
    "source",
    "number",
    "direction",
    "duration_seconds",
    "started_at",
)
ENTRY_FIELDS = ("call_id", "at", "state", *SUMMARY_FIELDS, "crm", "person_type", "person_id", "updated_at")

_WRITE_SCRIPT = """
-- KEYS: all, entry, state key, then the sets to add to (agent, mapping, source, phone…), then the state keys to
--       leave, agents, mappings;  ARGV: id, time, now, cutoff, ttl, n add, n leave, agent, mapping, fields…
local id, ttl = ARGV[1], tonumber(ARGV[5])
local score = redis.call('ZSCORE', KEYS[1], id)
if not score then score = ARGV[2] end
local nadd, nleave = tonumber(ARGV[6]), tonumber(ARGV[7])
for i = 1, 3 + nadd do
  if i ~= 2 then
    redis.call('ZADD', KEYS[i], score, id)
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[4])
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
for i = 4 + nadd, 3 + nadd + nleave do redis.call('ZREM', KEYS[i], id) end
local names = 3 + nadd + nleave
for j = 1, 2 do
  if ARGV[7 + j] ~= '' then
    redis.call('ZADD', KEYS[names + j], ARGV[3], ARGV[7 + j])
    redis.call('EXPIRE', KEYS[names + j], ttl)
  end
end
redis.call('HSET', KEYS[2], 'at', score, unpack(ARGV, 10))
redis.call('EXPIRE', KEYS[2], ttl)
return score
"""


def state_key(state: str) -> str:
    return f"{PREFIX}state:{state}"


def agent_key(agent_id: str) -> str:
    return f"{PREFIX}agent:{agent_id}"


def mapping_key(name: str) -> str:
    return f"{PREFIX}mapping:{name}"


def source_key(source: str) -> str:
    return f"{PREFIX}source:{source}"


def entry_key(call_id: str) -> str:
    return f"{PREFIX}entry:{call_id}"


def phone_key(national: str) -> str:
    """The set of calls from one national number (trunk zeros aside); the key holds a digest,
    never the number."""
    digest = hashlib.sha256(national.lstrip("0").encode()).hexdigest()[:24]
    return f"{PREFIX}phone:{digest}"


def summary(context: CallContext, mapping: str | None) -> dict[str, Any]:
    """What the index keeps of a call, from its canonical context (SPEC §5)."""
    call = context["call"]
    return {
        "agent_id": call.get("agent_id"),
        "agent_name": call.get("agent_name"),
        "mapping": mapping,
        "source": call.get("source") or "webhook",
        "number": call.get("customer_number"),
        "direction": call.get("direction"),
        "duration_seconds": call.get("duration_seconds"),
        "started_at": call.get("started_at"),
    }


class CallIndex:
    """Writes and reads the index; one per process (the script is registered once)."""

    def __init__(self, redis: Redis, ttl: int = store.STATUS_TTL) -> None:
        self.redis = redis
        self.ttl = ttl
        self._script = redis.register_script(_WRITE_SCRIPT)

    def write(
        self,
        call_id: str,
        state: str,
        *,
        call: dict[str, Any] | None = None,
        person: dict[str, Any] | None = None,
        crm: str | None = None,
        updated_at: str | None = None,
    ) -> None:
        """Put the call under ``state`` (and out of every other state); ``call`` is its
        ``summary`` when known (the first write of a call should carry it). A call new to the
        index is scored ``call["time"]`` when given (epoch seconds), else now."""
        call = call or {}
        now = time.time()
        adds = []
        if call.get("agent_id"):
            adds.append(agent_key(str(call["agent_id"])))
        if call.get("mapping"):
            adds.append(mapping_key(str(call["mapping"])))
        if call.get("source"):
            adds.append(source_key(str(call["source"])))
        number = call.get("number")
        if isinstance(number, str) and number.startswith("+") and phones.parse(number, "ZZ") is not None:
            adds.append(phone_key(phones.national_digits(number)))
        leave = [state_key(s) for s in STATES if s != state]
        fields: dict[str, Any] = {"call_id": call_id, "state": state, "updated_at": updated_at or "", "crm": crm}
        if person:
            fields.update(person_type=person.get("type"), person_id=person.get("id"))
        for name in SUMMARY_FIELDS:
            if call.get(name) not in (None, ""):
                fields[name] = call[name]
        flat = [str(x) for pair in fields.items() if pair[1] not in (None, "") for x in pair]
        keys = [ALL_KEY, entry_key(call_id), state_key(state), *adds, *leave, AGENTS_KEY, MAPPINGS_KEY]
        args = [
            call_id,
            call.get("time") or now,
            now,
            now - self.ttl,
            self.ttl,
            len(adds),
            len(leave),
            call.get("agent_id") or "",
            call.get("mapping") or "",
            *flat,
        ]
        self._script(keys=keys, args=args)

    def entries(self, call_ids: Iterable[str]) -> list[Entry]:
        """The index entries of ``call_ids`` in that order; expired ones are left out (and
        removed from the index)."""
        ids = list(call_ids)
        pipe = self.redis.pipeline()
        for call_id in ids:
            pipe.hgetall(entry_key(call_id))
        found = []
        gone = []
        for call_id, raw in zip(ids, pipe.execute(), strict=True):
            if raw:
                found.append(Entry.from_hash(raw))
            else:
                gone.append(call_id)
        if gone:
            self.redis.zrem(ALL_KEY, *gone)
        return found

    def choices(self) -> dict[str, list[str]]:
        """The agents and mapping files seen, most recent first (for the filters)."""
        pipe = self.redis.pipeline()
        pipe.zrevrange(AGENTS_KEY, 0, 199)
        pipe.zrevrange(MAPPINGS_KEY, 0, 199)
        agents, mappings = pipe.execute()
        return {"agents": [a.decode() for a in agents], "mappings": [m.decode() for m in mappings]}


@dataclass(frozen=True)
class Entry:
    """One call's line in the console's lists. ``number`` is the full number: show ``masked``."""

    call_id: str
    at: float
    state: str
    agent_id: str | None = None
    agent_name: str | None = None
    mapping: str | None = None
    source: str | None = None
    number: str | None = None
    direction: str | None = None
    duration_seconds: str | None = None
    started_at: str | None = None
    crm: str | None = None
    person_type: str | None = None
    person_id: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Entry:
        values = {k.decode(): v.decode() for k, v in raw.items() if k.decode() in ENTRY_FIELDS}
        return cls(**{**values, "at": float(values.get("at") or 0)})  # type: ignore[arg-type]

    @property
    def masked(self) -> str:
        return phones.mask(self.number)

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%d %H:%M")
