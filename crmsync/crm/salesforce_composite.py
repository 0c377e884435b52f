"""What the one ``composite`` request of a Salesforce call says, and what its answer means. Pure.

``write_call`` sends the call's Task (created, or updated by id), the person's fields, the
Opportunity's fields and the follow-up Task; ``create_with_call`` sends the new person, its
Task (``WhoId`` by reference, ``@{person.id}``) and the follow-up. Both ``allOrNone``: a
failed sub-request fails the others with ``PROCESSING_HALTED``, and Salesforce keeps nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crmsync.crm.base import Activity, Deal, FollowUp, Links, Person, WriteResult
from crmsync.crm.salesforce_client import error_details, error_from
from crmsync.crm.salesforce_records import RECORD_ID
from crmsync.crm.salesforce_task import follow_up_fields, task_fields

_NO_SUCH_COLUMN = re.compile(r"No such column '(\w+)'")


def call_subrequests(
    base: str,
    person: Person,
    task: dict[str, Any],
    existing: str | None,
    writes: dict[str, Any],
    deal: Deal | None,
    follow_up: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """``write_call``'s sub-requests: the Task, then the person's, the deal's fields and the
    follow-up where there are any (``base``: the API version's ``sobjects`` path)."""
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
    if deal is not None and writes["deal"] and RECORD_ID.match(deal.id):
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


def create_subrequests(
    base: str, object: str, body: dict[str, Any], activity: Activity, follow_up: FollowUp | None
) -> list[dict[str, Any]]:
    """The new person, the call's Task and the follow-up, referring to the person by reference."""
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


def answers_of(result: Any, subrequests: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """The composite's answer, one per sub-request; a 502 ``RetryableError`` when it is incomplete."""
    answers = (result or {}).get("compositeResponse")
    if not isinstance(answers, list) or len(answers) != len(subrequests):
        raise error_from(502, None, f"{what}: Salesforce's composite answer was incomplete")
    return answers


def failures(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sub-requests that failed on their own (not those ``allOrNone`` halted)."""
    return [a for a in answers if a["httpStatusCode"] >= 300 and not _halted(a)]


def _halted(answer: Mapping[str, Any]) -> bool:
    body = answer.get("body")
    return isinstance(body, list) and bool(body) and body[0].get("errorCode") == "PROCESSING_HALTED"


def what_id(person: Person, links: Links) -> str | None:
    """The Task's ``WhatId``: the linked Opportunity, else (``link.company``) the Contact's
    Account; a Lead's Task never has one (Salesforce refuses it)."""
    if person.object != "Contact":
        return None
    if links.deal is not None:
        return links.deal.id
    return person.company_id if links.company else None


def action(ref: str, person: Person) -> str:
    """What the sub-request ``ref`` of ``write_call`` does, in the words of an error."""
    return {
        "task": "write the call's Task",
        "person": f"update the {person.object}",
        "deal": "update the Opportunity",
        "follow_up": "create the follow-up Task",
    }.get(ref, "write the call")


def drop_refused(body: Any, pending: dict[str, Any], rejected: dict[str, str], *, last: bool) -> None:
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


def create_error(failed: dict[str, Any], object: str) -> Exception:
    """The CRM's own error for the composite sub-request that failed a create-with-call."""
    what = f"create the {object}" if failed["referenceId"] == "person" else "write the call's Task"
    return error_from(failed["httpStatusCode"], failed["body"], what)


def write_result(
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
