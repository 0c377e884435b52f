"""Which activity belongs to which call: the local half of "one activity per call".

CRMs do not enforce a unique external call id (Salesforce ``CallObject`` and HubSpot
``hs_call_external_id`` are plain fields, and HubSpot's search index lags), so each
connector keeps this ledger in Redis:

* no entry: no attempt ever started, so the connector creates the activity straight away;
* ``PENDING``: an attempt started and its answer never arrived, so the activity may
  exist: the connector looks it up in the CRM before creating;
* an id: the activity exists; the connector updates it.
"""

from __future__ import annotations

from redis import Redis

PENDING = "pending"
LEDGER_TTL = 90 * 24 * 3600  # seconds: longer than any replay window


class ActivityLedger:
    def __init__(self, redis: Redis, crm: str, ttl: int = LEDGER_TTL) -> None:
        self._redis = redis
        self._crm = crm
        self._ttl = ttl

    def _key(self, call_id: str) -> str:
        return f"crmsync:activity:{self._crm}:{call_id}"

    def get(self, call_id: str) -> str | None:
        """The activity id, ``PENDING``, or None."""
        value = self._redis.get(self._key(call_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def begin(self, call_id: str) -> None:
        """Mark that a create is about to be sent (kept if an id is already recorded)."""
        self._redis.set(self._key(call_id), PENDING, ex=self._ttl, nx=True)

    def record(self, call_id: str, activity_id: str) -> None:
        self._redis.set(self._key(call_id), activity_id, ex=self._ttl)

    def clear(self, call_id: str) -> None:
        """Forget a ``PENDING`` mark once the CRM has said that nothing was created."""
        self._redis.delete(self._key(call_id))
