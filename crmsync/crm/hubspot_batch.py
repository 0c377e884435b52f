"""HubSpot's batch requests behind ``Connector.find_people_many`` and ``write_calls``.

Lookup: one contact search per 50 numbers, ``IN`` filters ORed in four groups (``phone``
and ``mobilephone`` IN the E.164 forms; both ``hs_searchable_calculated_*`` IN the national
digits and the full digits, which is how a number stored with its country code but no
``+`` is indexed), at most 100 values per filter. Every hit is re-checked with
``phones.matches``, as in ``find_people``. A number the batch search finds nothing for
goes through ``find_people`` itself, whose ``CONTAINS_TOKEN`` filters match stored forms
no ``IN`` value can: a lookup in a batch finds what the one-call lookup finds.

Writes (100 inputs per request, HubSpot's maximum): calls the ledger has never seen are
created in one ``calls/batch/create``; calls it knows by id are updated in one
``calls/batch/update``; then the contacts' fields go in one ``contacts/batch/update``.

One call, one activity, per call: every call of a batch create is marked ``pending`` in
the ledger before the request is sent, and gets its id from the answer (matched by
``hs_call_external_id``). When the answer is lost (a timeout, a 502 after HubSpot
committed), every call of the batch keeps its ``pending`` mark and gets the batch's
retryable error; its own retry then takes the one-call path, which searches the call by
``hs_call_external_id`` before creating (and trusts "not found" only past the search
index lag), so no call is created twice. A call whose ledger entry is already ``pending``
never joins a batch create.

What a batch request does not settle goes through ``write_call`` on its own and gets that
path's answer: a batch HubSpot refuses (4xx: one invalid input refuses all of them, and
nothing was created), records a 207 leaves out of its results, contacts named twice in one batch, and
contact fields HubSpot refuses (``write_call`` drops and reports them per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import phonenumbers

from crmsync import phones
from crmsync.crm import hubspot_links as links_
from crmsync.crm.base import CallWrite, Found, Person, Written
from crmsync.crm.batching import Batch, chunks, find_each, write_batched
from crmsync.crm.hubspot_calls import OBJECTS, call_properties, person_from, wire
from crmsync.crm.hubspot_errors import CRM
from crmsync.crm.hubspot_people import contact_properties, has_number, search_contacts
from crmsync.errors import PermanentError, RetryableError, SyncError

# ``conn`` (Any) is the HubSpotConnector: its module imports this one, so this one cannot import it
MAX_INPUTS = 100  # inputs of one batch create / update
MAX_IN_VALUES = 100  # values of one IN filter
NUMBERS_PER_SEARCH = MAX_IN_VALUES // 2  # the searchable fields take two values per number
MAX_SEARCH_PAGES = 10  # pages of 200 followed for one batch search


def find_many(conn: Any, numbers: Sequence[str], objects: Sequence[str], fields: Sequence[str]) -> dict[str, Found]:
    """See the module: number -> contacts, or the error ``find_people`` would raise."""
    found: dict[str, Found] = {}
    bad = next((o for o in objects if OBJECTS.get(o.lower()) != "contacts"), None)
    valid: list[tuple[str, str]] = []
    for number in dict.fromkeys(numbers):
        if bad is not None:
            found[number] = PermanentError(CRM, f"object {bad!r} cannot be matched by phone in HubSpot: use contact")
            continue
        try:
            valid.append((number, phones.national_digits(number)))
        except phonenumbers.NumberParseException:
            found[number] = PermanentError(CRM, "the caller's number is not E.164 (+ and country code)")
    wanted = contact_properties(fields)
    for chunk in chunks(valid, NUMBERS_PER_SEARCH):
        try:
            hits = _search(conn, chunk, wanted)
        except SyncError as err:
            found.update({number: err for number, _ in chunk})
            continue
        for number, _ in chunk:
            people: list[Person] = []
            for hit in hits:
                props = hit.properties or {}
                if has_number(props, number):
                    people.append(person_from(hit.id, props, fields))
            if people:
                found[number] = people
    rest = [number for number, _ in valid if number not in found]
    found.update(find_each(conn, rest, objects, fields))
    return found


def _search(conn: Any, chunk: list[tuple[str, str]], wanted: list[str]) -> list[Any]:
    e164s = [number for number, _ in chunk]
    digits = list(dict.fromkeys(d for number, national in chunk for d in (national, phones.digits(number))))
    groups = [
        {"filters": [{"propertyName": name, "operator": "IN", "values": values}]}
        for name, values in (
            ("phone", e164s),
            ("mobilephone", e164s),
            ("hs_searchable_calculated_phone_number", digits),
            ("hs_searchable_calculated_mobile_number", digits),
        )
    ]
    return search_contacts(conn.client, groups, wanted, limit=200, pages=MAX_SEARCH_PAGES)


def write_many(conn: Any, writes: Sequence[CallWrite]) -> list[Written]:
    """See the module: one answer per write, in order."""
    return write_batched(conn, writes, MAX_INPUTS, _create_calls, _update_calls, _update_contacts)


def _create_calls(conn: Any, batch: Batch, chunk: list[int]) -> None:
    writes = batch.writes

    def send() -> Any:
        inputs = [
            {
                "properties": call_properties(writes[i].activity, writes[i].person),
                "associations": links_.associations([(writes[i].person.id, links_.CALL_TO_CONTACT)]),
            }
            for i in chunk
        ]
        return conn.client.send(conn.client.calls_batch.create_with_http_info, {"inputs": inputs})

    result = batch.create(conn.ledger, chunk, send)
    if isinstance(result, SyncError):
        return
    by_call = {str((r.properties or {}).get("hs_call_external_id")): str(r.id) for r in result.results or []}
    for i in chunk:
        call_id = writes[i].activity.call_id
        created = by_call.get(call_id)
        if created is None:  # not in the answer: it may exist; pending stays, the retry looks first
            batch.answers[i] = RetryableError(CRM, "HubSpot's batch create answer did not name this call", status=502)
        else:
            conn.ledger.record(call_id, created)
            batch.logged[i] = (created, True)


def _update_calls(conn: Any, batch: Batch, part: list[tuple[int, str]]) -> None:
    writes = batch.writes
    inputs = [{"id": rid, "properties": call_properties(writes[i].activity, writes[i].person)} for i, rid in part]
    result = batch.send(
        [i for i, _ in part],
        lambda: conn.client.send(conn.client.calls_batch.update_with_http_info, {"inputs": inputs}),
    )
    if isinstance(result, SyncError):
        return
    updated = _updated_ids(result)
    for i, rid in part:
        if rid in updated:
            batch.logged[i] = (rid, False)
        else:
            batch.alone.append(i)  # a 207 left it out (deleted in HubSpot?): write_call settles it


def _update_contacts(conn: Any, batch: Batch) -> None:
    """The contacts' fields of every call whose activity is logged; the call's answer."""
    writes = batch.writes
    values = {i: {k: wire(v) for k, v in writes[i].updates.items()} for i in batch.logged}
    once, twice = batch.people(values)
    for i in twice:  # one contact named twice in a batch: one request each, in order
        _contact_alone(conn, batch, i, values[i])
    for part in chunks(once, MAX_INPUTS):
        inputs = [{"id": writes[i].person.id, "properties": values[i]} for i in part]
        try:
            result = conn.client.send(conn.client.contacts_batch.update_with_http_info, {"inputs": inputs})
        except SyncError as err:
            if err.status != 400:
                batch.answers.update(dict.fromkeys(part, err))
                continue
            result = None  # a refused field refuses the whole batch: each contact on its own
        updated = _updated_ids(result) if result is not None else set()
        for i in part:
            if writes[i].person.id in updated:
                batch.done(i, dict(values[i]), {})
            else:  # refused with the rest, or left out of a 207: on its own
                _contact_alone(conn, batch, i, values[i])


def _contact_alone(conn: Any, batch: Batch, i: int, values: dict[str, str]) -> None:
    """The contact update of ``write_call``: refused fields dropped and reported."""
    try:
        written, rejected = conn.writer.update(conn.client.contacts, batch.writes[i].person.id, values)
    except SyncError as err:
        batch.answers[i] = err
        return
    batch.done(i, written, rejected)


def _updated_ids(result: Any) -> set[str]:
    """The records a batch update's answer says it updated (a 207 names the rest in its
    errors, for whatever reason: only what ``results`` holds counts as done)."""
    return {str(r.id) for r in getattr(result, "results", None) or []}
