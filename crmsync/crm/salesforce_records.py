"""Salesforce records by object and id: what an object name, a field name and a record id look
like (checked before any of them goes into a URL or a query), a record's fields read
case-insensitively, the phone fields of Contacts and Leads; and the connector's requests on
one record that are no part of a call's sync: ``describe`` (cached per connector), the
credentials check, and the rollback's read, write and delete of one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.crm.base import FieldInfo, Person
from crmsync.crm.salesforce_client import CRM, SalesforceClient
from crmsync.crm.salesforce_task import SALESFORCE
from crmsync.errors import PermanentError

PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone"),
    "Lead": ("Phone", "MobilePhone"),
}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")


def phone_fields(obj: str) -> tuple[str, ...]:
    return PHONE_FIELDS.get(obj, ("Phone",))


def field_value(record: Mapping[str, Any], name: str) -> Any:
    """A field of a Salesforce record; field names are case-insensitive."""
    if name in record:
        return record[name]
    return next((v for k, v in record.items() if k.lower() == name.lower()), None)


def is_record(person: Person) -> bool:
    """Whether ``person`` names a Salesforce record (object and id well formed)."""
    return bool(NAME.match(person.object) and RECORD_ID.match(person.id))


def check_object(name: str) -> None:
    """``PermanentError`` unless ``name`` is a Salesforce object name."""
    if not NAME.match(name):
        raise PermanentError(CRM, f"{name!r} is not a Salesforce object name", code="INVALID_TYPE")


def check_field(name: str) -> None:
    """``PermanentError`` unless ``name`` is a Salesforce field name."""
    if not NAME.match(name):
        raise PermanentError(CRM, f"{name!r} is not a Salesforce field name", code="INVALID_FIELD")


def check_record(object: str, record_id: str, fields: Sequence[str] = ()) -> None:
    """``PermanentError`` unless ``object``/``record_id`` name a record and ``fields`` are field names."""
    if not NAME.match(object) or not RECORD_ID.match(record_id):
        raise PermanentError(CRM, f"{object} {record_id!r} is no Salesforce record", code="NOT_FOUND")
    for name in fields:
        check_field(name)


class SalesforceRecords:
    """Describe, the credentials check and the rollback's requests on one record."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._describe: dict[str, dict[str, FieldInfo]] = {}

    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields by name, picklist values included (cached per connector)."""
        if object not in self._describe:
            check_object(object)
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

    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One GET of the record with ``fields``; None when Salesforce no longer has it."""
        check_record(object, record_id, fields)
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
        return {name: field_value(record, name) for name in fields}

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """One PATCH of the record; None clears a field."""
        check_record(object, record_id, list(values))
        body = SALESFORCE.wire_values(dict(values))
        self.client.call(
            f"update the {object}", lambda sf: sf.restful(f"sobjects/{object}/{record_id}", method="PATCH", json=body)
        )

    def delete_activity(self, object: str, record_id: str) -> bool:
        """DELETE the Task; False when Salesforce no longer has it."""
        check_record(object, record_id)
        try:
            self.client.call(
                f"delete the {object}", lambda sf: sf.restful(f"sobjects/{object}/{record_id}", method="DELETE")
            )
        except PermanentError as err:
            if err.status == 404:
                return False
            raise
        return True
