"""``crmsync forget``: erase everything crmsync keeps about a person or a call.

``forget_phone(redis, number, region)`` finds every call from that number (the events kept
for each call, and the console's call index), and ``forget_calls`` erases, per call: its
events and raw bodies, receipts, sync record, duplicate markers, the conversation join, RQ
jobs and their results, audit entries, the activity ledger entry, and the call index entry;
for the number: the person ledger and created-person memory (digests of the number), and
quarantined bodies that hold the number. The CRM's own records are the CRM's to delete: this
touches Redis only. A forgotten call that Hamsa delivers again is received as a new one.

Finding calls by number reads every call's events (``SCAN``): an admin's command, not a hot
path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from crmsync import audit, callindex, phones, quarantine, store
from crmsync.audit import Audit
from crmsync.events import dedupe_key

CRMS = ("hubspot", "salesforce")
PERSON_OBJECTS = ("contact", "lead")  # the ledger names people by object (lower case) and number
_CANDIDATE = re.compile(r"\+?\d[\d\s().\-]{5,}\d")


@dataclass
class Removed:
    calls: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    jobs: int = 0


def calls_from(redis: Redis, e164: str) -> list[str]:
    """Every call whose events name ``e164`` as the customer's (or the agent's) number, whose
    index entry does, or whose audit holds it (a phone field written; the audit outlives the
    events)."""
    found = [m.decode() for m in redis.zrange(callindex.phone_key(phones.national_digits(e164)), 0, -1)]  # type: ignore[union-attr]
    for key in redis.scan_iter(match="crmsync:call:*:events", count=1000):
        call_id = key.decode()[len("crmsync:call:") : -len(":events")]
        if call_id in found:
            continue
        for event in store.load_events(redis, call_id):
            call = event.get("call") or {}
            numbers = [call.get("customer_number"), call.get("agent_number"), (event.get("outcome") or {}).get("phone")]
            if any(isinstance(n, str) and phones.matches(n, e164) for n in numbers):
                found.append(call_id)
                break
    national = phones.national_digits(e164)
    for key in redis.scan_iter(match=audit.PREFIX + "call:*", count=1000):
        call_id = key.decode()[len(audit.PREFIX + "call:") :]
        text: bytes | None = redis.get(key)  # type: ignore[assignment]
        if call_id not in found and text and national in re.sub(r"\D", "", text.decode(errors="replace")):
            if any(phones.matches(c, e164) for c in _CANDIDATE.findall(text.decode(errors="replace"))):
                found.append(call_id)
    return found


def forget_phone(redis: Redis, number: str, region: str) -> Removed:
    """Forget every call from ``number`` (typed any way; national formats read in ``region``)
    and what crmsync keeps under the number itself. ``ValueError`` when it is no number."""
    e164 = phones.normalise(number, region)
    if not e164 or not e164.startswith("+") or phones.parse(e164, "ZZ") is None:
        raise ValueError(f"{phones.mask(number)} is not a phone number crmsync can read (region {region})")
    removed = forget_calls(redis, calls_from(redis, e164))
    keys = [store.number_key(kind, crm, e164) for kind in ("created", "lock:number") for crm in CRMS]
    keys += [store.ledger_key("person", crm, _person_digest(obj, e164)) for crm in CRMS for obj in PERSON_OBJECTS]
    removed.keys += [k for k in keys if redis.delete(k)]
    removed.quarantined += _forget_quarantined(redis, e164)
    return removed


def _person_digest(obj: str, e164: str) -> str:
    return hashlib.sha256(f"{obj}\nphone:{e164}".encode()).hexdigest()[:32]  # crmsync.crm.ledger.person_name


def forget_calls(redis: Redis, call_ids: Iterable[str]) -> Removed:
    removed = Removed()
    for call_id in dict.fromkeys(call_ids):
        keys = _call_keys(redis, call_id)
        removed.jobs += _forget_jobs(redis, call_id)
        removed.keys += Audit(redis).forget([call_id])
        _forget_indexed(redis, call_id)
        removed.keys += [k for k in keys if redis.delete(k)]
        redis.zrem(store.FAILED_KEY, call_id)
        removed.calls.append(call_id)
    return removed


def _call_keys(redis: Redis, call_id: str) -> list[str]:
    keys = [
        store.events_key(call_id),
        store.raw_key(call_id),
        store.receipts_key(call_id),
        store.status_key(call_id),
        callindex.entry_key(call_id),
        f"crmsync:lock:call:{call_id}",
    ]
    keys += [store.ledger_key("activity", crm, call_id) for crm in CRMS]
    for event in store.load_events(redis, call_id):
        if "raw" in event:
            keys.append(store.seen_key(dedupe_key(event)))
        conversation = (event.get("call") or {}).get("conversation_id")
        if conversation and redis.get(store.conversation_key(conversation)) in (call_id.encode(), None):
            keys.append(store.conversation_key(conversation))
    keys.append(store.conversation_key(call_id))
    for escaped in dict.fromkeys([call_id, call_id.replace("%", "%25").replace("|", "%7C")]):
        prefix = store.seen_key(escaped + "|")
        keys += [k.decode() for k in redis.scan_iter(match=_glob(prefix) + "*", count=1000)]
    return list(dict.fromkeys(keys))


def _glob(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]\\" else c for c in text)


def _forget_jobs(redis: Redis, call_id: str) -> int:
    """RQ jobs of the call (queued, scheduled, finished, failed) and their results."""
    count = 0
    for key in redis.scan_iter(match="rq:job:*", count=1000):
        name = key.decode()
        if name.count(":") != 2:
            continue  # rq:job:<id>:dependents and such
        description: bytes | None = redis.hget(key, "description")  # type: ignore[assignment]
        if description is None or f"sync call {call_id} (" not in description.decode(errors="replace"):
            continue
        try:
            Job.fetch(name.split(":", 2)[2], connection=redis, serializer=JSONSerializer).delete()
        except NoSuchJobError:
            redis.delete(key)
        count += 1
    return count


def _forget_indexed(redis: Redis, call_id: str) -> None:
    """The call's line in the console's index and its membership of every index set."""
    for key in redis.scan_iter(match=callindex.PREFIX + "*", count=1000):
        if redis.type(key) == b"zset":
            redis.zrem(key, call_id)


def _forget_quarantined(redis: Redis, e164: str) -> list[str]:
    gone = []
    members: list[bytes] = redis.zrange(store.QUARANTINE_INDEX, 0, -1)  # type: ignore[assignment]
    for member in members:
        qid = member.decode()
        body: bytes | None = redis.hget(store.quarantine_key(qid), "body")  # type: ignore[assignment]
        if body is None:
            continue
        text = body.decode(errors="replace")
        try:
            text += "\n" + json.dumps(json.loads(text), ensure_ascii=False)  # \u escapes decoded
        except ValueError:
            pass
        if any(phones.matches(c, e164) for c in _CANDIDATE.findall(text)) and quarantine.drop(redis, qid):
            gone.append(qid)
    return gone
