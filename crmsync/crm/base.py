"""The connector contract: what the pipeline may ask of a CRM.

The pipeline sees only these types and ``crmsync.errors``; Salesforce and HubSpot differ
behind them. Object names are the CRM's own: ``contact`` for HubSpot, ``Contact`` and
``Lead`` for Salesforce. Field values arrive typed (``str``, ``int``/``float``, ``bool``,
``date``, ``datetime``, as the mapping engine planned them); each connector writes them in
its CRM's wire form (``profile.wire``). ``Person.values`` and ``WriteResult.written`` hold
wire-form values, as the CRM stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

from crmsync.crm.text import truncate
from crmsync.errors import SyncError


@dataclass
class Person:
    """A contact or lead as found in the CRM."""

    object: str  # "contact" | "Contact" | "Lead"
    id: str
    phones: dict[str, str | None]  # phone field name -> value as stored
    modified_at: str | None = None  # ISO 8601, for on_multiple: most_recent
    owner_id: str | None = None  # Salesforce OwnerId, HubSpot hubspot_owner_id
    values: dict[str, Any] = field(default_factory=dict)  # current values of the fields asked for
    created: bool = False  # True when crmsync created it for this call
    company_id: str | None = None  # HubSpot primary company (associatedcompanyid) / Salesforce Contact AccountId

    def to_dict(self) -> dict[str, Any]:
        return {
            "company_id": self.company_id,
            "type": self.object,
            "id": self.id,
            "created": self.created,
            "owner_id": self.owner_id,
            "modified_at": self.modified_at,
        }


@dataclass
class Activity:
    """The call log to upsert on a person, keyed by the external call id."""

    call_id: str
    title: str
    body: str
    timestamp: str  # ISO 8601 UTC: when the call ended (or the event time)
    direction: str | None = None  # "inbound" | "outbound"
    duration_seconds: int | None = None
    status: str | None = None  # canonical: completed, no_answer, busy, failed, ...
    disposition: str | None = None  # HubSpot GUID / Salesforce CallDisposition text
    from_number: str | None = None
    to_number: str | None = None
    recording_url: str | None = None
    owner_id: str | None = None  # defaults to the person's owner
    properties: dict[str, Any] = field(default_factory=dict)  # extra activity fields from the mapping


@dataclass
class Deal:
    """The person's open deal (HubSpot deal, Salesforce Opportunity) that the call is linked to."""

    id: str
    values: dict[str, Any] = field(default_factory=dict)  # current values of the fields asked for (wire form)
    modified_at: str | None = None


@dataclass
class FollowUp:
    """A task for the rep, created once per call (the ledger's ``follow_up`` kind, by call id)."""

    call_id: str
    title: str
    body: str
    due: date | datetime  # a date (Salesforce ActivityDate; HubSpot: that day, 09:00 UTC) or a moment
    priority: str = "normal"  # low | normal | high
    owner_id: str | None = None  # None: the person's owner


@dataclass
class Links:
    """What ``write_call`` attaches besides the person: the company (``link.company``), the
    deal and the values planned for it, and the follow-up task. Empty: none of it (and no
    extra request)."""

    company: bool = False  # associate the activity with ``person.company_id``
    deal: Deal | None = None
    deal_updates: dict[str, Any] = field(default_factory=dict)  # typed values, as for the person
    follow_up: FollowUp | None = None


@dataclass
class WriteResult:
    """What ``write_call`` did."""

    activity_id: str
    activity_created: bool  # False when an earlier attempt had already created it
    written: dict[str, Any] = field(default_factory=dict)  # field -> value the CRM accepted
    rejected: dict[str, str] = field(default_factory=dict)  # field -> the CRM's own reason
    deal_written: dict[str, Any] = field(default_factory=dict)  # deal field -> value the CRM accepted
    deal_rejected: dict[str, str] = field(default_factory=dict)
    follow_up_id: str | None = None  # the follow-up task (created now or by an earlier attempt)
    linked: dict[str, str] = field(default_factory=dict)  # "company" / "deal" -> the id the activity is on


@dataclass
class CallWrite:
    """One call's write inside a batch: what ``write_call`` takes."""

    person: Person
    activity: Activity
    updates: Mapping[str, Any]


# One answer per item of a batch: what the one-call method would have returned, or the
# crmsync error it would have raised (``RetryableError``, ``RateLimited``, ``PermanentError``).
Found = list[Person] | SyncError
Written = WriteResult | SyncError


@dataclass
class FieldInfo:
    """A CRM field, as ``describe`` reports it (for ``mappings check --remote``)."""

    name: str
    type: str  # the CRM's own type name: string, number, enumeration, picklist, phone, date, ...
    label: str = ""
    options: list[str] | None = None  # allowed values of a picklist / enumeration
    updateable: bool = True


@dataclass(frozen=True)
class Profile:
    """What a CRM is, as the mapping layer needs to know it (``crmsync.crm.profiles`` has one
    per CRM; the connector's ``profile`` is the same one): the objects a mapping may match
    and create (``match_objects[0]`` is the default of ``match.objects``), the owner field,
    the activity object, how the call's activity is shaped (body format and length limits),
    and ``wire``: a typed value the mapping engine planned (``str``, ``int``/``float``,
    ``bool``, ``date``, ``datetime``) in the CRM's wire form. The admin console reads
    ``record_url`` (links into the CRM's UI) and ``budget_alarm``."""

    name: str
    match_objects: tuple[str, ...]  # objects found by phone (and named by fields[].object)
    create_objects: tuple[str, ...]  # objects match.create.object may name
    owner_field: str  # the person's and the activity's owner property
    activity_object: str  # the object a call is logged as (describe'd for activity.properties)
    body_format: str  # "html" | "text": what the activity body field renders
    body_limit: int  # characters the activity body field holds
    title_limit: int | None  # characters of the activity title, None: no limit
    disposition_limit: int | None  # characters of a free-text disposition, None: no limit
    wire: Callable[[Any], Any]  # typed value -> the CRM's wire form
    deal_object: str = "deal"  # the object fields[].object names to write onto the linked deal
    follow_up_object: str = "task"  # the object a follow-up is created as (audit, rollback)
    # (settings, object, id) -> the record's address in the CRM's own web UI, or None (crmsync.crm.ui)
    record_url: Callable[[Any, str, str], str | None] = lambda settings, object, record_id: None
    # redis -> a plain-words alarm when the CRM's daily API allowance is nearly spent, or None
    budget_alarm: Callable[[Any], str | None] = lambda redis: None

    @property
    def html(self) -> bool:
        return self.body_format == "html"

    def fit_activity(self, activity: Activity) -> Activity:
        """``activity`` with title, disposition and body cut to this CRM's limits (the body at a
        line boundary, with a marker); idempotent."""
        title, disposition = activity.title, activity.disposition
        if self.title_limit is not None:
            title = title[: self.title_limit]
        if disposition is not None and self.disposition_limit is not None:
            disposition = disposition[: self.disposition_limit]
        body = truncate(activity.body, self.body_limit, html=self.html)
        return replace(activity, title=title, disposition=disposition, body=body)

    def wire_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Every value of ``values`` in the wire form."""
        return {name: self.wire(value) for name, value in values.items()}


class Connector(Protocol):
    """One CRM. Built once per worker process; safe to reuse for every call.

    Every method raises only ``crmsync.errors`` types: ``RetryableError`` (and
    ``RateLimited``), ``PermanentError``, ``CredentialsError``.
    """

    name: str  # "salesforce" | "hubspot"
    profile: Profile  # objects, owner field, activity shape and wire form (crmsync.crm.profiles)
    batch_size: int  # calls one batch request may carry (the CRM's per-request maximum; 1: no batch API)

    def find_people(self, e164: str, objects: Sequence[str], fields: Sequence[str]) -> list[Person]:
        """Every person in ``objects`` whose stored phone matches ``e164`` (SPEC §5 rule),
        in ``objects`` order, each with the current values of ``fields``."""
        ...

    def create_person(self, object: str, properties: Mapping[str, Any], fields: Sequence[str]) -> Person:
        """Create a person; the returned ``Person`` has ``created=True``."""
        ...

    def create_with_call(
        self,
        object: str,
        properties: Mapping[str, Any],
        fields: Sequence[str],
        activity: Activity,
        follow_up: FollowUp | None = None,
    ) -> tuple[Person, WriteResult] | None:
        """Create the person and log the call on it together, when the CRM can do both in one
        request and no earlier attempt may have done either; else None, and the caller uses
        ``create_person`` then ``write_call`` (the default for a CRM that cannot)."""
        ...

    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """The person's open deal modified last (``link.deal: most_recent_open``) with the
        current values of ``fields``, or None (a Lead, no company, no open deal)."""
        ...

    def write_call(
        self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links | None = None
    ) -> WriteResult:
        """Upsert the activity (at most one per ``activity.call_id``, ever) and write
        ``updates`` onto the person; with ``links``, attach the activity to the company and
        deal, write ``links.deal_updates`` onto the deal and create the follow-up (at most
        one per call, ever). Fields the CRM refuses are reported in ``WriteResult.rejected``
        (``deal_rejected``) while the activity and the other fields are still written."""
        ...

    def find_people_many(
        self, numbers: Sequence[str], objects: Sequence[str], fields: Sequence[str]
    ) -> dict[str, Found]:
        """``find_people`` for each of ``numbers`` (E.164) in as few requests as the CRM
        allows: number -> what ``find_people`` would have returned for it, or the error it
        would have raised. The same matching rule as ``find_people`` (SPEC §5). A
        ``CredentialsError`` is raised for the whole batch. ``crmsync.crm.batching.find_each``
        is the default: one ``find_people`` per number."""
        ...

    def write_calls(self, writes: Sequence[CallWrite]) -> list[Written]:
        """``write_call`` for each item, in batch requests where the CRM has them: one answer
        per item, in order, each what ``write_call`` would have returned or raised for it.
        Every guarantee of ``write_call`` holds per item (at most one activity per call id,
        refused fields reported per item); an item a batch request did not settle (refused,
        partly failed, an earlier answer lost) goes through ``write_call`` on its own. A
        ``CredentialsError`` is raised for the whole batch. ``crmsync.crm.batching.write_each``
        is the default: one ``write_call`` per item."""
        ...

    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields by name."""
        ...

    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """The record's current values of ``fields`` in the CRM's wire form (as ``WriteResult.written``
        holds them), or None when the record no longer exists (rollback reads before it writes)."""
        ...

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """Write wire-form ``values`` onto the record as they are (None or "" clears a field)."""
        ...

    def delete_activity(self, object: str, record_id: str) -> bool:
        """Delete an activity or follow-up task crmsync created; False when it was gone already."""
        ...

    def check_credentials(self) -> None:
        """One cheap request; raises ``CredentialsError`` when the CRM refuses us."""
        ...

    def close(self) -> None:
        """Close the connector's HTTP connections."""
        ...
