"""The connector contract's batch methods, as loops over the one-call methods.

``find_each`` and ``write_each`` are the defaults of ``Connector.find_people_many`` and
``Connector.write_calls`` for a CRM without batch requests, and the fallback that the
batch implementations (``hubspot_batch``, ``salesforce_batch``) use for each item a batch
request did not settle: every item gets exactly the answer the one-call path gives it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from crmsync.crm.base import CallWrite, Connector, Found, Written
from crmsync.errors import SyncError

T = TypeVar("T")


def find_each(
    connector: Connector, numbers: Sequence[str], objects: Sequence[str], fields: Sequence[str]
) -> dict[str, Found]:
    """One ``find_people`` per number; a ``SyncError`` becomes that number's answer."""
    found: dict[str, Found] = {}
    for number in dict.fromkeys(numbers):
        try:
            found[number] = connector.find_people(number, objects, fields)
        except SyncError as err:
            found[number] = err
    return found


def write_each(connector: Connector, writes: Sequence[CallWrite]) -> list[Written]:
    """One ``write_call`` per item; a ``SyncError`` becomes that item's answer."""
    return [write_one(connector, write) for write in writes]


def write_one(connector: Connector, write: CallWrite) -> Written:
    try:
        return connector.write_call(write.person, write.activity, write.updates)
    except SyncError as err:
        return err


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + max(1, size)])


def unique_by(items: Sequence[T], key: Any) -> tuple[list[T], list[T]]:
    """(items whose ``key(item)`` no other item shares, the rest): a batch request may not
    name one record twice."""
    counts: dict[Any, int] = {}
    for item in items:
        counts[key(item)] = counts.get(key(item), 0) + 1
    return [i for i in items if counts[key(i)] == 1], [i for i in items if counts[key(i)] > 1]
