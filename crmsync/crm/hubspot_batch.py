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
nothing was created), ids a 207 reports missing, contacts named twice in one batch, and
contact fields HubSpot refuses (``write_call`` drops and reports them per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import phonenumbers

from crmsync import phones
from crmsync.crm import hubspot_links as links_
from crmsync.crm.base import CallWrite, Found, Person, WriteResult, Written
from crmsync.crm.batching import chunks, create_marked, find_each, settle_alone, sort_by_ledger, unique_by, unsettled
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
    answers: dict[int, Written] = {}
    logged: dict[int, tuple[str, bool]] = {}  # index -> (call id in HubSpot, created now)
    fresh, known, alone = sort_by_ledger(writes, conn.ledger)  # alone: settled by write_call on its own
    for chunk in chunks(fresh, MAX_INPUTS):
        _create_calls(conn, writes, chunk, logged, answers, alone)
    for part in chunks(known, MAX_INPUTS):
        _update_calls(conn, writes, part, logged, answers, alone)
    _update_contacts(conn, writes, logged, answers, alone)
    return settle_alone(conn, writes, answers, alone)


def _create_calls(
    conn: Any,
    writes: Sequence[CallWrite],
    chunk: list[int],
    logged: dict[int, tuple[str, bool]],
    answers: dict[int, Written],
    alone: list[int],
) -> None:
    def send() -> Any:
        inputs = [
            {
                "properties": call_properties(writes[i].activity, writes[i].person),
                "associations": links_.associations([(writes[i].person.id, links_.CALL_TO_CONTACT)]),
            }
            for i in chunk
        ]
        return conn.client.send(conn.client.calls_batch.create_with_http_info, {"inputs": inputs})

    result = create_marked(conn.ledger, [writes[i].activity.call_id for i in chunk], send)
    if isinstance(result, SyncError):
        # refused whole: each call on its own; else the answer may be lost after HubSpot
        # created them: pending stays, and each call's retry looks before creating
        unsettled(result, chunk, answers, alone)
        return
    by_call = {str((r.properties or {}).get("hs_call_external_id")): str(r.id) for r in result.results or []}
    for i in chunk:
        call_id = writes[i].activity.call_id
        created = by_call.get(call_id)
        if created is None:  # not in the answer: it may exist; pending stays, the retry looks first
            answers[i] = RetryableError(CRM, "HubSpot's batch create answer did not name this call", status=502)
        else:
            conn.ledger.record(call_id, created)
            logged[i] = (created, True)


def _update_calls(
    conn: Any,
    writes: Sequence[CallWrite],
    part: list[tuple[int, str]],
    logged: dict[int, tuple[str, bool]],
    answers: dict[int, Written],
    alone: list[int],
) -> None:
    inputs = [{"id": rid, "properties": call_properties(writes[i].activity, writes[i].person)} for i, rid in part]
    try:
        result = conn.client.send(conn.client.calls_batch.update_with_http_info, {"inputs": inputs})
    except SyncError as err:
        unsettled(err, [i for i, _ in part], answers, alone)
        return
    missing = _missing_ids(result)
    for i, rid in part:
        if rid in missing:
            alone.append(i)  # deleted in HubSpot: write_call logs it again
        else:
            logged[i] = (rid, False)


def _update_contacts(
    conn: Any,
    writes: Sequence[CallWrite],
    logged: dict[int, tuple[str, bool]],
    answers: dict[int, Written],
    alone: list[int],
) -> None:
    """The contacts' fields of every call whose activity is logged; the call's answer."""
    values = {i: {k: wire(v) for k, v in writes[i].updates.items()} for i in logged}
    for i in [i for i in logged if not values[i]]:
        answers[i] = WriteResult(logged[i][0], logged[i][1])
    pending = [i for i in logged if values[i]]
    once, twice = unique_by(pending, lambda i: writes[i].person.id)
    for i in twice:  # one contact named twice in a batch: one request each, in order
        answers[i] = _contact_alone(conn, writes[i], logged[i], values[i])
    for part in chunks(once, MAX_INPUTS):
        inputs = [{"id": writes[i].person.id, "properties": values[i]} for i in part]
        try:
            result = conn.client.send(conn.client.contacts_batch.update_with_http_info, {"inputs": inputs})
        except SyncError as err:
            if err.status != 400:
                answers.update(dict.fromkeys(part, err))
                continue
            result = None  # a refused field refuses the whole batch: each contact on its own
        missing = _missing_ids(result) if result is not None else set()
        for i in part:
            if result is None or writes[i].person.id in missing:
                answers[i] = _contact_alone(conn, writes[i], logged[i], values[i])
            else:
                answers[i] = WriteResult(logged[i][0], logged[i][1], dict(values[i]), {})


def _contact_alone(conn: Any, write: CallWrite, logged: tuple[str, bool], values: dict[str, str]) -> Written:
    """The contact update of ``write_call``: refused fields dropped and reported."""
    try:
        written, rejected = conn.writer.update(conn.client.contacts, write.person.id, values)
    except SyncError as err:
        return err
    return WriteResult(logged[0], logged[1], written, rejected)


def _missing_ids(result: Any) -> set[str]:
    """The ids a 207 answer reports not found."""
    missing: set[str] = set()
    for error in getattr(result, "errors", None) or []:
        context = getattr(error, "context", None) or {}
        missing.update(str(i) for i in context.get("ids") or [])
    return missing
