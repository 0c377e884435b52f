"""The connector contract's batch methods, as loops over the one-call methods, and what
the batch implementations (``hubspot_batch``, ``salesforce_batch``) share.

``find_each`` and ``write_each`` are the defaults of ``Connector.find_people_many`` and
``Connector.write_calls`` for a CRM without batch requests, and the fallback that the
batch implementations use for each item a batch request did not settle: every item gets
exactly the answer the one-call path gives it.

A batch ``write_calls`` (``write_batched``) sorts its items by what the in-flight ledger
knows of their call (``sort_by_ledger``), sends the new activities in batch creates, each
call marked ``pending`` first (``Batch.create``), then the known ones and the people's
fields in batch updates; an item a request did not settle (``Batch.unsettled``) goes
through ``write_call`` on its own at the end (``Batch.settle``). A ``Batch`` holds that
state, so each CRM module keeps only its own requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crmsync.crm.base import CallWrite, Connector, Found, Person, WriteResult, Written
from crmsync.crm.ledger import Ledger, nothing_created
from crmsync.errors import CredentialsError, PermanentError, RateLimited, SyncError

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
        if nothing_created(err):
            for call_id in call_ids:
                ledger.clear(call_id)
        if isinstance(err, CredentialsError):
            raise
        return err


@dataclass
class Batch:
    """One batch ``write_calls``'s state: its ``writes``; ``logged``, index -> (activity id,
    created now) of each call whose activity a request logged; ``answers``, index -> the
    answer of each item settled; ``alone``, the items left for ``write_call`` on their own."""

    writes: Sequence[CallWrite]
    logged: dict[int, tuple[str, bool]] = field(default_factory=dict)
    answers: dict[int, Written] = field(default_factory=dict)
    alone: list[int] = field(default_factory=list)
    limited: RateLimited | None = None  # a rate limit met: nothing more is sent, it is every rest's answer

    def create(self, ledger: Ledger, items: list[int], send: Callable[[], T]) -> T | SyncError:
        """``create_marked`` for the calls of ``items``; when it fails, the items are ``unsettled``
        (refused whole: each on its own; else the answer may be lost after the CRM created them:
        pending stays, and each call's retry looks before creating)."""
        result = create_marked(ledger, [self.writes[i].activity.call_id for i in items], send)
        if isinstance(result, SyncError):
            self.unsettled(result, items)
        return result

    def send(self, items: list[int], request: Callable[[], T]) -> T | SyncError:
        """``request()``, one batch request for ``items``; when it fails whole, the items are
        ``unsettled`` and its error is returned."""
        try:
            return request()
        except SyncError as err:
            self.unsettled(err, items)
            return err

    def unsettled(self, err: SyncError, items: list[int]) -> None:
        """A batch request failed as a whole: the CRM refusing its data (one bad input refuses
        them all) sends each item on its own, to get its own answer; anything else (an outage,
        a rate limit: then nothing more is sent) is each item's answer."""
        if isinstance(err, PermanentError):
            self.alone.extend(items)
            return
        if isinstance(err, RateLimited):
            self.limited = err
        self.answers.update(dict.fromkeys(items, err))

    def held(self, items: Sequence[int]) -> bool:
        """True (and ``items`` answered with it) once a rate limit was met."""
        if self.limited is not None:
            self.answers.update(dict.fromkeys(items, self.limited))
        return self.limited is not None

    def people(self, values: dict[int, dict[str, Any]]) -> tuple[list[int], list[int]]:
        """The logged calls with person fields to write (``values``: index -> fields), as
        (calls whose person no other call names, the rest); a call with none is answered now."""
        for i in [i for i in self.logged if not values[i]]:
            self.answers[i] = WriteResult(*self.logged[i])
        return unique_by([i for i in self.logged if values[i]], lambda i: self.writes[i].person.id)

    def done(self, i: int, written: dict[str, Any], rejected: dict[str, str]) -> None:
        """Answer logged call ``i``: its activity, and the person's fields written and refused."""
        activity_id, created = self.logged[i]
        self.answers[i] = WriteResult(activity_id, created, written, rejected)

    def settle(self, connector: Connector) -> list[Written]:
        """Each item of ``alone`` through ``write_call``, in order; then every answer, in the
        order of ``writes``."""
        for i in self.alone:
            if not self.held([i]):
                self.answers[i] = write_one(connector, self.writes[i])
        return [self.answers[i] for i in range(len(self.writes))]


def write_batched(
    conn: Any,
    writes: Sequence[CallWrite],
    size: int,
    create: Callable[[Any, Batch, list[int]], None],
    update: Callable[[Any, Batch, list[tuple[int, str]]], None],
    update_people: Callable[[Any, Batch], None],
    writable: Callable[[Person], bool] = lambda person: True,
) -> list[Written]:
    """A batch ``write_calls`` for ``conn`` (a connector with a ``ledger``): ``create`` for each
    ``size`` of the calls the ledger has never seen, ``update`` for each ``size`` of (index,
    activity id) it knows, ``update_people`` for the calls they logged, then ``write_call``
    for each item left alone (see ``sort_by_ledger``); one answer per write, in order."""
    batch = Batch(writes)
    fresh, known, batch.alone = sort_by_ledger(writes, conn.ledger, writable)
    for chunk in chunks(fresh, size):
        if not batch.held(chunk):
            create(conn, batch, chunk)
    for part in chunks(known, size):
        if not batch.held([i for i, _ in part]):
            update(conn, batch, part)
    if not batch.held([i for i in batch.logged if i not in batch.answers]):
        update_people(conn, batch)
    return batch.settle(conn)
