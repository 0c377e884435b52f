"""The Salesforce connector (``base.Connector``): SOSL phone lookup, one composite request
per call for the Task and the profile fields, and describe.

Cost per synced call: 2 API requests, the SOSL lookup and one ``composite`` (Task create
or update + Contact/Lead update, ``allOrNone``). A SOQL lookup of the Task by
``CallObject`` is added only when the ledger says an earlier attempt may have created it
(the attempt started, its answer never arrived).

    connector = SalesforceConnector(settings.salesforce, redis)
    people = connector.find_people("+14155551212", ["Contact", "Lead"], ["Interest_Level__c"])
    result = connector.write_call(people[0], activity, {"Interest_Level__c": "High"})
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from phonenumbers import NumberParseException
from redis import Redis
from simple_salesforce import format_soql

from crmsync import phones
from crmsync.crm import salesforce_batch
from crmsync.crm.base import Activity, CallWrite, Deal, FieldInfo, FollowUp, Found, Links, Person, WriteResult, Written
from crmsync.crm.ledger import Ledger, person_name
from crmsync.crm.salesforce_client import CRM, SalesforceClient, error_details, error_from
from crmsync.crm.salesforce_task import SALESFORCE, TEXT_MAX, follow_up_fields, follow_up_mark, task_fields
from crmsync.errors import PermanentError
from crmsync.metrics import Metrics
from crmsync.settings import SalesforceSettings

log = logging.getLogger(__name__)

PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone"),
    "Lead": ("Phone", "MobilePhone"),
}
BASE_FIELDS = ("Id", "OwnerId", "LastModifiedDate")
MAX_WRITE_ATTEMPTS = 4  # composites per write_call: refused fields are dropped, then all of them
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")
_NO_SUCH_COLUMN = re.compile(r"No such column '(\w+)'")

FieldSpec = Sequence[str] | Mapping[str, Sequence[str]]


def _phone_fields(obj: str) -> tuple[str, ...]:
    return PHONE_FIELDS.get(obj, ("Phone",))


def _get(record: Mapping[str, Any], name: str) -> Any:
    """A field of a Salesforce record; field names are case-insensitive."""
    if name in record:
        return record[name]
    return next((v for k, v in record.items() if k.lower() == name.lower()), None)


class SalesforceConnector:
    """Salesforce behind the connector contract. One session and one login per connector;
    build one per worker process and ``close()`` it at the end."""

    name = CRM
    profile = SALESFORCE
    batch_size = salesforce_batch.MAX_RECORDS

    def __init__(
        self,
        settings: SalesforceSettings,
        redis: Redis,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (3.05, 20),
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.client = SalesforceClient(
            settings, redis, session=session, timeout=timeout, metrics=metrics or Metrics(redis)
        )
        self.redis = redis
        self.ledger = Ledger(redis, CRM, "activity")
        self.people = Ledger(redis, CRM, "person")
        self.follow_ups = Ledger(redis, CRM, "follow_up")
        self._describe: dict[str, dict[str, FieldInfo]] = {}

    @property
    def session(self) -> requests.Session:
        return self.client.session

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SalesforceConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookup ----------------------------------------------------------------------------
    def find_people(self, e164: str, objects: Sequence[str], fields: FieldSpec) -> list[Person]:
        """Contacts and Leads whose stored phone is ``e164`` by the SPEC §5 rule, grouped in
        ``objects`` order (SOSL relevance within an object).

        ``fields`` is either a list of field names, each asked only of the objects whose
        ``describe`` has it (describe is cached per object for the connector's life, so
        the first lookup costs one extra request per object), or a mapping
        ``{object: [field, …]}`` used as given. ``Person.values`` is keyed by the names
        asked for. One SOSL search gets digits only: the national number OR the full E.164
        digits (``FIND {501234567 OR 966501234567}``). Every hit is re-checked with ``phones.matches``.
        """
        self.check_objects(objects)
        try:
            national = phones.national_digits(e164)
        except NumberParseException:
            raise PermanentError(CRM, f"{phones.mask(e164)} is not an E.164 number", code="INVALID_PHONE") from None
        wanted = self._fields_per_object(objects, fields)
        people = self._search(" OR ".join(dict.fromkeys([national, phones.digits(e164)])), e164, objects, wanted)
        order = [o.lower() for o in objects]
        people.sort(key=lambda p: order.index(p.object.lower()) if p.object.lower() in order else len(order))
        return people

    def check_objects(self, objects: Sequence[str]) -> None:
        """``PermanentError`` unless every name is a Salesforce object name."""
        for obj in objects:
            if not _NAME.match(obj):
                raise PermanentError(CRM, f"{obj!r} is not a Salesforce object name", code="INVALID_TYPE")

    @staticmethod
    def is_record(person: Person) -> bool:
        """Whether ``person`` names a Salesforce record (object and id well formed)."""
        return bool(_NAME.match(person.object) and _RECORD_ID.match(person.id))

    # -- batches (crmsync.crm.salesforce_batch) ---------------------------------------------
    def find_people_many(self, numbers: Sequence[str], objects: Sequence[str], fields: FieldSpec) -> dict[str, Found]:
        """``find_people`` for many numbers: one SOSL search per 50 (``salesforce_batch``)."""
        return salesforce_batch.find_many(self, numbers, objects, fields)

    def write_calls(self, writes: Sequence[CallWrite]) -> list[Written]:
        """``write_call`` for many calls in sObject Collections of 200 (``salesforce_batch``)."""
        return salesforce_batch.write_many(self, writes)

    def _fields_per_object(self, objects: Sequence[str], fields: FieldSpec) -> dict[str, dict[str, str]]:
        """object -> {name asked for: the object's own name for it}."""
        out: dict[str, dict[str, str]] = {}
        for obj in objects:
            if isinstance(fields, Mapping):
                names = {f: f for f in fields.get(obj, ())}
            elif fields:
                known = {n.lower(): n for n in self.describe(obj)}
                names = {f: known[f.lower()] for f in fields if f.lower() in known}
            else:
                names = {}
            for real in names.values():
                if not _NAME.match(real):
                    raise PermanentError(CRM, f"{real!r} is not a Salesforce field name", code="INVALID_FIELD")
            out[obj] = names
        return out

    def _search(
        self, term: str, e164: str | None, objects: Sequence[str], wanted: dict[str, dict[str, str]]
    ) -> list[Person]:
        returning = []
        for obj in objects:
            columns = [
                *BASE_FIELDS,
                *(["AccountId"] if obj == "Contact" else []),
                *_phone_fields(obj),
                *wanted[obj].values(),
            ]
            returning.append(f"{obj}({', '.join({c.lower(): c for c in columns}.values())})")
        sosl = f"FIND {{{term}}} IN PHONE FIELDS RETURNING {', '.join(returning)}"
        result = self.client.call("look up the caller", lambda sf: sf.search(sosl)) or {}
        people: list[Person] = []
        seen: set[str] = set()
        for record in result.get("searchRecords") or []:
            obj = str((record.get("attributes") or {}).get("type") or "")
            found = [o for o in objects if o.lower() == obj.lower()]
            if not found or record.get("Id") in seen:
                continue
            obj = found[0]
            stored = {f: _get(record, f) for f in _phone_fields(obj)}
            if e164 is not None and not any(phones.matches(v, e164) for v in stored.values()):
                continue  # (None: every hit, for salesforce_batch to sort out by number)
            seen.add(record["Id"])
            people.append(
                Person(
                    object=obj,
                    id=record["Id"],
                    phones=stored,
                    modified_at=record.get("LastModifiedDate"),
                    owner_id=record.get("OwnerId"),
                    company_id=_get(record, "AccountId") if obj == "Contact" else None,
                    values={a: _get(record, r) for a, r in wanted[obj].items()},
                )
            )
        return people

    def create_person(self, object: str, properties: Mapping[str, Any], fields: Sequence[str]) -> Person:
        """Create a Contact or Lead (one request); its owner is the API user unless
        ``properties`` sets ``OwnerId``.

        At most one person is created per object and phone number while the ledger keeps it
        (``LEDGER_TTLS["person"]``): a retry whose earlier create got no answer, or a second
        call from the same number while Salesforce's search index does not show the new
        record yet, gets the same record back (found by an exact SOQL match on the phone
        value when the earlier answer was lost) instead of a duplicate."""
        if not _NAME.match(object):
            raise PermanentError(CRM, f"{object!r} is not a Salesforce object name", code="INVALID_TYPE")
        body = SALESFORCE.wire_values(dict(properties))
        phone_field = _phone_field(object, body)
        name = person_name(object, body, _phone_fields(object)) if phone_field else None
        entry = self.people.get(name) if name else None
        record_id = entry.id if entry else None
        if entry is not None and entry.pending and phone_field:
            record_id = self._find_created(object, phone_field, body[phone_field])
        if not record_id:
            if name:
                self.people.begin(name)
            created = self.client.call(
                f"create the {object}", lambda sf: sf.restful(f"sobjects/{object}/", method="POST", json=body)
            )
            record_id = str((created or {})["id"])
        if name:
            self.people.record(name, record_id)
        return Person(
            object=object,
            id=record_id,
            phones={f: body.get(f) for f in _phone_fields(object)},
            owner_id=body.get("OwnerId"),
            values={f: body.get(f) for f in fields},
            created=True,
        )

    def create_with_call(
        self,
        object: str,
        properties: Mapping[str, Any],
        fields: Sequence[str],
        activity: Activity,
        follow_up: FollowUp | None = None,
    ) -> tuple[Person, WriteResult] | None:
        """Create the person and log the call on it in one ``allOrNone`` composite, so a
        new caller costs 2 requests (the search and this) instead of 3.

        None when an earlier attempt may already have created either (its answer was
        lost): the caller then uses ``create_person`` and ``write_call``, which look first.
        A refusal leaves nothing behind (``allOrNone``) and raises the CRM's error."""
        if not _NAME.match(object):
            raise PermanentError(CRM, f"{object!r} is not a Salesforce object name", code="INVALID_TYPE")
        body = SALESFORCE.wire_values(dict(properties))
        phone_field = _phone_field(object, body)
        if not phone_field:
            return None
        name = person_name(object, body, _phone_fields(object))
        if (
            self.people.get(name) is not None
            or self.ledger.get(activity.call_id) is not None
            or (follow_up is not None and self.follow_ups.get(follow_up.call_id) is not None)
        ):
            return None
        self.people.begin(name)
        self.ledger.begin(activity.call_id)
        if follow_up is not None:
            self.follow_ups.begin(follow_up.call_id)
        subs = self._create_subrequests(object, body, activity, follow_up)
        request = {"allOrNone": True, "compositeRequest": subs}
        result = self.client.call(
            "create the caller and log the call", lambda sf: sf.restful("composite", method="POST", json=request)
        )
        answers = (result or {}).get("compositeResponse")
        if not isinstance(answers, list) or len(answers) != len(subs):
            raise error_from(502, None, "create the caller: Salesforce's composite answer was incomplete")
        failures = [a for a in answers if a["httpStatusCode"] >= 300 and not _halted(a)]
        if failures:
            self._undo_create(name, activity, follow_up)  # allOrNone: Salesforce created nothing
            raise _create_error(failures[0], object)
        person_id, task_id = str(answers[0]["body"]["id"]), str(answers[1]["body"]["id"])
        self.ledger.record(activity.call_id, task_id)
        self.people.record(name, person_id)
        follow_up_id = str(answers[2]["body"]["id"]) if follow_up is not None else None
        if follow_up is not None and follow_up_id:
            self.follow_ups.record(follow_up.call_id, follow_up_id)
        person = Person(
            object=object,
            id=person_id,
            phones={f: body.get(f) for f in _phone_fields(object)},
            owner_id=body.get("OwnerId"),
            values={f: body.get(f) for f in fields},
            created=True,
        )
        return person, WriteResult(activity_id=task_id, activity_created=True, follow_up_id=follow_up_id)

    def _create_subrequests(
        self, object: str, body: dict[str, Any], activity: Activity, follow_up: FollowUp | None
    ) -> list[dict[str, Any]]:
        """The new person, the call's Task and the follow-up, referring to the person by reference."""
        base = f"/services/data/v{self.settings.api_version}/sobjects"
        placeholder = Person(object=object, id="@{person.id}", phones={}, owner_id=body.get("OwnerId"))
        task = task_fields(placeholder, activity, create=True)
        subs: list[dict[str, Any]] = [
            {"method": "POST", "url": f"{base}/{object}", "referenceId": "person", "body": body},
            {"method": "POST", "url": f"{base}/Task", "referenceId": "task", "body": task},
        ]
        if follow_up is not None:  # the new person has no Account nor Opportunity: no WhatId
            body = follow_up_fields(placeholder, follow_up, None)
            subs.append({"method": "POST", "url": f"{base}/Task", "referenceId": "follow_up", "body": body})
        return subs

    def _undo_create(self, name: str, activity: Activity, follow_up: FollowUp | None) -> None:
        self.people.clear(name)
        self.ledger.clear(activity.call_id)
        if follow_up is not None:
            self.follow_ups.clear(follow_up.call_id)

    def _find_created(self, object: str, field: str, value: str) -> str | None:
        soql = format_soql(
            "SELECT Id FROM {:literal} WHERE {:literal} = {} ORDER BY CreatedDate DESC LIMIT 1", object, field, value
        )
        result = self.client.call(f"look up the new {object}", lambda sf: sf.query(soql)) or {}
        records = result.get("records") or []
        return str(records[0]["Id"]) if records else None

    # -- the call --------------------------------------------------------------------------
    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """The open Opportunity of the Contact's Account modified last (one SOQL query), with
        ``fields``; None for a Lead or a Contact without an Account."""
        if person.object != "Contact" or not person.company_id or not _RECORD_ID.match(person.company_id):
            return None
        for name in fields:
            if not _NAME.match(name):
                raise PermanentError(CRM, f"{name!r} is not a Salesforce field name", code="INVALID_FIELD")
        columns = ", ".join(dict.fromkeys(["Id", "LastModifiedDate", *fields]))
        soql = format_soql(
            f"SELECT {columns} FROM Opportunity WHERE AccountId = {{}} AND IsClosed = false "
            "ORDER BY LastModifiedDate DESC LIMIT 1",
            person.company_id,
        )
        result = self.client.call("look up the open Opportunity", lambda sf: sf.query(soql)) or {}
        records = result.get("records") or []
        if not records:
            return None
        return Deal(
            id=str(records[0]["Id"]),
            values={f: _get(records[0], f) for f in fields},
            modified_at=records[0].get("LastModifiedDate"),
        )

    def write_call(
        self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links | None = None
    ) -> WriteResult:
        """Create (or update) the call's Task, write ``updates`` onto the person, the deal's
        fields onto the Opportunity and create the follow-up Task, all in one ``composite``
        request. The Task's ``WhatId`` is the Opportunity, else the Contact's Account (a
        Lead's Task has none). An update that Salesforce refuses for named fields is
        retried without them; they come back in ``rejected`` / ``deal_rejected`` with
        Salesforce's own message, and the Task is written all the same."""
        if not _NAME.match(person.object) or not _RECORD_ID.match(person.id):
            raise PermanentError(CRM, f"{person.object} {person.id!r} is no Salesforce record", code="NOT_FOUND")
        links = links or Links()
        existing = self._begin_task(activity.call_id)
        what = what_id(person, links)
        follow_up_id, follow_up = self._follow_up_state(links.follow_up)
        writes = {
            "person": SALESFORCE.wire_values(dict(updates)),
            "deal": SALESFORCE.wire_values(dict(links.deal_updates)) if links.deal else {},
        }
        rejected: dict[str, dict[str, str]] = {"person": {}, "deal": {}}
        for attempt in range(MAX_WRITE_ATTEMPTS):
            task = task_fields(person, activity, create=not existing) | ({"WhatId": what} if what else {})
            subs = self._subrequests(
                person,
                task,
                existing,
                writes,
                links.deal,
                follow_up_fields(person, follow_up, what) if follow_up else None,
            )
            answers = self._send_composite(subs)
            failures = [a for a in answers if a["httpStatusCode"] >= 300 and not _halted(a)]
            if not failures:
                break
            failed = failures[0]
            if failed["referenceId"] == "task" and existing and failed["httpStatusCode"] == 404:
                # Someone deleted the call's Task in Salesforce: log the call again.
                log.warning("salesforce Task was deleted; logging the call again", extra={"call_id": activity.call_id})
                existing = None
                self.ledger.clear(activity.call_id)
                self.ledger.begin(activity.call_id)
                continue
            ref = failed["referenceId"]
            if ref not in writes or failed["httpStatusCode"] != 400 or not writes[ref]:
                if follow_up:
                    self.follow_ups.clear(follow_up.call_id)  # allOrNone: nothing was created
                raise error_from(failed["httpStatusCode"], failed["body"], _action(ref, person))
            _drop_refused(failed["body"], writes[ref], rejected[ref], last=attempt >= MAX_WRITE_ATTEMPTS - 2)
        else:
            raise PermanentError(CRM, "write the call: Salesforce kept refusing the update", code="UNKNOWN")
        activity_id = existing or str(answers[0]["body"]["id"])
        self.ledger.record(activity.call_id, activity_id)
        if follow_up:
            follow_up_id = str(answers[-1]["body"]["id"])
            self.follow_ups.record(follow_up.call_id, follow_up_id)
        linked = {"deal": links.deal.id} if links.deal else ({"company": what} if what else {})
        return _write_result(activity_id, not existing, writes, rejected, follow_up_id, linked)

    def _begin_task(self, call_id: str) -> str | None:
        """The call's Task id when an earlier attempt created it; else marks the attempt begun.
        The SOQL look-up runs only when an earlier attempt may have created the Task (its
        answer was lost), so a call costs 2 requests."""
        entry = self.ledger.get(call_id)
        existing = self._find_task(call_id) if entry is not None and entry.pending else (entry.id if entry else None)
        if existing:
            self.ledger.record(call_id, existing)
        else:
            self.ledger.begin(call_id)
        return existing

    def _follow_up_state(self, follow_up: FollowUp | None) -> tuple[str | None, FollowUp | None]:
        """(the follow-up Task an earlier attempt created, the follow-up still to create)."""
        if follow_up is None:
            return None, None
        entry = self.follow_ups.get(follow_up.call_id)
        found = entry.id if entry is not None else None
        if entry is not None and entry.pending:  # its answer was lost: look (one SOQL, only then)
            found = self._find_task(follow_up_mark(follow_up.call_id))
        if found:
            self.follow_ups.record(follow_up.call_id, found)
            return found, None
        self.follow_ups.begin(follow_up.call_id)
        return None, follow_up

    def _find_task(self, call_object: str) -> str | None:
        soql = format_soql("SELECT Id FROM Task WHERE CallObject = {} LIMIT 1", call_object[:TEXT_MAX])
        result = self.client.call("look up the call's Task", lambda sf: sf.query(soql)) or {}
        records = result.get("records") or []
        return str(records[0]["Id"]) if records else None

    def _subrequests(
        self,
        person: Person,
        task: dict[str, Any],
        existing: str | None,
        writes: dict[str, Any],
        deal: Deal | None,
        follow_up: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        base = f"/services/data/v{self.settings.api_version}/sobjects"
        subs: list[dict[str, Any]] = [
            {"method": "PATCH", "url": f"{base}/Task/{existing}", "referenceId": "task", "body": task}
            if existing
            else {"method": "POST", "url": f"{base}/Task", "referenceId": "task", "body": task}
        ]
        if writes["person"]:
            subs.append(
                {
                    "method": "PATCH",
                    "url": f"{base}/{person.object}/{person.id}",
                    "referenceId": "person",
                    "body": writes["person"],
                }
            )
        if deal is not None and writes["deal"] and _RECORD_ID.match(deal.id):
            subs.append(
                {
                    "method": "PATCH",
                    "url": f"{base}/Opportunity/{deal.id}",
                    "referenceId": "deal",
                    "body": writes["deal"],
                }
            )
        if follow_up is not None:
            subs.append({"method": "POST", "url": f"{base}/Task", "referenceId": "follow_up", "body": follow_up})
        return subs

    def _send_composite(self, subrequests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"allOrNone": True, "compositeRequest": subrequests}
        result = self.client.call("write the call", lambda sf: sf.restful("composite", method="POST", json=body))
        answers = (result or {}).get("compositeResponse")
        if not isinstance(answers, list) or len(answers) != len(subrequests):
            raise error_from(502, None, "write the call: Salesforce's composite answer was incomplete")
        return answers

    # -- metadata --------------------------------------------------------------------------
    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields by name, picklist values included (cached per connector)."""
        if object not in self._describe:
            if not _NAME.match(object):
                raise PermanentError(CRM, f"{object!r} is not a Salesforce object name", code="INVALID_TYPE")
            result = self.client.call(f"describe {object}", lambda sf: sf.restful(f"sobjects/{object}/describe")) or {}
            infos: dict[str, FieldInfo] = {}
            for f in result.get("fields") or []:
                picklist = [str(v["value"]) for v in f.get("picklistValues") or [] if v.get("active", True)]
                infos[f["name"]] = FieldInfo(
                    name=f["name"],
                    type=f.get("type", ""),
                    label=f.get("label", ""),
                    options=picklist if f.get("type") in ("picklist", "multipicklist") else None,
                    updateable=bool(f.get("updateable", False)),
                )
            self._describe[object] = infos
        return self._describe[object]

    def check_credentials(self) -> None:
        """One cheap request (``limits/``); ``CredentialsError`` when Salesforce refuses us."""
        self.client.call("check the credentials", lambda sf: sf.limits())

    # -- rollback --------------------------------------------------------------------------
    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One GET of the record with ``fields``; None when Salesforce no longer has it."""
        _check_record(object, record_id, fields)
        query = f"?fields={','.join(fields)}" if fields else ""
        try:
            record = (
                self.client.call(f"read the {object}", lambda sf: sf.restful(f"sobjects/{object}/{record_id}{query}"))
                or {}
            )
        except PermanentError as err:
            if err.status == 404:
                return None
            raise
        return {name: _get(record, name) for name in fields}

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """One PATCH of the record; None clears a field."""
        _check_record(object, record_id, list(values))
        body = SALESFORCE.wire_values(dict(values))
        self.client.call(
            f"update the {object}", lambda sf: sf.restful(f"sobjects/{object}/{record_id}", method="PATCH", json=body)
        )

    def delete_activity(self, object: str, record_id: str) -> bool:
        """DELETE the Task; False when Salesforce no longer has it."""
        _check_record(object, record_id, ())
        try:
            self.client.call(
                f"delete the {object}", lambda sf: sf.restful(f"sobjects/{object}/{record_id}", method="DELETE")
            )
        except PermanentError as err:
            if err.status == 404:
                return False
            raise
        return True


def _check_record(object: str, record_id: str, fields: Sequence[str]) -> None:
    if not _NAME.match(object) or not _RECORD_ID.match(record_id):
        raise PermanentError(CRM, f"{object} {record_id!r} is no Salesforce record", code="NOT_FOUND")
    for name in fields:
        if not _NAME.match(name):
            raise PermanentError(CRM, f"{name!r} is not a Salesforce field name", code="INVALID_FIELD")


def _halted(answer: Mapping[str, Any]) -> bool:
    body = answer.get("body")
    return isinstance(body, list) and bool(body) and body[0].get("errorCode") == "PROCESSING_HALTED"


def _phone_field(object: str, body: Mapping[str, Any]) -> str | None:
    """The first phone field the new person's properties fill in."""
    return next((f for f in _phone_fields(object) if isinstance(body.get(f), str) and body[f]), None)


def what_id(person: Person, links: Links) -> str | None:
    """The Task's ``WhatId``: the linked Opportunity, else (``link.company``) the Contact's
    Account; a Lead's Task never has one (Salesforce refuses it)."""
    if person.object != "Contact":
        return None
    if links.deal is not None:
        return links.deal.id
    return person.company_id if links.company else None


def _action(ref: str, person: Person) -> str:
    return {
        "task": "write the call's Task",
        "person": f"update the {person.object}",
        "deal": "update the Opportunity",
        "follow_up": "create the follow-up Task",
    }.get(ref, "write the call")


def _drop_refused(body: Any, pending: dict[str, Any], rejected: dict[str, str], *, last: bool) -> None:
    """Move the fields Salesforce named in its refusal from ``pending`` to ``rejected``; when
    it named none (or on the ``last`` try), all of them, so the Task is written alone."""
    code, message, blamed = error_details(body)
    blamed += _NO_SUCH_COLUMN.findall(message)
    reason = f"{code}: {message}" if code else message
    named = [k for k in pending if k.lower() in {b.lower() for b in blamed}]
    for key in named:
        rejected[key] = reason
        del pending[key]
    if not named or last:
        for key in pending:
            rejected[key] = f"not written: Salesforce refused the update ({reason})"
        pending.clear()


def _create_error(failed: dict[str, Any], object: str) -> Exception:
    """The CRM's own error for the composite sub-request that failed a create-with-call."""
    action = f"create the {object}" if failed["referenceId"] == "person" else "write the call's Task"
    return error_from(failed["httpStatusCode"], failed["body"], action)


def _write_result(
    activity_id: str,
    created: bool,
    writes: dict[str, dict[str, Any]],
    rejected: dict[str, dict[str, str]],
    follow_up_id: str | None,
    linked: dict[str, str],
) -> WriteResult:
    return WriteResult(
        activity_id=activity_id,
        activity_created=created,
        written=writes["person"],
        rejected=rejected["person"],
        deal_written=writes["deal"],
        deal_rejected=rejected["deal"],
        follow_up_id=follow_up_id,
        linked=linked,
    )
