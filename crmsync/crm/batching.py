"""The connector contract's batch methods, as loops over the one-call methods, and what
the batch implementations (``hubspot_batch``, ``salesforce_batch``) share.

``find_each`` and ``write_each`` are the defaults of ``Connector.find_people_many`` and
``Connector.write_calls`` for a CRM without batch requests, and the fallback that the
batch implementations use for each item a batch request did not settle: every item gets
exactly the answer the one-call path gives it.

A batch ``write_calls`` sorts its items by what the in-flight ledger knows of their call
(``sort_by_ledger``), sends the new activities in batch creates, each call marked
``pending`` first (``create_marked``), then the known ones and the people's fields in batch
updates; an item a request did not settle (``unsettled``) goes through ``write_call`` on
its own at the end (``settle_alone``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from crmsync.crm.base import CallWrite, Connector, Found, Person, Written
from crmsync.crm.ledger import Ledger
from crmsync.errors import CredentialsError, RateLimited, SyncError

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


def sort_by_ledger(
    writes: Sequence[CallWrite], ledger: Ledger, writable: Callable[[Person], bool] = lambda person: True
) -> tuple[list[int], list[tuple[int, str]], list[int]]:
    """The indexes of ``writes`` as (calls the ledger has never seen, (index, activity id) of
    calls it knows, the rest). The rest go through ``write_call`` on their own: calls named
    twice in the batch, people ``writable`` refuses (``write_call`` gives its own refusal),
    and calls whose earlier create got no answer (``write_call`` looks first)."""
    fresh: list[int] = []
    known: list[tuple[int, str]] = []
    once, alone = unique_by(list(range(len(writes))), lambda i: writes[i].activity.call_id)
    for i in once:
        if not writable(writes[i].person):
            alone.append(i)
            continue
        entry = ledger.get(writes[i].activity.call_id)
        if entry is None:
            fresh.append(i)
        elif entry.id:
            known.append((i, entry.id))
        else:
            alone.append(i)
    return fresh, known, alone


def create_marked(ledger: Ledger, call_ids: Sequence[str], send: Callable[[], T]) -> T | SyncError:
    """``send()`` one batch create of the activities of ``call_ids``, each marked ``pending``
    in ``ledger`` first. When it fails, the ``SyncError`` is returned (a ``CredentialsError``
    raised): a refusal (4xx, a rate limit, refused credentials: nothing was created) clears
    the marks; anything else keeps them, since the CRM may have created the activities and
    lost the answer: each call's retry then looks before creating."""
    for call_id in call_ids:
        ledger.begin(call_id)
    try:
        return send()
    except (SyncError, CredentialsError) as err:
        if isinstance(err, CredentialsError | RateLimited) or 400 <= err.status < 500:
            for call_id in call_ids:  # refused (or never sent): nothing was created
                ledger.clear(call_id)
        if isinstance(err, CredentialsError):
            raise
        return err


def unsettled(err: SyncError, items: list[int], answers: dict[int, Written], alone: list[int]) -> None:
    """A batch request failed as a whole: a refusal (4xx, not a rate limit) sends each item
    on its own, to get its own answer; anything else is each item's answer."""
    if not isinstance(err, RateLimited) and 400 <= err.status < 500:
        alone.extend(items)
    else:
        answers.update(dict.fromkeys(items, err))


def settle_alone(
    connector: Connector, writes: Sequence[CallWrite], answers: dict[int, Written], alone: list[int]
) -> list[Written]:
    """Each item of ``alone`` through ``write_call``, in order; then every answer, in the order of ``writes``."""
    for i in alone:
        answers[i] = write_one(connector, writes[i])
    return [answers[i] for i in range(len(writes))]
