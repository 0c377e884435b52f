"""The Salesforce sandbox's in-memory org: records by object and id, validated writes,
SOSL phone search (with an optional search-index lag) and SOQL.

Records are plain dicts keyed by canonical field names. Every record has ``Id``,
``OwnerId``, ``CreatedDate`` and ``LastModifiedDate`` (Salesforce's
``2024-05-01T10:00:00.000+0000`` form).
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from crmsync import phones
from crmsync.sandbox.salesforce_query import Sosl, parse_soql, phone_hit, run_soql
from crmsync.sandbox.salesforce_schema import (
    API_USER_ID,
    CLOSED_STAGES,
    ID_PREFIXES,
    SCHEMA,
    SfApiError,
    field_def,
    object_name,
    phone_fields,
    validate,
)


def sf_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


class Org:
    """One org's data. Thread-safe: the sandbox server answers requests concurrently."""

    def __init__(self, search_lag: float = 0.0) -> None:
        self.search_lag = search_lag  # seconds before a written record shows up in SOSL
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {obj: {} for obj in SCHEMA}
        self._indexed_at: dict[str, float] = {}
        self._seq = itertools.count(1)

    # -- state ---------------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, Any]:
        with self.lock:
            return copy.deepcopy(self.records), dict(self._indexed_at)

    def restore(self, state: tuple[Any, Any]) -> None:
        with self.lock:
            self.records, self._indexed_at = copy.deepcopy(state[0]), dict(state[1])

    def new_id(self, obj: str) -> str:
        return f"{ID_PREFIXES.get(obj, '0XX')}{next(self._seq):012d}AAA"

    def find_type(self, record_id: str) -> str | None:
        with self.lock:
            return next((obj for obj, recs in self.records.items() if record_id in recs), None)

    # -- writes --------------------------------------------------------------------------
    def create(self, obj: str, values: dict[str, Any], *, seeded: bool = False) -> str:
        """Validate and store a new record; ``seeded`` records skip validation of read-only
        fields (``LastModifiedDate``, …) and are searchable at once."""
        obj = object_name(obj)
        with self.lock:
            if seeded:
                clean = {field_def(obj, k).name: v for k, v in values.items()}
            else:
                clean = validate(obj, values, create=True)
                self._check_references(obj, clean, clean)
            record_id = self.new_id(obj)
            now = sf_now()
            record = {"Id": record_id, "OwnerId": API_USER_ID, "CreatedDate": now, "LastModifiedDate": now}
            record.update({k: v for k, v in clean.items() if v is not None or k not in record})
            _computed(obj, record)
            self.records[obj][record_id] = record
            self._indexed_at[record_id] = float("-inf") if seeded else time.monotonic()
            return record_id

    def update(self, obj: str, record_id: str, values: dict[str, Any]) -> None:
        obj = object_name(obj)
        with self.lock:
            record = self.get(obj, record_id)
            clean = validate(obj, values, create=False)
            self._check_references(obj, clean, {**record, **clean})
            record.update(clean)
            _computed(obj, record)
            record["LastModifiedDate"] = sf_now()
            if any(f in clean for f in phone_fields(obj)):
                self._indexed_at[record_id] = time.monotonic()

    def delete(self, obj: str, record_id: str) -> None:
        obj = object_name(obj)
        with self.lock:
            self.get(obj, record_id)
            del self.records[obj][record_id]

    def get(self, obj: str, record_id: str) -> dict[str, Any]:
        obj = object_name(obj)
        with self.lock:
            record = self.records[obj].get(record_id)
        if record is None:
            raise SfApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return record

    def _check_references(self, obj: str, clean: dict[str, Any], after: dict[str, Any]) -> None:
        """Salesforce's refusals: a WhoId that is no Contact or Lead, a WhatId that is no Account
        or Opportunity, a WhatId on a Lead's Task, an AccountId that is no Account."""
        who = clean.get("WhoId")
        if who is not None and self.find_type(who) not in ("Contact", "Lead"):
            raise SfApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["WhoId"])
        what = clean.get("WhatId")
        if what is not None and self.find_type(what) not in ("Account", "Opportunity"):
            raise SfApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["WhatId"])
        if after.get("WhatId") and after.get("WhoId") and self.find_type(after["WhoId"]) == "Lead":
            raise SfApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: You can't add a related-to record (WhatId) to a task whose name (WhoId) is a lead.",
                ["WhatId"],
            )
        account = clean.get("AccountId")
        if account is not None and self.find_type(account) != "Account":
            raise SfApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AccountId"])
        owner = clean.get("OwnerId")
        if owner is not None and not str(owner).startswith(ID_PREFIXES["User"]):
            raise SfApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OwnerId"])

    # -- reads ---------------------------------------------------------------------------
    @staticmethod
    def render(obj: str, record: dict[str, Any], fields: list[str] | None, version: str) -> dict[str, Any]:
        names = [field_def(obj, f).name for f in fields] if fields else list(record)
        out: dict[str, Any] = {
            "attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{record['Id']}"}
        }
        out.update({name: record.get(name) for name in names})
        return out

    def search(self, sosl: Sosl, version: str) -> list[dict[str, Any]]:
        """SOSL over phone fields: hits mixed across object types, most recently changed first."""
        # "A OR B": a hit on any of the terms
        terms = [d for d in (phones.digits(t) for t in re.split(r"\s+OR\s+", sosl.term)) if d]
        horizon = time.monotonic() - self.search_lag
        hits: list[tuple[str, str, dict[str, Any]]] = []
        with self.lock:
            for obj, fields in sosl.returning:
                for name in fields:
                    field_def(obj, name)
                for record in self.records[obj].values():
                    if self._indexed_at.get(record["Id"], 0) > horizon:
                        continue
                    if any(phone_hit(record.get(f), term) for f in phone_fields(obj) for term in terms):
                        hits.append(
                            (record.get("LastModifiedDate") or "", obj, self.render(obj, record, fields, version))
                        )
        hits.sort(key=lambda h: h[0], reverse=True)
        return [h[2] for h in hits[: sosl.limit]]

    def query(self, q: str, version: str) -> dict[str, Any]:
        soql = parse_soql(q)
        with self.lock:
            rows = run_soql(soql, list(self.records[soql.object].values()))
            records = [self.render(soql.object, r, soql.fields, version) for r in rows]
        return {"totalSize": len(records), "done": True, "records": records}


def _computed(obj: str, record: dict[str, Any]) -> None:
    """Fields Salesforce computes: an Opportunity's IsClosed and IsWon from its stage."""
    if obj == "Opportunity":
        record["IsClosed"] = record.get("StageName") in CLOSED_STAGES
        record["IsWon"] = record.get("StageName") == "Closed Won"
