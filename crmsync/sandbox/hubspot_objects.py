"""The sandbox HubSpot's companies, deals and tasks (what ``link:`` and ``follow_up:`` write),
and the association types between objects that HubSpot defines.

A deal is closed when its ``dealstage`` is ``closedwon`` or ``closedlost`` (``hs_is_closed``
is computed, read-only, as on HubSpot). An association names its type id; the ids are those
of ``hubspot.crm.association_type`` (HUBSPOT_DEFINED), and any other id from an object is
refused with HubSpot's 400, as is one whose target record does not exist.
"""

from __future__ import annotations

from crmsync.sandbox.hubspot_schema import DEFAULT_OWNERS, PropertyDef, Registry

# type id -> (from kind, to kind)
ASSOCIATION_TYPES: dict[int, tuple[str, str]] = {
    194: ("calls", "contacts"),
    182: ("calls", "companies"),
    206: ("calls", "deals"),
    204: ("tasks", "contacts"),
    192: ("tasks", "companies"),
    216: ("tasks", "deals"),
    3: ("deals", "contacts"),
    5: ("deals", "companies"),
    279: ("contacts", "companies"),
}
DEAL_STAGES = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
]
CLOSED_STAGES = ("closedwon", "closedlost")


def _registry(group: str, props: list[PropertyDef]) -> Registry:
    registry = Registry()
    for prop in [
        *props,
        PropertyDef("createdate", "datetime", "date", "Create date", read_only=True),
        PropertyDef("hs_createdate", "datetime", "date", "Create date", read_only=True),
        PropertyDef("hs_lastmodifieddate", "datetime", "date", "Last modified date", read_only=True),
        PropertyDef("hs_object_id", "number", "number", "Record ID", read_only=True),
    ]:
        prop.group = group
        registry.add(prop)
    return registry


def company_registry(owners: tuple[str, ...] = DEFAULT_OWNERS) -> Registry:
    return _registry(
        "companyinformation",
        [
            PropertyDef("name", "string", "text", "Company name"),
            PropertyDef("domain", "string", "text", "Company domain name"),
            PropertyDef("phone", "string", "phonenumber", "Phone number"),
            PropertyDef("hubspot_owner_id", "enumeration", "select", "Company owner", options=list(owners)),
        ],
    )


def deal_registry(owners: tuple[str, ...] = DEFAULT_OWNERS) -> Registry:
    return _registry(
        "dealinformation",
        [
            PropertyDef("dealname", "string", "text", "Deal name"),
            PropertyDef("dealstage", "enumeration", "select", "Deal stage", options=DEAL_STAGES),
            PropertyDef("pipeline", "enumeration", "select", "Pipeline", options=["default"]),
            PropertyDef("amount", "number", "number", "Amount"),
            PropertyDef("closedate", "datetime", "date", "Close date"),
            PropertyDef("hs_next_step", "string", "text", "Next step"),
            PropertyDef("hs_is_closed", "bool", "calculation_equation", "Is closed", read_only=True),
            PropertyDef("hubspot_owner_id", "enumeration", "select", "Deal owner", options=list(owners)),
        ],
    )


def task_registry(owners: tuple[str, ...] = DEFAULT_OWNERS) -> Registry:
    return _registry(
        "task",
        [
            PropertyDef("hs_timestamp", "datetime", "date", "Due date"),
            PropertyDef("hs_task_subject", "string", "text", "Task title"),
            PropertyDef("hs_task_body", "string", "textarea", "Notes"),
            PropertyDef(
                "hs_task_status",
                "enumeration",
                "select",
                "Task status",
                options=["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"],
            ),
            PropertyDef(
                "hs_task_priority", "enumeration", "select", "Priority", options=["NONE", "LOW", "MEDIUM", "HIGH"]
            ),
            PropertyDef("hs_task_type", "enumeration", "select", "Task type", options=["CALL", "EMAIL", "TODO"]),
            PropertyDef("hubspot_owner_id", "enumeration", "select", "Assigned to", options=list(owners)),
        ],
    )
