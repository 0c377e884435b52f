"""Rollback: put back what calls wrote, where the CRM still holds what crmsync wrote.

``rollback(audit, connector, call_ids, activities=…, dry_run=…)`` walks the calls newest
first (so two calls that wrote one field in turn unwind in order). Per CRM record a call
wrote, it reads the fields first (one request), then:

* the CRM holds crmsync's value: the old value is written back (one request per record);
* the CRM holds the old value already: nothing to do (a rollback run again, or after an
  interruption, does only what is left);
* anything else: a person changed it since; it is left and reported.

With ``activities`` the activities and follow-ups the calls created are deleted (one request
each; one already gone is fine). What was done is appended to the audit (``kind:
rollback``). Every request goes through the connector, so it takes room in the same shared
rate limits (HubSpot) or daily budget (Salesforce) as sync traffic. A dry run reads, plans
and reports, and writes nothing: neither to the CRM nor to the audit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmsync.audit import Audit, Entry
from crmsync.crm.base import Connector
from crmsync.errors import RateLimited

RATE_LIMIT_TRIES = 20  # times one request is tried again after a 429 before the rollback stops


@dataclass
class FieldStep:
    object: str
    record_id: str
    field: str
    written: Any  # what crmsync wrote
    old: Any  # what it replaced: the value put back
    current: Any  # what the CRM holds now
    action: str  # "restore" | "done" (already holds the old value) | "left" (changed since) | "gone"


@dataclass
class CallRollback:
    call_id: str
    fields: list[FieldStep] = field(default_factory=list)
    activities: list[tuple[str, str, str]] = field(default_factory=list)  # (object, id, "delete" | "gone" | "keep")

    def count(self, action: str) -> int:
        return sum(1 for s in self.fields if s.action == action)


@dataclass
class Report:
    dry_run: bool
    calls: list[CallRollback] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # call ids without audit entries

    def total(self, action: str) -> int:
        return sum(c.count(action) for c in self.calls)

    @property
    def deleted(self) -> int:
        return sum(1 for c in self.calls for a in c.activities if a[2] == "delete")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "restored": self.total("restore"),
            "left": self.total("left"),
            "deleted": self.deleted,
            "unknown": self.unknown,
            "calls": [
                {
                    "call_id": c.call_id,
                    "fields": [vars(s) for s in c.fields],
                    "activities": [{"object": o, "id": i, "action": a} for o, i, a in c.activities],
                }
                for c in self.calls
            ],
        }


def rollback(
    audit: Audit, connector: Connector, call_ids: Iterable[str], *, activities: bool = False, dry_run: bool = False
) -> Report:
    """See the module docstring. ``call_ids`` in any order; each is rolled back once."""
    report = Report(dry_run=dry_run)
    seen: dict[tuple[str, str, str], Any] = {}  # (object, record, field) -> the value after an earlier step
    calls = []
    for call_id in dict.fromkeys(call_ids):
        entries = [e for e in audit.for_call(call_id) if e.crm == connector.name]
        if not entries:
            report.unknown.append(call_id)
            continue
        calls.append((max(e.at for e in entries), call_id, entries))
    for _, call_id, entries in sorted(calls, reverse=True):
        done = CallRollback(call_id)
        for entry in entries:
            if entry.kind == "fields":
                done.fields += _restore(connector, entry, seen, dry_run)
        if activities:
            done.activities = _delete(connector, entries, dry_run)
        report.calls.append(done)
        if not dry_run:
            audit.record(_entries(call_id, connector.name, entries, done))
    return report


def _restore(
    connector: Connector, entry: Entry, seen: dict[tuple[str, str, str], Any], dry_run: bool
) -> list[FieldStep]:
    names = [name for name, _, _ in entry.writes]
    current = _patient(connector.read_fields, entry.object, entry.record_id, names)
    steps: list[FieldStep] = []
    back: dict[str, Any] = {}
    for name, old, written in entry.writes:
        key = (entry.object, entry.record_id, name)
        now = seen.get(key, current.get(name) if current is not None else None)
        if current is None:
            action = "gone"
        elif same(now, written) and not same(old, written):
            action, back[name] = "restore", old
        elif same(now, old):
            action = "done"
        else:
            action = "left"
        if action == "restore":
            seen[key] = old
        steps.append(FieldStep(entry.object, entry.record_id, name, written, old, now, action))
    if back and not dry_run:
        _patient(connector.write_fields, entry.object, entry.record_id, back)
    return steps


def _patient(request: Callable[..., Any], *args: Any) -> Any:
    """One connector request; a rate limit (the CRM's 429, or the shared limit's own wait) is
    waited out as ``Retry-After`` says, as sync traffic waits, instead of stopping the rollback."""
    for _ in range(RATE_LIMIT_TRIES - 1):
        try:
            return request(*args)
        except RateLimited as exc:
            time.sleep(max(exc.retry_after, 1.0))
    return request(*args)


def _delete(connector: Connector, entries: list[Entry], dry_run: bool) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    deleted = {e.record_id for e in entries if e.kind == "rollback" and e.deleted}
    seen: set[str] = set()
    for entry in entries:
        if entry.kind != "activity" or entry.record_id in seen:
            continue  # a replay may record the same follow-up again
        seen.add(entry.record_id)
        if entry.record_id in deleted:
            out.append((entry.object, entry.record_id, "gone"))
        elif dry_run:
            out.append((entry.object, entry.record_id, "delete"))
        else:
            gone = not _patient(connector.delete_activity, entry.object, entry.record_id)
            out.append((entry.object, entry.record_id, "gone" if gone else "delete"))
    return out


def _entries(call_id: str, crm: str, entries: list[Entry], done: CallRollback) -> list[Entry]:
    """The audit entries of what this rollback did (nothing done: none)."""
    out: list[Entry] = []
    by_record: dict[tuple[str, str], Entry] = {}
    source = next((e for e in entries if e.kind != "rollback"), entries[0])
    for step in done.fields:
        if step.action not in ("restore", "left"):
            continue
        key = (step.object, step.record_id)
        if key not in by_record:
            by_record[key] = Entry(
                kind="rollback",
                call_id=call_id,
                crm=crm,
                object=step.object,
                record_id=step.record_id,
                mapping=source.mapping,
                mapping_hash=source.mapping_hash,
            )
        if step.action == "restore":
            by_record[key].writes.append((step.field, step.written, step.old))
        else:
            by_record[key].left[step.field] = step.current
    out += by_record.values()
    for obj, record_id, action in done.activities:
        if action == "delete":
            out.append(
                Entry(
                    kind="rollback",
                    call_id=call_id,
                    crm=crm,
                    object=obj,
                    record_id=record_id,
                    mapping=source.mapping,
                    mapping_hash=source.mapping_hash,
                    deleted=True,
                )
            )
    return out


def same(a: Any, b: Any) -> bool:
    """Whether two wire-form values are one value as the CRM holds it: empty is empty, numbers
    by value (``"85000"`` and ``85000.0``), times by instant, multi-picklists as sets."""
    if _empty(a) or _empty(b):
        return _empty(a) and _empty(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    x, y = str(a).strip(), str(b).strip()
    if x == y:
        return True
    moments = _moment(x), _moment(y)
    if None not in moments:
        return moments[0] == moments[1]
    try:
        return float(x) == float(y)
    except ValueError:
        pass
    if ";" in x or ";" in y:
        return {p.strip() for p in x.split(";")} == {p.strip() for p in y.split(";")}
    return False


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _moment(text: str) -> datetime | None:
    """An instant: ISO 8601 with a zone, a date (midnight UTC), or epoch milliseconds (HubSpot)."""
    if text.isdigit() and len(text) >= 11:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    if len(text) == 10 and text[4:5] == "-":
        text += "T00:00:00Z"
    if len(text) < 10 or text[4:5] != "-":
        return None
    cleaned = text.replace("Z", "+00:00")
    if len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]  # Salesforce's +0000
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
