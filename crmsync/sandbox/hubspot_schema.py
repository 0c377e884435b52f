"""The sandbox HubSpot portal's property registry, and how it validates written values.

Contacts carry HubSpot's standard properties plus the custom ones that the sample Hamsa
calls (``/work/shared/fixtures/hamsa``) map onto; calls carry the engagement properties
of ``POST /crm/v3/objects/calls``. Validation answers in HubSpot's words: an unknown or
read-only property is ``PROPERTY_DOESNT_EXIST`` / ``READ_ONLY_VALUE``, an enumeration value
outside its options ``INVALID_OPTION``, a non-number ``INVALID_INTEGER``-style codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
DEFAULT_OWNERS = ("1001", "1002", "1003")


@dataclass
class PropertyDef:
    name: str
    type: str  # string | number | enumeration | bool | date | datetime
    field_type: str  # text | textarea | phonenumber | number | select | booleancheckbox | date | calculation_equation
    label: str = ""
    group: str = "contactinformation"
    options: list[str] | None = None
    read_only: bool = False
    hubspot_defined: bool = True
    description: str = ""
    validate: str | None = None  # extra rule: "https" | "guid"

    def to_json(self) -> dict[str, Any]:
        options = self.options
        if self.type == "bool":
            options = ["true", "false"]
        return {
            "name": self.name,
            "label": self.label or self.name.replace("_", " ").capitalize(),
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group,
            "description": self.description,
            "hubspotDefined": self.hubspot_defined,
            "calculated": self.field_type == "calculation_equation",
            "hidden": False,
            "formField": not self.read_only,
            "displayOrder": -1,
            "options": [
                {"label": value.replace("_", " ").title(), "value": value, "hidden": False, "displayOrder": i}
                for i, value in enumerate(options or [])
            ],
            "modificationMetadata": {
                "readOnlyValue": self.read_only,
                "readOnlyDefinition": self.hubspot_defined,
                "archivable": not self.hubspot_defined,
            },
        }


@dataclass
class Registry:
    """The properties of one object type, by name."""

    properties: dict[str, PropertyDef] = field(default_factory=dict)

    def add(self, prop: PropertyDef) -> None:
        self.properties[prop.name] = prop

    def __contains__(self, name: object) -> bool:
        return name in self.properties

    def get(self, name: str) -> PropertyDef | None:
        return self.properties.get(name)

    def check(self, values: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Normalised string values, and one HubSpot error entry per refused property."""
        clean: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        for name, raw in values.items():
            prop = self.properties.get(name)
            if prop is None:
                errors.append(_error(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                continue
            if prop.read_only:
                errors.append(_error(name, "READ_ONLY_VALUE", f'Property "{name}" is a read only property'))
                continue
            value = "" if raw is None else (str(raw).lower() if isinstance(raw, bool) else str(raw))
            if value == "":
                clean[name] = ""  # "" clears a property
                continue
            problem, normalised = _check_value(prop, value)
            if problem:
                errors.append(_error(name, problem[0], problem[1]))
            else:
                clean[name] = normalised
        return clean, errors


def _error(name: str, code: str, message: str) -> dict[str, Any]:
    return {"message": message, "code": code, "context": {"propertyName": [name]}, "name": name}


def _check_value(prop: PropertyDef, value: str) -> tuple[tuple[str, str] | None, str]:
    name = prop.name
    if prop.type == "number":
        try:
            float(value)
        except ValueError:
            return ("INVALID_INTEGER", f"{value!r} is not a valid number for property {name!r}"), value
        return None, value.strip()
    if prop.type == "enumeration" and prop.options is not None:
        if value not in prop.options:
            allowed = ", ".join(prop.options)
            return ("INVALID_OPTION", f"{value} was not one of the allowed options: [{allowed}]"), value
        return None, value
    if prop.type == "bool":
        if value.lower() not in ("true", "false"):
            return ("INVALID_BOOLEAN", f"{value!r} is not a valid boolean for property {name!r}: true or false"), value
        return None, value.lower()
    if prop.type == "date":
        parsed = _parse_time(value)
        if parsed is None:
            return ("INVALID_DATE", f"{value!r} is not a valid date (YYYY-MM-DD) for property {name!r}"), value
        return None, parsed.strftime("%Y-%m-%d")
    if prop.type == "datetime":
        parsed = _parse_time(value)
        if parsed is None:
            return ("INVALID_DATETIME", f"{value!r} is not a valid ISO 8601 datetime for property {name!r}"), value
        return None, iso(parsed)
    if prop.validate == "https" and not value.lower().startswith("https://"):
        return ("INVALID_URL", f"Property {name!r} must be an https URL"), value
    if prop.validate == "guid" and not GUID.match(value):
        return ("INVALID_OPTION", f"{value!r} is not a valid call disposition GUID for {name!r}"), value
    return None, value


def _parse_time(value: str) -> datetime | None:
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """HubSpot's timestamp form: ``2024-01-02T03:04:05.678Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def contact_registry(owners: tuple[str, ...] = DEFAULT_OWNERS) -> Registry:
    """A portal's contact properties: HubSpot's own, then the custom group the tests map to."""
    registry = Registry()
    for prop in _standard_contact_properties(owners):
        registry.add(prop)
    for prop in _custom_contact_properties():
        prop.group, prop.hubspot_defined = "crmsync_ai_calls", False
        registry.add(prop)
    return registry


def _standard_contact_properties(owners: tuple[str, ...]) -> list[PropertyDef]:
    return [
        PropertyDef("firstname", "string", "text", "First name"),
        PropertyDef("lastname", "string", "text", "Last name"),
        PropertyDef("email", "string", "text", "Email"),
        PropertyDef("phone", "string", "phonenumber", "Phone number"),
        PropertyDef("mobilephone", "string", "phonenumber", "Mobile phone number"),
        PropertyDef("company", "string", "text", "Company name"),
        PropertyDef("associatedcompanyid", "number", "number", "Primary associated company ID"),
        PropertyDef("hubspot_owner_id", "enumeration", "select", "Contact owner", options=list(owners)),
        PropertyDef(
            "hs_lead_status",
            "enumeration",
            "select",
            "Lead status",
            options=[
                "NEW",
                "OPEN",
                "IN_PROGRESS",
                "OPEN_DEAL",
                "UNQUALIFIED",
                "ATTEMPTED_TO_CONTACT",
                "CONNECTED",
                "BAD_TIMING",
            ],
        ),
        PropertyDef(
            "lifecyclestage",
            "enumeration",
            "radio",
            "Lifecycle stage",
            options=[
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
                "other",
            ],
        ),
        PropertyDef("createdate", "datetime", "date", "Create date", read_only=True),
        PropertyDef("lastmodifieddate", "datetime", "date", "Last modified date", read_only=True),
        PropertyDef("hs_object_id", "number", "number", "Record ID", read_only=True),
        PropertyDef(
            "hs_searchable_calculated_phone_number",
            "string",
            "calculation_equation",
            "Searchable phone number",
            read_only=True,
        ),
        PropertyDef(
            "hs_searchable_calculated_mobile_number",
            "string",
            "calculation_equation",
            "Searchable mobile number",
            read_only=True,
        ),
    ]


def _custom_contact_properties() -> list[PropertyDef]:
    return [
        PropertyDef("budget", "number", "number", "Budget"),
        PropertyDef("expected_salary", "number", "number", "Expected salary"),
        PropertyDef("interest_level", "enumeration", "select", "Interest level", options=["high", "medium", "low"]),
        PropertyDef("callback_requested", "bool", "booleancheckbox", "Callback requested"),
        PropertyDef("preferred_call_time", "string", "text", "Preferred call time"),
        PropertyDef("last_ai_call_at", "datetime", "date", "Last AI call at"),
        PropertyDef(
            "renewal_decision",
            "enumeration",
            "select",
            "Renewal decision",
            options=["renew", "later", "cancel", "undecided"],
        ),
        PropertyDef("follow_up_date", "date", "date", "Follow-up date"),
        PropertyDef("objections", "string", "textarea", "Objections"),
        PropertyDef("nps", "number", "number", "NPS"),
        PropertyDef("lead_source", "string", "text", "Lead source"),
        PropertyDef("customer_id", "string", "text", "Customer ID"),
        PropertyDef("last_call_summary", "string", "textarea", "Last call summary"),
    ]


CALL_STATUSES = [
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "MISSED",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
]


def call_registry(owners: tuple[str, ...] = DEFAULT_OWNERS) -> Registry:
    registry = Registry()
    for prop in [
        PropertyDef("hs_timestamp", "datetime", "date", "Activity date"),
        PropertyDef("hs_call_title", "string", "text", "Call title"),
        PropertyDef("hs_call_body", "string", "textarea", "Call notes"),
        PropertyDef("hs_call_duration", "number", "number", "Call duration (ms)"),
        PropertyDef("hs_call_direction", "enumeration", "select", "Call direction", options=["INBOUND", "OUTBOUND"]),
        PropertyDef("hs_call_status", "enumeration", "select", "Call status", options=CALL_STATUSES),
        PropertyDef("hs_call_disposition", "string", "text", "Call outcome", validate="guid"),
        PropertyDef("hs_call_from_number", "string", "text", "From number"),
        PropertyDef("hs_call_to_number", "string", "text", "To number"),
        PropertyDef("hs_call_recording_url", "string", "text", "Recording URL", validate="https"),
        PropertyDef("hs_call_external_id", "string", "text", "External call id"),
        PropertyDef("hs_call_external_account_id", "string", "text", "External account id"),
        PropertyDef("hs_call_source", "string", "text", "Call source"),
        PropertyDef("hs_activity_type", "string", "text", "Call and meeting type"),
        PropertyDef("hubspot_owner_id", "enumeration", "select", "Activity owner", options=list(owners)),
        PropertyDef("hs_createdate", "datetime", "date", "Create date", read_only=True),
        PropertyDef("hs_lastmodifieddate", "datetime", "date", "Last modified date", read_only=True),
        PropertyDef("hs_object_id", "number", "number", "Record ID", read_only=True),
    ]:
        prop.group = "call"
        registry.add(prop)
    return registry
