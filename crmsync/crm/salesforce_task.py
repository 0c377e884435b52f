"""The Salesforce Task that logs one call (Part A3 of the CRM reference): a completed
``Call`` subtype with call type, duration, result and the external call id in
``CallObject`` (what the duplicate check looks up), cut to Salesforce's length limits."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crmsync import times
from crmsync.crm.base import Activity, FollowUp, Person, Profile
from crmsync.crm.ui import salesforce_budget_alarm, salesforce_record_url

SUBJECT_MAX = 255  # characters
DESCRIPTION_MAX = 32000  # characters
TEXT_MAX = 255  # characters: CallDisposition, CallObject
TRUNCATED = "\n… [truncated]"
# A call that did not complete, as Salesforce's "Call Result" (CallDisposition) shows it,
# unless the mapping's activity.disposition says otherwise.
CALL_RESULTS = {
    "no_answer": "No answer",
    "busy": "Busy",
    "failed": "Failed",
    "terminated": "Terminated",
    "canceled": "Canceled",
    "voicemail": "Left voicemail",
    "forwarded": "Forwarded",
}


def wire(value: Any) -> Any:
    """A field value as Salesforce's REST API takes it: JSON types; a date as ``YYYY-MM-DD``,
    a datetime as ISO 8601 UTC with milliseconds (``2026-03-02T09:14:52.318Z``)."""
    if isinstance(value, datetime):
        return times.iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


SALESFORCE = Profile(
    name="salesforce",
    match_objects=("Contact", "Lead"),
    create_objects=("Contact", "Lead"),
    owner_field="OwnerId",
    activity_object="Task",
    body_format="text",
    body_limit=DESCRIPTION_MAX,
    title_limit=SUBJECT_MAX,
    disposition_limit=TEXT_MAX,
    wire=wire,
    record_url=salesforce_record_url,
    budget_alarm=salesforce_budget_alarm,
    deal_object="Opportunity",
    follow_up_object="Task",
)


def task_fields(person: Person, activity: Activity, *, create: bool = True) -> dict[str, Any]:
    """The Task for ``activity``: a completed call on ``person``, owned by the activity's
    owner or else the person's, with Salesforce's length limits applied."""
    description = activity.body or ""
    if len(description) > DESCRIPTION_MAX:
        description = description[: DESCRIPTION_MAX - len(TRUNCATED)] + TRUNCATED
    task: dict[str, Any] = {
        "Subject": (activity.title or "Call")[:SUBJECT_MAX],
        "Description": description,
        "Status": "Completed",
        "Priority": "Normal",
        "CallObject": activity.call_id[:TEXT_MAX],
        "WhoId": person.id,
    }
    if create:
        task["TaskSubtype"] = "Call"  # create-only on Salesforce
    if activity.direction in ("inbound", "outbound"):
        task["CallType"] = activity.direction.capitalize()
    if activity.duration_seconds is not None:
        task["CallDurationInSeconds"] = int(activity.duration_seconds)
    disposition = activity.disposition or CALL_RESULTS.get((activity.status or "").lower())
    if disposition:
        task["CallDisposition"] = str(disposition)[:TEXT_MAX]
    day = _utc_date(activity.timestamp)
    if day:
        task["ActivityDate"] = day
    owner = activity.owner_id or person.owner_id
    if owner:
        task["OwnerId"] = owner
    task.update(SALESFORCE.wire_values(activity.properties))
    return task


def _utc_date(timestamp: str | None) -> str | None:
    moment = times.parse(timestamp)
    return moment.date().isoformat() if moment else None


PRIORITIES = {"low": "Low", "normal": "Normal", "high": "High"}
FOLLOW_UP_MARK = ":follow-up"  # CallObject of a follow-up Task: the call id and this (what a lost answer looks up)


def follow_up_mark(call_id: str) -> str:
    return call_id[: TEXT_MAX - len(FOLLOW_UP_MARK)] + FOLLOW_UP_MARK


def follow_up_fields(person: Person, follow_up: FollowUp, what_id: str | None) -> dict[str, Any]:
    """The open Task a follow-up is: due on ``ActivityDate``, on the person (``WhoId``) and the
    call's Account or Opportunity (``WhatId``), owned by the rep unless ``owner`` said otherwise."""
    due = follow_up.due.astimezone(UTC).date() if isinstance(follow_up.due, datetime) else follow_up.due
    task: dict[str, Any] = {
        "Subject": (follow_up.title or "Follow up")[:SUBJECT_MAX],
        "Description": (follow_up.body or "")[:DESCRIPTION_MAX],
        "Status": "Not Started",
        "Priority": PRIORITIES.get(follow_up.priority, "Normal"),
        "ActivityDate": due.isoformat(),
        "TaskSubtype": "Task",
        "CallObject": follow_up_mark(follow_up.call_id),
        "WhoId": person.id,
    }
    if what_id:
        task["WhatId"] = what_id
    owner = follow_up.owner_id or person.owner_id
    if owner:
        task["OwnerId"] = owner
    return task
