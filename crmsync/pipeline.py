"""Syncing one call: match the caller, create them if the mapping says so, upsert the
activity and write the fields. Pure orchestration over the connector contract; the
job (``crmsync.jobs``) adds locking, retries and the sync record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from crmsync import store
from crmsync.canonical import CallContext
from crmsync.crm.base import Activity, Connector, Person, WriteResult
from crmsync.errors import PermanentError
from crmsync.mapping.coerce import readable
from crmsync.mapping.model import Mapping
from crmsync.mapping.remote import choose_person
from crmsync.times import now_iso

log = logging.getLogger(__name__)



@dataclass
class Outcome:
    """What one sync did, for the sync record."""

    state: str  # synced | partial | skipped
    person: dict[str, Any] | None = None
    activity_id: str | None = None
    activity_created: bool = False  # this sync created the activity (the audit records it; rollback deletes it)
    written: dict[str, Any] = field(default_factory=dict)  # field -> the value as the CRM took it (wire form)
    values: dict[str, Any] = field(default_factory=dict)  # the same fields' values as a person reads them
    previous: dict[str, Any] = field(default_factory=dict)  # the values the written fields replaced
    skipped: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None


def sync(context: CallContext, mapping: Mapping, connector: Connector, redis: Redis, region: str) -> Outcome:
    unserved = mapping.refuses_provider(context["call"])
    if unserved:
        return Outcome(state="skipped", reason=unserved)
    status = context["call"].get("status")
    if status and status not in mapping.statuses:
        return Outcome(state="skipped", reason=f"the call's status is {status}: the mapping logs "
                                               f"{', '.join(mapping.statuses)} (statuses:)")
    number = mapping.lookup_number(context, region)
    if not number or not number.startswith("+"):
        return Outcome(state="skipped", reason="no usable customer phone number in the call")
    objects = list(mapping.match.objects)
    read = _read_fields(mapping, objects)
    people = connector.find_people(number, objects, read)
    person, _ = choose_person(people, mapping.match.on_multiple)
    if person is None and people:
        return Outcome(state="skipped", reason=f"ambiguous: {len(people)} people have this number")
    at_create: dict[str, Any] = {}  # fields written by the create itself (typed values)
    logged: WriteResult | None = None  # the call, when the create logged it too
    if person is None:
        person = remembered(redis, connector.name, number)
    if person is None:
        if mapping.match.on_missing != "create":
            return Outcome(state="skipped", reason="no person in the CRM has this number")
        person, at_create, logged = create_once(context, mapping, connector, redis, number, read, region)
    plan = mapping.plan(context, person.object, person.values, region)
    activity = build_activity(context, plan, person)
    result = logged or connector.write_call(person, activity, plan.updates)
    written = {**connector.profile.wire_values(at_create), **result.written}
    values = {k: readable(v) for k, v in at_create.items()} | {
        f.to: readable(f.value) for f in plan.fields if f.action == "write" and f.to in result.written}
    skipped = {f.to: f.reason for f in plan.fields if f.action == "skip" and f.to not in at_create}
    problems = [f for f in plan.fields if f.action == "skip" and f.problem] + list(plan.problems)
    for name, reason in result.rejected.items():
        skipped[name] = f"refused by the CRM: {reason}"
    errors: list[dict[str, Any]] = [{"field": name, "message": reason} for name, reason in result.rejected.items()]
    errors += [{"message": problem} for problem in plan.problems]
    state = "partial" if problems or result.rejected else "synced"
    return Outcome(
        state=state,
        person=person.to_dict(),
        activity_id=result.activity_id,
        activity_created=result.activity_created,
        written=written,
        values=values,
        previous={f.to: f.old for f in plan.fields if f.action == "write" and f.to in result.written}
        | dict.fromkeys(at_create),
        skipped=skipped,
        errors=errors,
    )


def _read_fields(mapping: Mapping, objects: list[str]) -> list[str]:
    names: list[str] = []
    for obj in objects:
        for name in mapping.read_fields(obj):
            if name not in names:
                names.append(name)
    return names


def _memory_key(crm: str, number: str) -> str:
    return store.number_key("created", crm, number)


def remembered(redis: Redis, crm: str, number: str) -> Person | None:
    """A person crmsync created for this number recently (the CRM's search may lag)."""
    raw = redis.get(_memory_key(crm, number))
    if not raw:
        return None
    data = json.loads(raw)
    return Person(object=data["object"], id=data["id"], phones={}, owner_id=data.get("owner_id"),
                  values=data.get("values") or {}, created=False)


def create_once(
    context: CallContext, mapping: Mapping, connector: Connector, redis: Redis, number: str, read: list[str],
    region: str,
) -> tuple[Person, dict[str, Any], WriteResult | None]:
    """Create the caller once, even when two calls from one new number sync at once.

    The mapped fields go into the create itself (one request fewer than create-then-
    update); if the CRM refuses one of them, the person is created with
    ``match.create.properties`` alone and the fields follow in the normal write, where a
    refused field is reported and the rest still land. A connector that can create the
    person and log the call in one request (``create_with_call``: Salesforce's composite)
    does both. Returns the person, the fields the create wrote (typed values), and the
    call's write when it is already done.
    """
    lock = redis.lock(store.number_key("lock:number", connector.name, number), timeout=store.NUMBER_LOCK_TIMEOUT,
                      blocking_timeout=store.NUMBER_LOCK_TIMEOUT)
    with lock:
        existing = remembered(redis, connector.name, number)
        if existing is not None:
            return existing, {}, None
        obj = mapping.match.create_object or mapping.match.objects[0]
        base = mapping.create_properties(context)
        plan = mapping.plan(context, obj, {}, region)
        fields = {k: v for k, v in plan.updates.items() if k not in base}
        logged: WriteResult | None = None
        try:
            done = connector.create_with_call(obj, {**fields, **base}, read, build_activity(context, plan, None))
            if done is not None:
                person, logged = done
            else:
                person = connector.create_person(obj, {**fields, **base}, read)
        except PermanentError as exc:
            if not fields or not set(exc.fields) & set(fields):
                raise
            person, fields, logged = connector.create_person(obj, base, read), {}, None
        memory = {"object": person.object, "id": person.id, "owner_id": person.owner_id, "values": person.values}
        redis.set(_memory_key(connector.name, number), json.dumps(memory), ex=store.CREATED_TTL)
        log.info("person created", extra={"call_id": context["call"]["id"], "object": person.object,
                                           "person_id": person.id})
        return person, fields, logged


def build_activity(context: CallContext, plan: Any, person: Person | None) -> Activity:
    """The plan's activity, owned by the person's owner unless the mapping named another."""
    activity: Activity = plan.activity
    activity.owner_id = activity.owner_id or (person.owner_id if person else None)
    activity.timestamp = activity.timestamp or now_iso()
    return activity
