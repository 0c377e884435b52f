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
from crmsync.crm.base import Activity, CallWrite, Connector, Links, Person, WriteResult
from crmsync.errors import PermanentError
from crmsync.mapping.engine import FieldPlan, Plan
from crmsync.mapping.links import follow_up
from crmsync.mapping.model import Mapping
from crmsync.mapping.remote import choose_person
from crmsync.outcome import Extras, Outcome, of_write
from crmsync.record import SyncState
from crmsync.times import now_iso

log = logging.getLogger(__name__)


@dataclass
class Lookup:
    """A call ready for its caller's lookup: the number to find and what to read."""

    context: CallContext
    mapping: Mapping
    region: str
    number: str
    objects: tuple[str, ...]
    read: tuple[str, ...]


@dataclass
class Planned:
    """A call whose person is known: its field plan, its activity, and what creating the
    person already did (the fields the create wrote; the call, when the create logged it)."""

    lookup: Lookup
    person: Person
    plan: Plan
    activity: Activity
    extras: Extras
    at_create: dict[str, Any] = field(default_factory=dict)
    logged: WriteResult | None = None

    @property
    def batchable(self) -> bool:
        """Its write may join a batch (``Connector.write_calls``): nothing is logged yet and
        nothing is linked (links and follow-ups take ``write_call``'s own path)."""
        return self.logged is None and not _attaches(self.lookup.mapping, self.extras)

    def call_write(self) -> CallWrite:
        return CallWrite(self.person, self.activity, self.plan.updates)


def sync(context: CallContext, mapping: Mapping, connector: Connector, redis: Redis, region: str) -> Outcome:
    """The whole sync of one call: ``begin``, the lookup, ``plan_call``, ``write``."""
    lookup = begin(context, mapping, region)
    if isinstance(lookup, Outcome):
        return lookup
    planned = plan_call(lookup, connector.find_people(lookup.number, lookup.objects, lookup.read), connector, redis)
    if isinstance(planned, Outcome):
        return planned
    return write(planned, connector)


def begin(context: CallContext, mapping: Mapping, region: str) -> Outcome | Lookup:
    """What needs no CRM: a call the mapping does not log is skipped (with its reason);
    otherwise the number to look up and the fields to read."""
    unserved = mapping.refuses_provider(context["call"])
    if unserved:
        return Outcome(state=SyncState.SKIPPED, reason=unserved)
    status = context["call"].get("status")
    if status and status not in mapping.statuses:
        return Outcome(
            state=SyncState.SKIPPED,
            reason=f"the call's status is {status}: the mapping logs {', '.join(mapping.statuses)} (statuses:)",
        )
    number = mapping.lookup_number(context, region)
    if not number or not number.startswith("+"):
        return Outcome(state=SyncState.SKIPPED, reason="no usable customer phone number in the call")
    objects = tuple(mapping.match.objects)
    return Lookup(context, mapping, region, number, objects, tuple(_read_fields(mapping, list(objects))))


def plan_call(lookup: Lookup, people: list[Person], connector: Connector, redis: Redis) -> Outcome | Planned:
    """Given the people found for the number: choose one, or create one once (the create may
    log the call too), and plan the activity and the fields; or skip the call."""
    context, mapping, region = lookup.context, lookup.mapping, lookup.region
    person, _ = choose_person(people, mapping.match.on_multiple)
    if person is None and people:
        return Outcome(state=SyncState.SKIPPED, reason=f"ambiguous: {len(people)} people have this number")
    extras = _extras(context, mapping, region)
    at_create: dict[str, Any] = {}  # fields written by the create itself (typed values)
    logged: WriteResult | None = None  # the call, when the create logged it too
    if person is None:
        person = remembered(redis, connector.name, lookup.number)
    if person is None:
        if mapping.match.on_missing != "create":
            return Outcome(state=SyncState.SKIPPED, reason="no person in the CRM has this number")
        person, at_create, logged = create_once(
            context, mapping, connector, redis, lookup.number, list(lookup.read), region, extras
        )
    plan = mapping.plan(context, person.object, person.values, region)
    return Planned(lookup, person, plan, build_activity(context, plan, person), extras, at_create, logged)


def write(planned: Planned, connector: Connector) -> Outcome:
    """Log the planned call on its person (with its links) and write its fields."""
    lookup, person = planned.lookup, planned.person
    links = _links(lookup.context, lookup.mapping, connector, person, lookup.region, planned.extras)
    result = planned.logged or connector.write_call(person, planned.activity, planned.plan.updates, links)
    return complete(planned, connector, result)


def complete(planned: Planned, connector: Connector, result: WriteResult) -> Outcome:
    """The outcome of a planned call whose write came back as ``result``."""
    return of_write(connector, planned.person, planned.plan, planned.at_create, result, planned.extras)


def _extras(context: CallContext, mapping: Mapping, region: str) -> Extras:
    extras = Extras()
    if mapping.follow_up is not None:
        extras.follow_up, extras.follow_up_reason, extras.problems = follow_up(mapping.follow_up, context, region)
        if extras.follow_up is not None and mapping.redact:  # redact: applies to every text sent to the CRM
            extras.follow_up.title = mapping.redact(extras.follow_up.title)
            extras.follow_up.body = mapping.redact(extras.follow_up.body)
    return extras


def _attaches(mapping: Mapping, extras: Extras) -> bool:
    """The call's write attaches something: a company, a deal or a follow-up."""
    return mapping.link.any or extras.follow_up is not None


def _links(
    context: CallContext, mapping: Mapping, connector: Connector, person: Person, region: str, extras: Extras
) -> Links | None:
    """What ``write_call`` attaches; None (no request more) when the mapping links nothing."""
    if not _attaches(mapping, extras):
        return None
    links = Links(company=mapping.link.company, follow_up=extras.follow_up)
    if mapping.link.deal != "none":
        links.deal = connector.find_deal(person, [rule.to for rule in mapping.deal_fields()])
    if links.deal is not None:
        extras.deal_fields = mapping.plan_deal(context, links.deal.values, region)
        links.deal_updates = {f.to: f.value for f in extras.deal_fields if f.action == "write"}
    else:
        extras.deal_fields = [
            FieldPlan(
                rule.to,
                None,
                None,
                "skip",
                "no open deal to link",
                source=rule.origin,
                object=rule.object,
                type=rule.type,
            )
            for rule in mapping.deal_fields()
        ]
    return links


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
    return Person(
        object=data["object"],
        id=data["id"],
        phones={},
        owner_id=data.get("owner_id"),
        values=data.get("values") or {},
        created=False,
    )


def create_once(
    context: CallContext,
    mapping: Mapping,
    connector: Connector,
    redis: Redis,
    number: str,
    read: list[str],
    region: str,
    extras: Extras | None = None,
) -> tuple[Person, dict[str, Any], WriteResult | None]:
    """Create the caller once, even when two calls from one new number sync at once.

    The mapped fields go into the create itself (one request fewer than create-then-
    update); if the CRM refuses one of them, the person is created with
    ``match.create.properties`` alone and the fields follow in the normal write, where a
    refused field is reported and the rest still land. A connector that can create the
    person and log the call in one request (``create_with_call``: Salesforce's composite)
    does both (and the follow-up task with them). Returns the person, the fields the create
    wrote (typed values), and the call's write when it is already done.
    """
    lock = redis.lock(
        store.number_key("lock:number", connector.name, number),
        timeout=store.NUMBER_LOCK_TIMEOUT,
        blocking_timeout=store.NUMBER_LOCK_TIMEOUT,
    )
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
            follow = extras.follow_up if extras is not None else None
            activity = build_activity(context, plan, None)
            done = connector.create_with_call(obj, {**fields, **base}, read, activity, follow)
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
        log.info(
            "person created", extra={"call_id": context["call"]["id"], "object": person.object, "person_id": person.id}
        )
        return person, fields, logged


def build_activity(context: CallContext, plan: Any, person: Person | None) -> Activity:
    """The plan's activity, owned by the person's owner unless the mapping named another."""
    activity: Activity = plan.activity
    activity.owner_id = activity.owner_id or (person.owner_id if person else None)
    activity.timestamp = activity.timestamp or now_iso()
    return activity
