"""The HubSpot connector: contacts found by phone, calls logged as engagements.

A synced call costs three requests: one contact search (every stored form of the number
ORed in one request), one call create (or update), one contact update. Every request
first takes room in the shared limits in Redis (``hubspot:general``, e.g. 100/10 s, and
``hubspot:search``, e.g. 4/s; searches are exempt from HubSpot's 10-second limit, so
they take only the search limit), so all workers together wait before HubSpot refuses.

One call, one activity; one caller, one contact: the in-flight ledger
(``crmsync.crm.ledger``) records, for calls by call id and for contacts by phone, a create
in flight (``pending`` and when it was sent) and then the id HubSpot answered. When an
earlier create's answer was lost, a call is searched by ``hs_call_external_id`` before
creating (a contact was searched by the pipeline just before). HubSpot's search index lags
behind writes, so "not found" is trusted only once the lost create is older than
``index_lag`` seconds; before that the connector raises ``RetryableError`` and the worker
comes back later, which costs a delay but never a duplicate.

``HubSpotConnector`` is the façade; each concern is a module of its own over one
``HubSpotClient`` (``hubspot_client``: the API objects, shared limits, errors):

    hubspot_people.py    the contact search by phone and the contact create
    hubspot_writer.py    the call: engagement, contact and deal fields, follow-up task
    hubspot_records.py   describe, the credentials check, the rollback's requests
    hubspot_batch.py     the batch requests (find_people_many, write_calls)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis import Redis

from crmsync.crm import hubspot_batch
from crmsync.crm.base import Activity, CallWrite, Deal, FieldInfo, FollowUp, Found, Links, Person, WriteResult, Written
from crmsync.crm.hubspot_calls import HUBSPOT
from crmsync.crm.hubspot_client import INDEX_LAG, HubSpotClient
from crmsync.crm.hubspot_errors import CRM
from crmsync.crm.hubspot_people import HubSpotPeople
from crmsync.crm.hubspot_records import HubSpotRecords
from crmsync.crm.hubspot_writer import HubSpotWriter
from crmsync.crm.ledger import Ledger
from crmsync.metrics import Metrics
from crmsync.sub_settings import HubSpotSettings


class HubSpotConnector:
    """``crmsync.crm.base.Connector`` for HubSpot. Build one per worker process."""

    name = CRM
    profile = HUBSPOT
    batch_size = hubspot_batch.MAX_INPUTS

    def __init__(
        self,
        settings: HubSpotSettings,
        redis: Redis,
        *,
        timeout: float | tuple[float, float] = (3.05, 20),
        metrics: Metrics | None = None,
        index_lag: float = INDEX_LAG,
        max_wait: float = 30.0,
    ) -> None:
        self.client = HubSpotClient(
            settings,
            redis,
            timeout=timeout,
            metrics=metrics if metrics is not None else Metrics(redis),
            index_lag=index_lag,
            max_wait=max_wait,
        )
        self.ledger = Ledger(redis, CRM, "activity")
        self.callers = HubSpotPeople(self.client, Ledger(redis, CRM, "person"))
        self.writer = HubSpotWriter(self.client, activities=self.ledger, follow_ups=Ledger(redis, CRM, "follow_up"))
        self.records = HubSpotRecords(self.client)

    def close(self) -> None:
        """Close the connection pools (tests; a worker keeps the connector for its life)."""
        self.client.close()

    # -- people (crmsync.crm.hubspot_people) ---------------------------------------------
    def find_people(self, e164: str, objects: Sequence[str] = ("contact",), fields: Sequence[str] = ()) -> list[Person]:
        """Every contact whose ``phone`` or ``mobilephone`` is the caller's number, in one
        search ORing the number's stored forms, each hit re-checked by ``phones.matches``."""
        return self.callers.find(e164, objects, fields)

    def create_person(self, object: str, properties: Mapping[str, Any], fields: Sequence[str] = ()) -> Person:
        """Create a contact. The ledger keys it by phone (``person_name``): a create whose
        answer was lost is not repeated blindly (within ``index_lag`` the call waits for the
        search index, which the pipeline searched just before), and a contact the ledger
        already knows is read back instead of created again."""
        return self.callers.create(object, properties, fields)

    def create_with_call(
        self,
        object: str,
        properties: Mapping[str, Any],
        fields: Sequence[str],
        activity: Activity,
        follow_up: FollowUp | None = None,
    ) -> tuple[Person, WriteResult] | None:
        """HubSpot has no request that creates a contact and a call together: always None
        (the caller uses ``create_person`` and ``write_call``)."""
        return None

    # -- calls (crmsync.crm.hubspot_writer) ----------------------------------------------
    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """The contact's open deal modified last (one deal search), with ``fields``."""
        return self.writer.find_deal(person, fields)

    def write_call(
        self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links | None = None
    ) -> WriteResult:
        """Upsert the call engagement on the contact (created with its company and deal
        associations), write ``updates`` on the contact and ``links.deal_updates`` on the deal,
        then create the follow-up task; properties HubSpot refuses are retried without and
        reported in ``rejected`` / ``deal_rejected``."""
        return self.writer.write_call(person, activity, updates, links or Links())

    # -- batches (crmsync.crm.hubspot_batch) ---------------------------------------------
    def find_people_many(
        self, numbers: Sequence[str], objects: Sequence[str] = ("contact",), fields: Sequence[str] = ()
    ) -> dict[str, Found]:
        """``find_people`` for many numbers: one ``IN`` search per 50 (``hubspot_batch``)."""
        return hubspot_batch.find_many(self, numbers, objects, fields)

    def write_calls(self, writes: Sequence[CallWrite]) -> list[Written]:
        """``write_call`` for many calls in batch requests of 100 (``hubspot_batch``)."""
        return hubspot_batch.write_many(self, writes)

    # -- metadata and rollback (crmsync.crm.hubspot_records) -----------------------------
    def describe(self, object: str) -> dict[str, FieldInfo]:
        return self.records.describe(object)

    def check_credentials(self) -> None:
        self.records.check_credentials()

    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One GET of the record's ``fields`` (strings, as HubSpot stores them); None on 404."""
        return self.records.read_fields(object, record_id, fields)

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """One PATCH; None clears the property (HubSpot's empty string)."""
        self.records.write_fields(object, record_id, values)

    def delete_activity(self, object: str, record_id: str) -> bool:
        """Archive the call (or task) engagement; False when HubSpot no longer has it."""
        return self.records.delete_activity(object, record_id)
