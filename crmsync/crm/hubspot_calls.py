"""HubSpot's profile and what a HubSpot call engagement says.

``HUBSPOT`` is the profile (``crmsync.crm.base.Profile``): contacts, ``hubspot_owner_id``, calls
with an HTML body, property values as strings (``wire``). ``call_properties`` turns an
``Activity`` into the ``hs_call_*`` properties of ``POST /crm/v3/objects/calls``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

from crmsync.crm.base import Activity, Person, Profile
from crmsync.crm.ui import hubspot_record_url
from crmsync.times import epoch_ms

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
OBJECTS = {
    "contact": "contacts",
    "contacts": "contacts",
    "call": "calls",
    "calls": "calls",
    "deal": "deals",
    "deals": "deals",
}
COMPANY_PROPERTY = "associatedcompanyid"  # the contact's primary company (hubspot_links.COMPANY_PROPERTY)
CALL_TO_CONTACT = 194  # HUBSPOT_DEFINED association type id, call -> contact
STATUSES = {
    "completed": "COMPLETED",
    "no_answer": "NO_ANSWER",
    "busy": "BUSY",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "cancelled": "CANCELED",
    "terminated": "CANCELED",
    "missed": "MISSED",
    "in_progress": "IN_PROGRESS",
    "ringing": "RINGING",
    "queued": "QUEUED",
}


BODY_MAX = 65_536  # characters: hs_call_body


def wire(value: Any) -> str:
    """A property value as HubSpot wants it: a string ("" clears); booleans ``true``/``false``,
    dates and datetimes as epoch milliseconds (a date at midnight UTC)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return str(epoch_ms(value))
    if isinstance(value, date):
        return str(epoch_ms(datetime.combine(value, clock(), UTC)))
    return str(value)


HUBSPOT = Profile(
    name="hubspot",
    match_objects=("contact",),
    create_objects=("contact",),
    owner_field="hubspot_owner_id",
    activity_object="call",
    body_format="html",
    body_limit=BODY_MAX,
    title_limit=None,
    disposition_limit=None,
    wire=wire,
    record_url=hubspot_record_url,
)


def call_properties(activity: Activity, person: Person) -> dict[str, str]:
    """The call's ``hs_*`` properties; only an https recording URL and a GUID disposition
    are sent (HubSpot refuses others), and the owner defaults to the person's."""
    props: dict[str, str] = {
        "hs_timestamp": activity.timestamp,
        "hs_call_title": activity.title,
        "hs_call_body": activity.body,
        "hs_call_external_id": activity.call_id,
    }
    if activity.duration_seconds is not None:
        props["hs_call_duration"] = str(int(round(activity.duration_seconds * 1000)))
    direction = (activity.direction or "").lower()
    if direction in ("inbound", "outbound"):
        props["hs_call_direction"] = direction.upper()
    if activity.status:
        status = STATUSES.get(activity.status.lower())
        if status:
            props["hs_call_status"] = status
    # Activity.from/to are the call's own ends (inbound: customer -> agent; outbound:
    # agent -> customer), which is how HubSpot reads hs_call_from/to_number.
    if activity.from_number:
        props["hs_call_from_number"] = activity.from_number
    if activity.to_number:
        props["hs_call_to_number"] = activity.to_number
    if activity.recording_url and activity.recording_url.lower().startswith("https://"):
        props["hs_call_recording_url"] = activity.recording_url
    if activity.disposition and GUID.match(activity.disposition):
        props["hs_call_disposition"] = activity.disposition
    owner = activity.owner_id or person.owner_id
    if owner:
        props["hubspot_owner_id"] = str(owner)
    props.update({k: wire(v) for k, v in activity.properties.items()})
    return props


def person_from(pid: str, props: Mapping[str, Any], fields: Sequence[str], *, created: bool = False) -> Person:
    """A contact as the search or read answered it (``props``: its properties)."""
    return Person(
        object="contact",
        id=str(pid),
        phones={"phone": props.get("phone"), "mobilephone": props.get("mobilephone")},
        modified_at=props.get("lastmodifieddate"),
        owner_id=props.get("hubspot_owner_id") or None,
        values={name: props.get(name) for name in fields},
        created=created,
        company_id=props.get(COMPANY_PROPERTY) or None,
    )
