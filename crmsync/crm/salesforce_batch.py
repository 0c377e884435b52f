"""Salesforce's batch requests behind ``Connector.find_people_many`` and ``write_calls``.

Lookup: one SOSL search per 50 numbers, ``FIND {n1 OR e1 OR n2 OR e2 …} IN PHONE
FIELDS`` (each number's national digits and full E.164 digits: the terms ``find_people``
sends for one number), every hit re-checked against each number with ``phones.matches``
and grouped in ``objects`` order, as ``find_people`` does.

Writes, each an sObject Collections request of at most 200 records with ``allOrNone``
false (one API call each, so one unit of ``SALESFORCE_DAILY_BUDGET``): the new Tasks in
one ``POST composite/sobjects``, the Tasks the ledger knows by id in one ``PATCH``, then
the people's fields in one ``PATCH``. A batch of 100 calls whose callers are known costs
3 requests besides the search.

One call, one Task, per call: every new Task is marked ``pending`` in the ledger before
the create is sent and gets its id from its own result. A record Salesforce refused
clears its mark (nothing was created). When the answer is lost, the marks stay and each
call gets the retryable error; its retry takes the one-call path, which finds the Task
by ``CallObject`` (SOQL is immediately consistent) before creating. A call whose mark is
already ``pending`` never joins a batch create.

What a collection does not settle goes through ``write_call`` on its own and gets that
path's answer: a refused Task record, a Task deleted in Salesforce, a person record whose
update failed (``write_call`` retries it without the fields Salesforce named and reports
them), and people named twice in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from phonenumbers import NumberParseException

from crmsync import phones
from crmsync.crm.base import CallWrite, Found, Written
from crmsync.crm.batching import Batch, chunks, write_batched
from crmsync.crm.salesforce_client import CRM, error_from
from crmsync.crm.salesforce_people import check_objects
from crmsync.crm.salesforce_records import is_record
from crmsync.crm.salesforce_task import SALESFORCE, task_fields
from crmsync.errors import PermanentError, SyncError

# ``conn`` (Any) is the SalesforceConnector: its module imports this one, so this one cannot import it
MAX_RECORDS = 200  # records of one sObject Collections request
NUMBERS_PER_SEARCH = 50  # numbers of one SOSL search (two terms each)


def find_many(conn: Any, numbers: Sequence[str], objects: Sequence[str], fields: Any) -> dict[str, Found]:
    """See the module: number -> people, or the error ``find_people`` would raise."""
    found: dict[str, Found] = {}
    valid: list[tuple[str, str]] = []
    for number in dict.fromkeys(numbers):
        try:
            valid.append((number, phones.national_digits(number)))
        except NumberParseException:
            found[number] = PermanentError(CRM, f"{phones.mask(number)} is not an E.164 number", code="INVALID_PHONE")
    if not valid:
        return found
    try:
        check_objects(objects)
        wanted = conn.callers.fields_per_object(objects, fields)
    except SyncError as err:
        return found | {number: err for number, _ in valid}
    order = [o.lower() for o in objects]
    for chunk in chunks(valid, NUMBERS_PER_SEARCH):
        term = " OR ".join(dict.fromkeys(t for number, national in chunk for t in (national, phones.digits(number))))
        try:
            hits = conn.callers.search(term, None, objects, wanted)
        except SyncError as err:
            found.update({number: err for number, _ in chunk})
            continue
        for number, _ in chunk:
            people = [p for p in hits if any(phones.matches(v, number) for v in p.phones.values())]
            people.sort(key=lambda p: order.index(p.object.lower()) if p.object.lower() in order else len(order))
            found[number] = people
    return found


def write_many(conn: Any, writes: Sequence[CallWrite]) -> list[Written]:
    """See the module: one answer per write, in order."""
    return write_batched(conn, writes, MAX_RECORDS, _create_tasks, _update_tasks, _update_people, is_record)


def _create_tasks(conn: Any, batch: Batch, chunk: list[int]) -> None:
    writes = batch.writes

    def send() -> Any:
        records = [
            {"attributes": {"type": "Task"}, **task_fields(writes[i].person, writes[i].activity, create=True)}
            for i in chunk
        ]
        return _request(conn, "POST", records, "log the calls")

    results = _complete(batch, batch.create(conn.ledger, chunk, send), chunk, "log the calls")
    if results is None:
        return
    for i, result in zip(chunk, results, strict=True):
        call_id = writes[i].activity.call_id
        if result.get("success") and result.get("id"):
            conn.ledger.record(call_id, str(result["id"]))
            batch.logged[i] = (str(result["id"]), True)
        elif result.get("success"):  # created, but the answer has no id: a lost answer, pending stays
            batch.answers[i] = error_from(502, None, "log the calls: the answer named no Task id")
        else:
            conn.ledger.clear(call_id)  # Salesforce created nothing for this record
            batch.alone.append(i)


def _update_tasks(conn: Any, batch: Batch, part: list[tuple[int, str]]) -> None:
    writes = batch.writes
    records = [
        {"attributes": {"type": "Task"}, "id": rid, **task_fields(writes[i].person, writes[i].activity, create=False)}
        for i, rid in part
    ]
    results = _collection(conn, batch, records, "update the calls' Tasks", [i for i, _ in part])
    for (i, rid), result in zip(part, results or [], strict=False):
        if result.get("success"):
            batch.logged[i] = (rid, False)
        else:
            batch.alone.append(i)  # deleted in Salesforce, or refused: write_call settles it


def _update_people(conn: Any, batch: Batch) -> None:
    writes = batch.writes
    values = {i: SALESFORCE.wire_values(dict(writes[i].updates)) for i in batch.logged}
    once, twice = batch.people(values)
    batch.alone += twice  # the Task is known now: write_call updates it and the person together
    for part in chunks(once, MAX_RECORDS):
        records = [
            {"attributes": {"type": writes[i].person.object}, "id": writes[i].person.id, **values[i]} for i in part
        ]
        results = _collection(conn, batch, records, "update the callers", part)
        for i, result in zip(part, results or [], strict=False):
            if result.get("success"):
                batch.done(i, dict(values[i]), {})
            else:
                batch.alone.append(i)  # write_call drops the fields Salesforce named and reports them


def _collection(
    conn: Any, batch: Batch, records: list[dict[str, Any]], what: str, items: list[int]
) -> list[dict[str, Any]] | None:
    """One sObject Collections ``PATCH``; None (and every item settled) when it failed whole."""
    return _complete(batch, batch.send(items, lambda: _request(conn, "PATCH", records, what)), items, what)


def _request(conn: Any, method: str, records: list[dict[str, Any]], what: str) -> Any:
    return conn.client.call(
        what,
        lambda sf: sf.restful("composite/sobjects", method=method, json={"allOrNone": False, "records": records}),
    )


def _complete(batch: Batch, results: Any, items: list[int], what: str) -> list[dict[str, Any]] | None:
    """``results``, one per item; None when the request failed whole (its items are settled
    already) or its answer was not one result per item (each item gets a retryable error)."""
    if isinstance(results, SyncError):
        return None
    if not isinstance(results, list) or len(results) != len(items):
        batch.answers.update(dict.fromkeys(items, error_from(502, None, f"{what}: the answer was incomplete")))
        return None
    return results
