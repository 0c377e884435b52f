"""The Salesforce connector (``base.Connector``): SOSL phone lookup, one composite request
per call for the Task and the profile fields, and describe.

Cost per synced call: 2 API requests, the SOSL lookup and one ``composite`` (Task create
or update + Contact/Lead update, ``allOrNone``). A SOQL lookup of the Task by
``CallObject`` is added only when the ledger says an earlier attempt may have created it
(the attempt started, its answer never arrived).

``SalesforceConnector`` is the façade; each concern is a module of its own over one
``SalesforceClient`` (``salesforce_client``: session, login, budget, errors):

    salesforce_people.py     the lookup (SOSL) and the create of Contacts and Leads
    salesforce_writer.py     the call: Task, fields, Opportunity and follow-up in one composite
    salesforce_composite.py  what that composite says and what its answer means (pure)
    salesforce_records.py    name checks; describe, the credentials check, the rollback's requests
    salesforce_batch.py      the batch requests (find_people_many, write_calls)

    connector = SalesforceConnector(settings.salesforce, redis)
    people = connector.find_people("+14155551212", ["Contact", "Lead"], ["Interest_Level__c"])
    result = connector.write_call(people[0], activity, {"Interest_Level__c": "High"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from redis import Redis

from crmsync.crm import salesforce_batch
from crmsync.crm.base import Activity, CallWrite, Deal, FieldInfo, FollowUp, Found, Links, Person, WriteResult, Written
from crmsync.crm.ledger import Ledger
from crmsync.crm.salesforce_client import CRM, SalesforceClient
from crmsync.crm.salesforce_people import FieldSpec, SalesforcePeople
from crmsync.crm.salesforce_records import SalesforceRecords
from crmsync.crm.salesforce_task import SALESFORCE
from crmsync.crm.salesforce_writer import SalesforceWriter
from crmsync.metrics import Metrics
from crmsync.sub_settings import SalesforceSettings


class SalesforceConnector:
    """Salesforce behind the connector contract. One session and one login per connector;
    build one per worker process and ``close()`` it at the end."""

    name = CRM
    profile = SALESFORCE
    batch_size = salesforce_batch.MAX_RECORDS

    def __init__(
        self,
        settings: SalesforceSettings,
        redis: Redis,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (3.05, 20),
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.client = SalesforceClient(
            settings, redis, session=session, timeout=timeout, metrics=metrics or Metrics(redis)
        )
        self.redis = redis
        self.ledger = Ledger(redis, CRM, "activity")
        people = Ledger(redis, CRM, "person")
        self.records = SalesforceRecords(self.client)
        self.callers = SalesforcePeople(self.client, people, self.records.describe)
        self.writer = SalesforceWriter(
            self.client,
            settings.api_version,
            activities=self.ledger,
            people=people,
            follow_ups=Ledger(redis, CRM, "follow_up"),
        )

    @property
    def session(self) -> requests.Session:
        return self.client.session

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SalesforceConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- people (crmsync.crm.salesforce_people) --------------------------------------------
    def find_people(self, e164: str, objects: Sequence[str], fields: FieldSpec) -> list[Person]:
        """Contacts and Leads whose stored phone is ``e164`` by the SPEC §5 rule, grouped in
        ``objects`` order (SOSL relevance within an object).

        ``fields`` is either a list of field names, each asked only of the objects whose
        ``describe`` has it (describe is cached per object for the connector's life, so
        the first lookup costs one extra request per object), or a mapping
        ``{object: [field, …]}`` used as given. ``Person.values`` is keyed by the names
        asked for. One SOSL search gets digits only: the national number OR the full E.164
        digits (``FIND {501234567 OR 966501234567}``). Every hit is re-checked with ``phones.matches``.
        """
        return self.callers.find(e164, objects, fields)

    def create_person(self, object: str, properties: Mapping[str, Any], fields: Sequence[str]) -> Person:
        """Create a Contact or Lead (one request); its owner is the API user unless
        ``properties`` sets ``OwnerId``.

        At most one person is created per object and phone number while the ledger keeps it
        (``LEDGER_TTLS["person"]``): a retry whose earlier create got no answer, or a second
        call from the same number while Salesforce's search index does not show the new
        record yet, gets the same record back (found by an exact SOQL match on the phone
        value when the earlier answer was lost) instead of a duplicate."""
        return self.callers.create(object, properties, fields)

    # -- batches (crmsync.crm.salesforce_batch) ---------------------------------------------
    def find_people_many(self, numbers: Sequence[str], objects: Sequence[str], fields: FieldSpec) -> dict[str, Found]:
        """``find_people`` for many numbers: one SOSL search per 50 (``salesforce_batch``)."""
        return salesforce_batch.find_many(self, numbers, objects, fields)

    def write_calls(self, writes: Sequence[CallWrite]) -> list[Written]:
        """``write_call`` for many calls in sObject Collections of 200 (``salesforce_batch``)."""
        return salesforce_batch.write_many(self, writes)

    # -- the call (crmsync.crm.salesforce_writer) -------------------------------------------
    def create_with_call(
        self,
        object: str,
        properties: Mapping[str, Any],
        fields: Sequence[str],
        activity: Activity,
        follow_up: FollowUp | None = None,
    ) -> tuple[Person, WriteResult] | None:
        """Create the person and log the call on it in one ``allOrNone`` composite, so a
        new caller costs 2 requests (the search and this) instead of 3.

        None when an earlier attempt may already have created either (its answer was
        lost): the caller then uses ``create_person`` and ``write_call``, which look first.
        A refusal leaves nothing behind (``allOrNone``) and raises the CRM's error."""
        return self.writer.create_with_call(object, properties, fields, activity, follow_up)

    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """The open Opportunity of the Contact's Account modified last (one SOQL query), with
        ``fields``; None for a Lead or a Contact without an Account."""
        return self.writer.find_deal(person, fields)

    def write_call(
        self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links | None = None
    ) -> WriteResult:
        """Create (or update) the call's Task, write ``updates`` onto the person, the deal's
        fields onto the Opportunity and create the follow-up Task, all in one ``composite``
        request. The Task's ``WhatId`` is the Opportunity, else the Contact's Account (a
        Lead's Task has none). An update that Salesforce refuses for named fields is
        retried without them; they come back in ``rejected`` / ``deal_rejected`` with
        Salesforce's own message, and the Task is written all the same."""
        return self.writer.write_call(person, activity, updates, links or Links())

    # -- metadata and rollback (crmsync.crm.salesforce_records) -----------------------------
    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields by name, picklist values included (cached per connector)."""
        return self.records.describe(object)

    def check_credentials(self) -> None:
        """One cheap request (``limits/``); ``CredentialsError`` when Salesforce refuses us."""
        self.records.check_credentials()

    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One GET of the record with ``fields``; None when Salesforce no longer has it."""
        return self.records.read_fields(object, record_id, fields)

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """One PATCH of the record; None clears a field."""
        self.records.write_fields(object, record_id, values)

    def delete_activity(self, object: str, record_id: str) -> bool:
        """DELETE the Task; False when Salesforce no longer has it."""
        return self.records.delete_activity(object, record_id)
