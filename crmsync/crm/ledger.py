"""The in-flight ledger: the local half of "one person, one activity per call".

CRMs do not enforce a unique key for what crmsync creates (Salesforce ``CallObject`` and
HubSpot ``hs_call_external_id`` are plain fields, a phone number is not unique, and
HubSpot's search index lags), so before sending a create each connector notes it here, in
Redis, and the answer replaces the note. An entry, per CRM, kind (``activity``: by call id;
``person``: by ``person_name``) and name, is one of:

* nothing: no attempt ever started, so the connector creates straight away;
* ``pending`` with the time the attempt was sent: its answer never arrived, so the record
  may exist: the connector looks it up in the CRM before creating again (and HubSpot
  trusts a "not found" only once the attempt is older than its search-index lag);
* an id: the record exists; the connector updates (or reuses) it.

A create the CRM refused (a 4xx answer: nothing was created) clears its entry. Key names
and TTLs: ``crmsync.store.ledger_key`` and ``crmsync.store.LEDGER_TTLS``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis

from crmsync import store
from crmsync.errors import CredentialsError, RateLimited, SyncError

PENDING = "pending"


@dataclass(frozen=True)
class Entry:
    """One ledger entry: an id, or pending since ``started`` (epoch seconds; None: unknown)."""

    id: str | None
    started: float | None = None

    @property
    def pending(self) -> bool:
        return self.id is None

    def age(self) -> float:
        """Seconds since the pending attempt was sent (infinite when unknown or not pending)."""
        if self.started is None:
            return math.inf
        return max(0.0, time.time() - self.started)


class Ledger:
    """The entries of one CRM and kind. ``begin`` before sending a create, ``record`` the id
    the CRM answered, ``clear`` when the CRM refused it."""

    def __init__(self, redis: Redis, crm: str, kind: str, ttl: int | None = None) -> None:
        self._redis = redis
        self._crm = crm
        self._kind = kind
        self._ttl = ttl if ttl is not None else store.LEDGER_TTLS[kind]

    def _key(self, name: str) -> str:
        return store.ledger_key(self._kind, self._crm, name)

    def get(self, name: str) -> Entry | None:
        raw = self._redis.get(self._key(name))
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        if value == PENDING:
            return Entry(None)
        if value.startswith(PENDING + ":"):
            try:
                return Entry(None, float(value[len(PENDING) + 1 :]))
            except ValueError:
                return Entry(None)
        return Entry(value)

    def begin(self, name: str) -> None:
        """Mark a create as about to be sent, now (overwrites an earlier mark)."""
        self._redis.set(self._key(name), f"{PENDING}:{time.time()!r}", ex=self._ttl)

    def record(self, name: str, record_id: str) -> None:
        self._redis.set(self._key(name), record_id, ex=self._ttl)

    def clear(self, name: str) -> None:
        """Forget a pending mark once the CRM has said that nothing was created."""
        self._redis.delete(self._key(name))


def person_name(object: str, properties: Mapping[str, Any], phone_fields: Sequence[str]) -> str:
    """The ledger name of a person to create: a digest (no phone number in Redis keys) of the
    object and the first phone field ``properties`` fill in, else of every property."""
    phone = next(
        (str(properties[f]) for f in phone_fields if isinstance(properties.get(f), str) and properties[f]), None
    )
    what = f"phone:{phone}" if phone is not None else json.dumps(properties, sort_keys=True, default=str)
    return hashlib.sha256(f"{object.lower()}\n{what}".encode()).hexdigest()[:32]


def nothing_created(err: SyncError | CredentialsError) -> bool:
    """A create that failed so: the CRM created nothing (a refusal, 4xx; refused credentials;
    a rate limit, ours or the CRM's, so nothing was sent), and its ``pending`` mark is
    cleared. Any other failure (a timeout, a 5xx) may have lost the answer of a create that
    landed: the mark stays, and the retry looks before creating."""
    return isinstance(err, CredentialsError | RateLimited) or 400 <= err.status < 500
