"""What HubSpot's company, deal and task requests say (``link:`` and ``follow_up:``). Pure.

Association type ids (HUBSPOT_DEFINED, ``hubspot.crm.association_type``): call → contact 194,
call → company 182, call → deal 206; task → contact 204, task → deal 216. The contact's
primary company is its ``associatedcompanyid`` property, read in the contact search itself.
The open deal is found by one deal search filtered on ``associations.contact`` and
``hs_is_closed``, newest ``hs_lastmodifieddate`` first, with the mapped deal fields.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from crmsync.crm.base import FollowUp, Person
from crmsync.crm.hubspot_calls import wire

CALL_TO_CONTACT, CALL_TO_COMPANY, CALL_TO_DEAL = 194, 182, 206
TASK_TO_CONTACT, TASK_TO_DEAL = 204, 216
COMPANY_PROPERTY = "associatedcompanyid"  # the contact's primary company
PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH"}
DUE_TIME = time(12, 0, tzinfo=UTC)  # a due date becomes noon UTC: the same day from UTC-11 to UTC+11


def associations(pairs: list[tuple[str | None, int]]) -> list[dict[str, Any]]:
    """``[(record id, type id)]`` as ``associations`` of a create; pairs without an id are left out."""
    return [
        {"to": {"id": rid}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": kind}]}
        for rid, kind in pairs
        if rid
    ]


def deal_search(contact_id: str, fields: list[str]) -> dict[str, Any]:
    """The contact's open deal modified last, with ``fields``: one search request."""
    return {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "associations.contact", "operator": "EQ", "value": contact_id},
                    {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"},
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
        "properties": list(dict.fromkeys(["hs_lastmodifieddate", *fields])),
        "limit": 1,
    }


def due_ms(due: date | datetime) -> str:
    """``hs_timestamp`` of a task: its due moment in epoch milliseconds."""
    if not isinstance(due, datetime):
        due = datetime.combine(due, DUE_TIME)
    return wire(due)


def task_properties(follow_up: FollowUp, person: Person) -> dict[str, str]:
    props = {
        "hs_timestamp": due_ms(follow_up.due),
        "hs_task_subject": follow_up.title,
        "hs_task_body": follow_up.body,
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": PRIORITIES.get(follow_up.priority, "MEDIUM"),
        "hs_task_type": "CALL",
    }
    owner = follow_up.owner_id or person.owner_id
    if owner:
        props["hubspot_owner_id"] = str(owner)
    return props


def task_search(follow_up: FollowUp, contact_id: str) -> dict[str, Any]:
    """The task an earlier attempt may have created: the same subject and due moment on the contact."""
    return {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "associations.contact", "operator": "EQ", "value": contact_id},
                    {"propertyName": "hs_task_subject", "operator": "EQ", "value": follow_up.title},
                    {"propertyName": "hs_timestamp", "operator": "EQ", "value": due_ms(follow_up.due)},
                ]
            }
        ],
        "properties": ["hs_task_subject"],
        "limit": 10,
    }
