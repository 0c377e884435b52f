"""A HubSpot call written: the call engagement upserted on the contact (created with its
company and deal associations), the contact's and the deal's fields updated, the follow-up
task created; and the open deal a call links to (``hubspot_links`` says what each of these
requests holds).

One call, one engagement; one follow-up task per call: the in-flight ledger (kinds
``activity`` and ``follow_up``, by call id) records a create in flight and then its id.
When an earlier create's answer was lost, the call is searched by ``hs_call_external_id``
(the task by subject and due moment) before creating, and "not found" is trusted only past
the search index lag (``HubSpotClient.wait_for_index``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.crm import hubspot_links as links_
from crmsync.crm.base import Activity, Deal, FollowUp, Links, Person, WriteResult
from crmsync.crm.hubspot_calls import call_properties, wire
from crmsync.crm.hubspot_client import HubSpotClient
from crmsync.crm.hubspot_errors import error_body, property_errors
from crmsync.crm.ledger import Ledger
from crmsync.errors import PermanentError

log = logging.getLogger(__name__)


def _first(ids: Any) -> list[str]:
    """HubSpot record ids, oldest (shortest, then smallest) first."""
    return sorted((str(i) for i in ids), key=lambda i: (len(i), i))


class HubSpotWriter:
    """``write_call`` and ``find_deal`` over one client and the ledgers."""

    def __init__(self, client: HubSpotClient, *, activities: Ledger, follow_ups: Ledger) -> None:
        self.client = client
        self.activities = activities
        self.follow_ups = follow_ups

    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """``Connector.find_deal`` (see ``HubSpotConnector.find_deal``)."""
        request = links_.deal_search(person.id, list(fields))
        page = self.client.send(self.client.deals_search.do_search_with_http_info, request, search=True)
        hits = page.results or []
        if not hits:
            return None
        props = hits[0].properties or {}
        return Deal(
            id=str(hits[0].id), values={f: props.get(f) for f in fields}, modified_at=props.get("hs_lastmodifieddate")
        )

    def write_call(self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links) -> WriteResult:
        """``Connector.write_call`` (see ``HubSpotConnector.write_call``)."""
        props = call_properties(activity, person)
        linked = {
            "company": person.company_id if links.company else None,
            "deal": links.deal.id if links.deal else None,
        }
        to = links_.associations(
            [
                (person.id, links_.CALL_TO_CONTACT),
                (linked["company"], links_.CALL_TO_COMPANY),
                (linked["deal"], links_.CALL_TO_DEAL),
            ]
        )
        activity_id, created = self._upsert_call(activity.call_id, props, to)
        written, rejected = self.update(self.client.contacts, person.id, {k: wire(v) for k, v in updates.items()})
        result = WriteResult(activity_id, created, written, rejected, linked={k: v for k, v in linked.items() if v})
        if links.deal is not None and links.deal_updates:
            result.deal_written, result.deal_rejected = self.update(
                self.client.deals, links.deal.id, {k: wire(v) for k, v in links.deal_updates.items()}
            )
        if links.follow_up is not None:
            result.follow_up_id = self._follow_up(person, links.follow_up, linked["deal"])
        return result

    def update(self, api: Any, record_id: str, values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """PATCH ``values`` onto a contact or deal; refused properties are dropped and retried."""
        if not values:
            return {}, {}
        try:
            self.client.send(api.update_with_http_info, record_id, {"properties": values})
            return dict(values), {}
        except PermanentError as err:
            refused = property_errors(error_body(err.__cause__)) if err.__cause__ else {}
            refused = {k: self.client.scrub(v) for k, v in refused.items() if k in values}
            if err.status != 400 or not refused:
                raise
        rest = {k: v for k, v in values.items() if k not in refused}
        if rest:
            self.client.send(api.update_with_http_info, record_id, {"properties": rest})
        return rest, refused

    def _follow_up(self, person: Person, follow_up: FollowUp, deal_id: str | None) -> str:
        """The call's follow-up task, created once: the ledger (by call id) says whether an
        earlier attempt created it, or sent it and lost the answer (then it is searched for)."""
        entry = self.follow_ups.get(follow_up.call_id)
        if entry is not None and entry.id:
            return entry.id
        if entry is not None:
            page = self.client.send(
                self.client.tasks_search.do_search_with_http_info,
                links_.task_search(follow_up, person.id),
                search=True,
            )
            found = _first(hit.id for hit in page.results or [])
            if found:
                self.follow_ups.record(follow_up.call_id, found[0])
                return found[0]
            self.client.wait_for_index("task", entry.age())
        body = {
            "properties": links_.task_properties(follow_up, person),
            "associations": links_.associations([(person.id, links_.TASK_TO_CONTACT), (deal_id, links_.TASK_TO_DEAL)]),
        }
        created = self.client.create(self.follow_ups, follow_up.call_id, self.client.tasks.create_with_http_info, body)
        return str(created.id)

    def _upsert_call(self, call_id: str, props: dict[str, str], associations: list[dict[str, Any]]) -> tuple[str, bool]:
        entry = self.activities.get(call_id)
        if entry is not None and entry.id:
            try:
                self.client.send(self.client.calls.update_with_http_info, entry.id, {"properties": props})
                return entry.id, False
            except PermanentError as err:
                if err.status != 404:
                    raise
                log.warning("hubspot call was deleted in HubSpot; logging it again", extra={"call_id": call_id})
        elif entry is not None:  # an earlier create got no answer: it may exist
            found = self._find_call(call_id)
            if found:
                self.activities.record(call_id, found)
                self.client.send(self.client.calls.update_with_http_info, found, {"properties": props})
                return found, False
            self.client.wait_for_index("call", entry.age())
            # older than the index lag and still not found: that create never landed
        created = self.client.create(
            self.activities,
            call_id,
            self.client.calls.create_with_http_info,
            {"properties": props, "associations": associations},
        )
        return str(created.id), True

    def _find_call(self, call_id: str) -> str | None:
        request = {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ", "value": call_id}]}
            ],
            "properties": ["hs_call_external_id"],
            "limit": 10,
        }
        page = self.client.send(self.client.calls_search.do_search_with_http_info, request, search=True)
        ids = _first(hit.id for hit in page.results or [])
        return ids[0] if ids else None
