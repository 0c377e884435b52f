"""Salesforce's callers: Contacts and Leads found by phone (one SOSL search) and created.

The search sends digits only: the national number OR the full E.164 digits (``FIND
{501234567 OR 966501234567} IN PHONE FIELDS``), and every hit is re-checked with
``phones.matches`` (SPEC §5). ``salesforce_batch`` sends the same search for 50 numbers.

A create is recorded in the in-flight ledger (kind ``person``, by object and phone), so a
retry whose earlier create got no answer finds the record (one exact SOQL match on the
phone value) instead of creating a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from phonenumbers import NumberParseException
from simple_salesforce import format_soql

from crmsync import phones
from crmsync.crm.base import FieldInfo, Person
from crmsync.crm.ledger import Ledger, person_name
from crmsync.crm.salesforce_client import CRM, SalesforceClient
from crmsync.crm.salesforce_records import check_field, check_object, field_value, phone_fields
from crmsync.crm.salesforce_task import SALESFORCE
from crmsync.errors import PermanentError

BASE_FIELDS = ("Id", "OwnerId", "LastModifiedDate")

FieldSpec = Sequence[str] | Mapping[str, Sequence[str]]


def check_objects(objects: Sequence[str]) -> None:
    """``PermanentError`` unless every name is a Salesforce object name."""
    for obj in objects:
        check_object(obj)


def phone_field(object: str, body: Mapping[str, Any]) -> str | None:
    """The first phone field the new person's properties fill in."""
    return next((f for f in phone_fields(object) if isinstance(body.get(f), str) and body[f]), None)


def created_person(object: str, record_id: str, body: Mapping[str, Any], fields: Sequence[str]) -> Person:
    """The person just created from ``body`` (its wire-form properties)."""
    return Person(
        object=object,
        id=record_id,
        phones={f: body.get(f) for f in phone_fields(object)},
        owner_id=body.get("OwnerId"),
        values={f: body.get(f) for f in fields},
        created=True,
    )


class SalesforcePeople:
    """The lookup and the create of Contacts and Leads; ``describe`` tells which of the
    fields asked for each object has."""

    def __init__(
        self, client: SalesforceClient, ledger: Ledger, describe: Callable[[str], dict[str, FieldInfo]]
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.describe = describe

    def find(self, e164: str, objects: Sequence[str], fields: FieldSpec) -> list[Person]:
        """``Connector.find_people`` (see ``SalesforceConnector.find_people``)."""
        check_objects(objects)
        try:
            national = phones.national_digits(e164)
        except NumberParseException:
            raise PermanentError(CRM, f"{phones.mask(e164)} is not an E.164 number", code="INVALID_PHONE") from None
        wanted = self.fields_per_object(objects, fields)
        people = self.search(" OR ".join(dict.fromkeys([national, phones.digits(e164)])), e164, objects, wanted)
        order = [o.lower() for o in objects]
        people.sort(key=lambda p: order.index(p.object.lower()) if p.object.lower() in order else len(order))
        return people

    def fields_per_object(self, objects: Sequence[str], fields: FieldSpec) -> dict[str, dict[str, str]]:
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
                check_field(real)
            out[obj] = names
        return out

    def search(
        self, term: str, e164: str | None, objects: Sequence[str], wanted: dict[str, dict[str, str]]
    ) -> list[Person]:
        """One SOSL search for ``term``; hits whose stored phone is not ``e164`` are left out
        (None: every hit, for ``salesforce_batch`` to sort out by number)."""
        returning = []
        for obj in objects:
            columns = [
                *BASE_FIELDS,
                *(["AccountId"] if obj == "Contact" else []),
                *phone_fields(obj),
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
            stored = {f: field_value(record, f) for f in phone_fields(obj)}
            if e164 is not None and not any(phones.matches(v, e164) for v in stored.values()):
                continue
            seen.add(record["Id"])
            people.append(
                Person(
                    object=obj,
                    id=record["Id"],
                    phones=stored,
                    modified_at=record.get("LastModifiedDate"),
                    owner_id=record.get("OwnerId"),
                    company_id=field_value(record, "AccountId") if obj == "Contact" else None,
                    values={a: field_value(record, r) for a, r in wanted[obj].items()},
                )
            )
        return people

    def create(self, object: str, properties: Mapping[str, Any], fields: Sequence[str]) -> Person:
        """``Connector.create_person`` (see ``SalesforceConnector.create_person``)."""
        check_object(object)
        body = SALESFORCE.wire_values(dict(properties))
        field = phone_field(object, body)
        name = person_name(object, body, phone_fields(object)) if field else None
        entry = self.ledger.get(name) if name else None
        record_id = entry.id if entry else None
        if entry is not None and entry.pending and field:
            record_id = self._find_created(object, field, body[field])
        if not record_id:
            if name:
                self.ledger.begin(name)
            created = self.client.call(
                f"create the {object}", lambda sf: sf.restful(f"sobjects/{object}/", method="POST", json=body)
            )
            record_id = str((created or {})["id"])
        if name:
            self.ledger.record(name, record_id)
        return created_person(object, record_id, body, fields)

    def _find_created(self, object: str, field: str, value: str) -> str | None:
        soql = format_soql(
            "SELECT Id FROM {:literal} WHERE {:literal} = {} ORDER BY CreatedDate DESC LIMIT 1", object, field, value
        )
        result = self.client.call(f"look up the new {object}", lambda sf: sf.query(soql)) or {}
        records = result.get("records") or []
        return str(records[0]["Id"]) if records else None
