"""A Salesforce call written: its Task, the person's and the Opportunity's fields and the
follow-up Task in one ``composite`` request (``salesforce_composite``), or, for a new
caller, the person with them; and the open Opportunity a call links to.

One call, one Task; one follow-up per call: the in-flight ledger (kinds ``activity`` and
``follow_up``, by call id) marks each create before it is sent. A SOQL look-up of the Task
by ``CallObject`` runs only when an earlier attempt may have created it (its answer was
lost), so a call costs 2 requests: the SOSL lookup and the composite.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from simple_salesforce import format_soql

from crmsync.crm import salesforce_composite as composite
from crmsync.crm.base import Activity, Deal, FollowUp, Links, Person, WriteResult
from crmsync.crm.ledger import Ledger, person_name
from crmsync.crm.salesforce_client import CRM, SalesforceClient, error_from
from crmsync.crm.salesforce_people import created_person, phone_field
from crmsync.crm.salesforce_records import (
    RECORD_ID,
    check_field,
    check_object,
    check_record,
    field_value,
    phone_fields,
)
from crmsync.crm.salesforce_task import SALESFORCE, TEXT_MAX, follow_up_fields, follow_up_mark, task_fields
from crmsync.errors import PermanentError

log = logging.getLogger(__name__)

MAX_WRITE_ATTEMPTS = 4  # composites per write_call: refused fields are dropped, then all of them


class SalesforceWriter:
    """``write_call``, ``create_with_call`` and ``find_deal`` over one client and the ledgers."""

    def __init__(
        self, client: SalesforceClient, api_version: str, *, activities: Ledger, people: Ledger, follow_ups: Ledger
    ) -> None:
        self.client = client
        self.base = f"/services/data/v{api_version}/sobjects"
        self.activities = activities
        self.people = people
        self.follow_ups = follow_ups

    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """``Connector.find_deal`` (see ``SalesforceConnector.find_deal``)."""
        if person.object != "Contact" or not person.company_id or not RECORD_ID.match(person.company_id):
            return None
        for name in fields:
            check_field(name)
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
            values={f: field_value(records[0], f) for f in fields},
            modified_at=records[0].get("LastModifiedDate"),
        )

    def write_call(self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links) -> WriteResult:
        """``Connector.write_call`` (see ``SalesforceConnector.write_call``)."""
        check_record(person.object, person.id)
        existing = self._begin_task(activity.call_id)
        what = composite.what_id(person, links)
        follow_up_id, follow_up = self._follow_up_state(links.follow_up)
        writes = {
            "person": SALESFORCE.wire_values(dict(updates)),
            "deal": SALESFORCE.wire_values(dict(links.deal_updates)) if links.deal else {},
        }
        rejected: dict[str, dict[str, str]] = {"person": {}, "deal": {}}
        for attempt in range(MAX_WRITE_ATTEMPTS):
            task = task_fields(person, activity, create=not existing) | ({"WhatId": what} if what else {})
            subs = composite.call_subrequests(
                self.base,
                person,
                task,
                existing,
                writes,
                links.deal,
                follow_up_fields(person, follow_up, what) if follow_up else None,
            )
            answers = self._send(subs, "write the call", "write the call")
            failures = composite.failures(answers)
            if not failures:
                break
            failed = failures[0]
            if failed["referenceId"] == "task" and existing and failed["httpStatusCode"] == 404:
                # Someone deleted the call's Task in Salesforce: log the call again.
                log.warning("salesforce Task was deleted; logging the call again", extra={"call_id": activity.call_id})
                existing = None
                self.activities.clear(activity.call_id)
                self.activities.begin(activity.call_id)
                continue
            ref = failed["referenceId"]
            if ref not in writes or failed["httpStatusCode"] != 400 or not writes[ref]:
                if follow_up:
                    self.follow_ups.clear(follow_up.call_id)  # allOrNone: nothing was created
                raise error_from(failed["httpStatusCode"], failed["body"], composite.action(ref, person))
            composite.drop_refused(failed["body"], writes[ref], rejected[ref], last=attempt >= MAX_WRITE_ATTEMPTS - 2)
        else:
            raise PermanentError(CRM, "write the call: Salesforce kept refusing the update", code="UNKNOWN")
        activity_id = existing or str(answers[0]["body"]["id"])
        self.activities.record(activity.call_id, activity_id)
        if follow_up:
            follow_up_id = str(answers[-1]["body"]["id"])
            self.follow_ups.record(follow_up.call_id, follow_up_id)
        linked = {"deal": links.deal.id} if links.deal else ({"company": what} if what else {})
        return composite.write_result(activity_id, not existing, writes, rejected, follow_up_id, linked)

    def create_with_call(
        self,
        object: str,
        properties: Mapping[str, Any],
        fields: Sequence[str],
        activity: Activity,
        follow_up: FollowUp | None,
    ) -> tuple[Person, WriteResult] | None:
        """``Connector.create_with_call`` (see ``SalesforceConnector.create_with_call``)."""
        check_object(object)
        body = SALESFORCE.wire_values(dict(properties))
        if not phone_field(object, body):
            return None
        name = person_name(object, body, phone_fields(object))
        if (
            self.people.get(name) is not None
            or self.activities.get(activity.call_id) is not None
            or (follow_up is not None and self.follow_ups.get(follow_up.call_id) is not None)
        ):
            return None
        self.people.begin(name)
        self.activities.begin(activity.call_id)
        if follow_up is not None:
            self.follow_ups.begin(follow_up.call_id)
        subs = composite.create_subrequests(self.base, object, body, activity, follow_up)
        answers = self._send(subs, "create the caller and log the call", "create the caller")
        failures = composite.failures(answers)
        if failures:
            self._undo_create(name, activity, follow_up)  # allOrNone: Salesforce created nothing
            raise composite.create_error(failures[0], object)
        person_id, task_id = str(answers[0]["body"]["id"]), str(answers[1]["body"]["id"])
        self.activities.record(activity.call_id, task_id)
        self.people.record(name, person_id)
        follow_up_id = str(answers[2]["body"]["id"]) if follow_up is not None else None
        if follow_up is not None and follow_up_id:
            self.follow_ups.record(follow_up.call_id, follow_up_id)
        person = created_person(object, person_id, body, fields)
        return person, WriteResult(activity_id=task_id, activity_created=True, follow_up_id=follow_up_id)

    def _send(self, subrequests: list[dict[str, Any]], what: str, short: str) -> list[dict[str, Any]]:
        """One ``allOrNone`` composite; ``short`` names it when the answer is incomplete."""
        body = {"allOrNone": True, "compositeRequest": subrequests}
        result = self.client.call(what, lambda sf: sf.restful("composite", method="POST", json=body))
        return composite.answers_of(result, subrequests, short)

    def _undo_create(self, name: str, activity: Activity, follow_up: FollowUp | None) -> None:
        self.people.clear(name)
        self.activities.clear(activity.call_id)
        if follow_up is not None:
            self.follow_ups.clear(follow_up.call_id)

    def _begin_task(self, call_id: str) -> str | None:
        """The call's Task id when an earlier attempt created it; else marks the attempt begun.
        The SOQL look-up runs only when an earlier attempt may have created the Task (its
        answer was lost), so a call costs 2 requests."""
        entry = self.activities.get(call_id)
        existing = self._find_task(call_id) if entry is not None and entry.pending else (entry.id if entry else None)
        if existing:
            self.activities.record(call_id, existing)
        else:
            self.activities.begin(call_id)
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
