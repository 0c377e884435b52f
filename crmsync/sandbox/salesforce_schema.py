"""The Salesforce sandbox's field registry: which fields Contact, Lead and Task have, and
how a create or update is validated against them (Part D of the CRM reference).

The rules are Salesforce's: an unknown field is ``INVALID_FIELD``, a missing required one
``REQUIRED_FIELD_MISSING``, a value over the length limit ``STRING_TOO_LONG``, a value
outside a restricted picklist ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``, a value of the
wrong JSON type ``JSON_PARSER_ERROR``, a read-only field ``INVALID_FIELD_FOR_INSERT_UPDATE``.
Every error body is a JSON list of ``{message, errorCode, fields}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

STRING_TYPES = {"id", "string", "textarea", "phone", "email", "picklist", "combobox", "reference", "url"}
NUMBER_TYPES = {"double", "currency", "percent"}
ID_PREFIXES = {"Contact": "003", "Lead": "00Q", "Task": "00T", "User": "005", "Account": "001", "Opportunity": "006"}
CLOSED_STAGES = ("Closed Won", "Closed Lost")
API_USER_ID = "005000000000001AAA"


class SfApiError(Exception):
    """An error answer: HTTP ``status`` and Salesforce's list of ``{message, errorCode, fields}``."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.errors: list[dict[str, Any]] = [{"message": message, "errorCode": code, "fields": fields or []}]


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str
    length: int = 0  # 0: no length limit
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    required: bool = False
    createable: bool = True
    updateable: bool = True
    custom: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "length": self.length,
            "custom": self.custom,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": not self.required,
            "restrictedPicklist": self.restricted,
            "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": False} for v in self.picklist],
        }


def _f(name: str, type_: str, label: str = "", **kw: Any) -> FieldDef:
    if type_ == "phone":
        kw.setdefault("length", 40)
    return FieldDef(name, type_, label or name.replace("__c", "").replace("_", " "), **kw)


_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_COMMON = [
    _f("Id", "id", "Record ID", createable=False, updateable=False),
    _f("OwnerId", "reference", "Owner ID"),
    _f("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
    _f("LastModifiedDate", "datetime", "Last Modified Date", createable=False, updateable=False),
]
_PERSON = [
    _f("FirstName", "string", "First Name", length=40),
    _f("LastName", "string", "Last Name", length=80, required=True),
    _f("Email", "email", "Email", length=80),
    _f("Phone", "phone", "Phone"),
    _f("MobilePhone", "phone", "Mobile Phone"),
    _f("Fax", "phone", "Fax"),
    _f("Title", "string", "Title", length=128),
    _f("LeadSource", "picklist", "Lead Source", length=255, picklist=_LEAD_SOURCES),
    _f("Description", "textarea", "Description", length=32000),
    _f("Budget__c", "currency", custom=True),
    _f("Interest_Level__c", "picklist", length=255, picklist=("High", "Medium", "Low"), restricted=True, custom=True),
    _f("Callback_Requested__c", "boolean", custom=True),
    _f("Preferred_Time__c", "string", length=255, custom=True),
    _f("Last_AI_Call__c", "datetime", "Last AI Call", custom=True),
    _f("Follow_Up_Date__c", "date", custom=True),
    _f("Objections__c", "textarea", length=32768, custom=True),
]
_CONTACT_ONLY = [
    _f("HomePhone", "phone", "Home Phone"),
    _f("OtherPhone", "phone", "Other Phone"),
    _f("AssistantPhone", "phone", "Asst. Phone"),
    _f("AccountId", "reference", "Account ID"),
    _f(
        "Renewal_Decision__c",
        "picklist",
        length=255,
        picklist=("Renew", "Cancel", "Undecided"),
        restricted=True,
        custom=True,
    ),
    _f("NPS__c", "double", "NPS", custom=True),
]
_LEAD_ONLY = [
    _f("Company", "string", "Company", length=255, required=True),
    _f(
        "Status",
        "picklist",
        "Lead Status",
        length=255,
        required=True,
        picklist=("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"),
    ),
]
_TASK = [
    _f("Subject", "combobox", "Subject", length=255),
    _f("Description", "textarea", "Comments", length=32000),
    _f(
        "Status",
        "picklist",
        "Status",
        length=255,
        required=True,
        picklist=("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"),
    ),
    _f("Priority", "picklist", "Priority", length=255, required=True, picklist=("High", "Normal", "Low")),
    _f("ActivityDate", "date", "Due Date Only"),
    _f(
        "TaskSubtype",
        "picklist",
        "Task Subtype",
        length=255,
        restricted=True,
        updateable=False,
        picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
    ),
    _f("CallType", "picklist", "Call Type", length=40, restricted=True, picklist=("Inbound", "Outbound", "Internal")),
    _f("CallDurationInSeconds", "int", "Call Duration"),
    _f("CallDisposition", "string", "Call Result", length=255),
    _f("CallObject", "string", "Call Object Identifier", length=255),
    _f("WhoId", "reference", "Name ID"),
    _f("WhatId", "reference", "Related To ID"),
]

_ACCOUNT = [
    _f("Name", "string", "Account Name", length=255, required=True),
    _f("Phone", "phone", "Account Phone"),
    _f("Website", "url", "Website", length=255),
]
_OPPORTUNITY = [
    _f("Name", "string", "Name", length=120, required=True),
    _f("AccountId", "reference", "Account ID"),
    _f(
        "StageName",
        "picklist",
        "Stage",
        length=255,
        required=True,
        picklist=(
            "Prospecting",
            "Qualification",
            "Needs Analysis",
            "Value Proposition",
            "Proposal/Price Quote",
            "Negotiation/Review",
            *CLOSED_STAGES,
        ),
    ),
    _f("CloseDate", "date", "Close Date", required=True),
    _f("Amount", "currency", "Amount"),
    _f("NextStep", "string", "Next Step", length=255),
    _f("IsClosed", "boolean", "Closed", createable=False, updateable=False),
    _f("IsWon", "boolean", "Won", createable=False, updateable=False),
]
SCHEMA: dict[str, dict[str, FieldDef]] = {
    "Contact": {f.name: f for f in _COMMON + _PERSON + _CONTACT_ONLY},
    "Lead": {f.name: f for f in _COMMON + _PERSON + _LEAD_ONLY},
    "Task": {f.name: f for f in _COMMON + _TASK},
    "Account": {f.name: f for f in _COMMON + _ACCOUNT},
    "Opportunity": {f.name: f for f in _COMMON + _OPPORTUNITY},
}
DEFAULTS: dict[str, dict[str, Any]] = {"Lead": {"Status": "Open - Not Contacted"}}


def object_name(name: str) -> str:
    """The canonical sObject name (names are case-insensitive); 404 NOT_FOUND when unknown."""
    for known in SCHEMA:
        if known.lower() == name.lower():
            return known
    raise SfApiError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'")


def field_def(obj: str, name: str) -> FieldDef:
    """The field ``name`` of ``obj`` (case-insensitive); 400 INVALID_FIELD when unknown."""
    fields = SCHEMA[obj]
    found = fields.get(name) or next((f for n, f in fields.items() if n.lower() == name.lower()), None)
    if found is None:
        raise SfApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}", [name])
    return found


def phone_fields(obj: str) -> list[str]:
    return [f.name for f in SCHEMA[obj].values() if f.type == "phone"]


def validate(obj: str, values: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """``values`` with canonical field names, or ``SfApiError`` for the first problem found."""
    if not isinstance(values, dict):
        raise SfApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if name == "attributes":
            continue
        fd = field_def(obj, name)
        if not (fd.createable if create else fd.updateable):
            action = "insert" if create else "update"
            raise SfApiError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {fd.name}. Please check the security settings "
                f"of this field and verify that it is read/write for your profile ({action}).",
                [fd.name],
            )
        clean[fd.name] = _check_value(fd, value)
    if create:
        for name, default in DEFAULTS.get(obj, {}).items():
            clean.setdefault(name, default)
    missing = [
        f.name
        for f in SCHEMA[obj].values()
        if f.required and (create or f.name in clean) and clean.get(f.name) in (None, "")
    ]
    if missing:
        raise SfApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    return clean


def _check_value(fd: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    bad_type = SfApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {fd.type} from {type(value).__name__} value at [field {fd.name}]",
        [fd.name],
    )
    if fd.type in STRING_TYPES:
        if not isinstance(value, str):
            raise bad_type
        return _check_text(fd, value)
    if fd.type == "boolean":
        if not isinstance(value, bool):
            raise bad_type
        return value
    if fd.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_type
        return value
    if fd.type in NUMBER_TYPES:
        if isinstance(value, bool):
            raise bad_type
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad_type from None
        if not isinstance(value, int | float):
            raise bad_type
        return value
    if fd.type in ("date", "datetime"):
        if not isinstance(value, str):
            raise bad_type
        return _check_date(fd, value)
    return value


def _check_text(fd: FieldDef, value: str) -> str:
    """A text or picklist value: its length, and a restricted picklist's values."""
    if fd.length and len(value) > fd.length:
        raise SfApiError(
            400,
            "STRING_TOO_LONG",
            f"{fd.label}: data value too large: {value} (max length={fd.length})",  # Salesforce echoes it
            [fd.name],
        )
    if fd.restricted and value not in fd.picklist:
        raise SfApiError(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{fd.label}: bad value for restricted picklist field: {value}",
            [fd.name],
        )
    return value


def _check_date(fd: FieldDef, value: str) -> str:
    """A date (``YYYY-MM-DD``) or date-time (ISO 8601, ``+0000`` offsets too)."""
    try:
        if fd.type == "date":
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.replace("+0000", "+00:00"))
    except ValueError:
        raise SfApiError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {fd.type} from value {value} at [field {fd.name}]",
            [fd.name],
        ) from None
    return value
