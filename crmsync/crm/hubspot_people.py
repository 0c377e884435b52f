"""HubSpot's callers: contacts found by phone (one search ORing every stored form of the
number) and created once.

HubSpot's ``EQ`` on ``phone`` is an exact string match; the ``hs_searchable_calculated_*``
properties hold national digits, and ``CONTAINS_TOKEN`` with ``*digits`` matches a number
stored with a prefix (``00966 56 444 5566``). Every hit is re-checked with
``phones.matches`` (SPEC §5). ``hubspot_batch`` searches 50 numbers at once with the same
properties and paging (``contact_properties``, ``search_contacts``).

A create is recorded in the in-flight ledger (kind ``person``, by phone: ``person_name``):
a contact the ledger knows is read back instead of created again, and one whose create got
no answer is waited for (``HubSpotClient.wait_for_index``), since the pipeline's search
just before may not show it yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers

from crmsync import phones
from crmsync.crm import hubspot_links as links_
from crmsync.crm.base import Person
from crmsync.crm.hubspot_calls import OBJECTS, person_from, wire
from crmsync.crm.hubspot_client import HubSpotClient
from crmsync.crm.hubspot_errors import CRM
from crmsync.crm.ledger import Ledger, person_name
from crmsync.errors import PermanentError

MAX_PAGES = 5  # contact search pages of 100 followed for one number
PHONE_FIELDS = ("phone", "mobilephone")


def contact_properties(fields: Sequence[str]) -> list[str]:
    """What a contact search reads: the phones, owner, last change, company and ``fields``."""
    return list(
        dict.fromkeys(
            ["phone", "mobilephone", "hubspot_owner_id", "lastmodifieddate", links_.COMPANY_PROPERTY, *fields]
        )
    )


def has_number(props: Mapping[str, Any], e164: str) -> bool:
    """Whether the contact's ``phone`` or ``mobilephone`` is ``e164`` by ``phones.matches``."""
    return any(phones.matches(props.get(f), e164) for f in PHONE_FIELDS)


def search_contacts(
    client: HubSpotClient, groups: list[dict[str, Any]], properties: list[str], *, limit: int, pages: int
) -> list[Any]:
    """Every hit of one contact search, following at most ``pages`` pages of ``limit``."""
    hits: list[Any] = []
    after: str | None = None
    for _ in range(pages):
        request: dict[str, Any] = {"filterGroups": groups, "properties": properties, "limit": limit}
        if after:
            request["after"] = after
        page = client.send(client.contacts_search.do_search_with_http_info, request, search=True)
        hits += page.results or []
        paging = getattr(page, "paging", None)
        after = paging.next.after if paging is not None and paging.next is not None else None
        if not after:
            break
    return hits


def _phone_groups(e164: str, national: str) -> list[dict[str, Any]]:
    """The filter groups, ORed, of every form the number may be stored in."""

    def one(name: str, operator: str, value: str) -> dict[str, Any]:
        return {"filters": [{"propertyName": name, "operator": operator, "value": value}]}

    return [
        one("phone", "EQ", e164),
        one("mobilephone", "EQ", e164),
        one("hs_searchable_calculated_phone_number", "EQ", national),
        one("hs_searchable_calculated_phone_number", "CONTAINS_TOKEN", f"*{national}"),
        one("hs_searchable_calculated_mobile_number", "CONTAINS_TOKEN", f"*{national}"),
    ]


class HubSpotPeople:
    """The lookup and the create of contacts."""

    def __init__(self, client: HubSpotClient, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger

    def find(self, e164: str, objects: Sequence[str], fields: Sequence[str]) -> list[Person]:
        """``Connector.find_people`` (see ``HubSpotConnector.find_people``)."""
        for name in objects:
            if OBJECTS.get(name.lower()) != "contacts":
                raise PermanentError(CRM, f"object {name!r} cannot be matched by phone in HubSpot: use contact")
        try:
            national = phones.national_digits(e164)
        except phonenumbers.NumberParseException:
            raise PermanentError(CRM, "the caller's number is not E.164 (+ and country code)") from None
        groups = _phone_groups(e164, national)
        hits = search_contacts(self.client, groups, contact_properties(fields), limit=100, pages=MAX_PAGES)
        return [
            person_from(hit.id, hit.properties or {}, fields) for hit in hits if has_number(hit.properties or {}, e164)
        ]

    def create(self, object: str, properties: Mapping[str, Any], fields: Sequence[str]) -> Person:
        """``Connector.create_person`` (see ``HubSpotConnector.create_person``)."""
        if OBJECTS.get(object.lower()) != "contacts":
            raise PermanentError(CRM, f"cannot create a {object!r} in HubSpot: use contact")
        values = {k: wire(v) for k, v in properties.items()}
        name = person_name("contact", values, PHONE_FIELDS)
        names = list(dict.fromkeys(["phone", "mobilephone", "hubspot_owner_id", "lastmodifieddate", *fields]))
        entry = self.ledger.get(name)
        if entry is not None and entry.id:
            try:
                found = self.client.send(self.client.contacts.get_by_id_with_http_info, entry.id, properties=names)
                return person_from(found.id, found.properties or {}, fields, created=True)
            except PermanentError as err:
                if err.status != 404:
                    raise
        elif entry is not None:
            self.client.wait_for_index("contact", entry.age())
        created = self.client.create(
            self.ledger, name, self.client.contacts.create_with_http_info, {"properties": values, "associations": []}
        )
        return person_from(created.id, created.properties or {}, fields, created=True)
