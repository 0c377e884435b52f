"""The sandbox HubSpot portal's data: contacts and calls in memory, and CRM search over them.

Search behaves as HubSpot's documented and observed search does: filter groups are ORed
and the filters inside a group ANDed; ``EQ`` is an exact, case-insensitive string match
(so ``+14155551212`` does not find ``(415) 555-1212``); ``CONTAINS_TOKEN`` matches one
token of the value split on non-alphanumerics, ``*`` being a wildcard; records written
less than ``lag`` seconds ago are not yet indexed. Phones get HubSpot's computed
``hs_searchable_calculated_*`` variants: the national digits without a country code.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from crmsync import phones
from crmsync.sandbox.hubspot_objects import CLOSED_STAGES, company_registry, deal_registry, task_registry
from crmsync.sandbox.hubspot_schema import Registry, call_registry, contact_registry, iso

MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
MAX_LIMIT = 200
MAX_IN_VALUES = 100  # values of one IN / NOT_IN filter (the sandbox's limit, as HubSpot's batch inputs)
DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "calls": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": [
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ],
    "tasks": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}
SEARCHABLE = {"phone": "hs_searchable_calculated_phone_number", "mobilephone": "hs_searchable_calculated_mobile_number"}
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
_TOKENS = re.compile(r"[^0-9a-z]+")


class SearchError(ValueError):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


@dataclass
class Record:
    id: str
    properties: dict[str, str | None]
    created: datetime
    updated: datetime
    touched: float  # monotonic time of the last write, for the index lag
    associations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, names: list[str] | None = None) -> dict[str, Any]:
        props = self.properties if names is None else {n: self.properties.get(n) for n in names}
        return {
            "id": self.id,
            "properties": {k: (None if v is None else str(v)) for k, v in props.items()},
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "archived": False,
        }


def searchable_digits(stored: str | None) -> str | None:
    """HubSpot's ``hs_searchable_calculated_*`` value for a stored phone: national digits.

    A value with a country code (``+`` or ``00``) gives its national significant number;
    one without gives its digits with the leading trunk 0 stripped.
    """
    if not stored or not phones.digits(stored):
        return None
    if phones.has_country_code(stored):
        number = phones.parse(stored, "ZZ")
        if number is not None:
            return phonenumbers.national_significant_number(number)
    return phones.digits(stored).lstrip("0") or None


class Portal:
    """One HubSpot account: contacts, calls, their properties. Thread-safe."""

    def __init__(self, *, lag: float = 0.0, owners: tuple[str, ...] = ("1001", "1002", "1003")) -> None:
        self.lag = lag
        self.registries: dict[str, Registry] = {
            "contacts": contact_registry(owners),
            "calls": call_registry(owners),
            "companies": company_registry(owners),
            "deals": deal_registry(owners),
            "tasks": task_registry(owners),
        }
        self.records: dict[str, dict[str, Record]] = {kind: {} for kind in self.registries}
        self.lock = threading.RLock()
        self._next_id = 101

    # -- writes ------------------------------------------------------------------------
    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    def insert(
        self,
        kind: str,
        properties: dict[str, str],
        *,
        indexed: bool = False,
        associations: list[dict[str, Any]] | None = None,
    ) -> Record:
        """Store a new record (already validated). ``indexed=True`` skips the index lag."""
        now = datetime.now(UTC)
        rid = self.new_id()
        record = Record(rid, {}, now, now, 0.0 if indexed else time.monotonic(), associations or [])
        stamp = iso(now)
        if kind == "contacts":
            record.properties.update({"createdate": stamp, "lastmodifieddate": stamp, "hubspot_owner_id": None})
        else:
            record.properties.update({"hs_createdate": stamp, "hs_lastmodifieddate": stamp})
            if kind in ("companies", "deals"):
                record.properties["createdate"] = stamp
        record.properties["hs_object_id"] = rid
        self._apply(kind, record, properties)
        with self.lock:
            self.records[kind][rid] = record
        return record

    def update(self, kind: str, rid: str, properties: dict[str, str]) -> Record:
        with self.lock:
            record = self.records[kind][rid]
            now = datetime.now(UTC)
            record.updated, record.touched = now, time.monotonic()
            record.properties["lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"] = iso(now)
            self._apply(kind, record, properties)
            return record

    def _apply(self, kind: str, record: Record, properties: dict[str, str]) -> None:
        for name, value in properties.items():
            record.properties[name] = None if value == "" else value
        if kind == "contacts":
            for source, target in SEARCHABLE.items():
                record.properties[target] = searchable_digits(record.properties.get(source))
        if kind == "deals":
            closed = record.properties.get("dealstage") in CLOSED_STAGES
            record.properties["hs_is_closed"] = "true" if closed else "false"

    def remove(self, kind: str, rid: str) -> None:
        """Archive a record (it leaves the portal and its search)."""
        with self.lock:
            self.records[kind].pop(str(rid), None)

    def get(self, kind: str, rid: str) -> Record | None:
        with self.lock:
            return self.records[kind].get(str(rid))

    # -- search ------------------------------------------------------------------------
    def search(self, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        groups = request.get("filterGroups") or []
        if len(groups) > MAX_GROUPS:
            raise SearchError(f"There were {len(groups)} filter groups, but the maximum is {MAX_GROUPS}.")
        total_filters = 0
        for group in groups:
            filters = group.get("filters") or []
            total_filters += len(filters)
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise SearchError(f"A filter group has {len(filters)} filters; the maximum is {MAX_FILTERS_PER_GROUP}.")
        if total_filters > MAX_FILTERS:
            raise SearchError(f"There were {total_filters} filters in total; the maximum is {MAX_FILTERS}.")
        limit = int(request.get("limit") or 10)
        if limit > MAX_LIMIT or limit < 1:
            raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
        after = int(request.get("after") or 0)
        registry = self.registries[kind]
        for group in groups:
            for flt in group.get("filters") or []:
                name = str(flt.get("propertyName") or "")
                if name.startswith("associations."):
                    if name.split(".", 1)[1] not in ("contact", "company", "deal"):
                        raise SearchError(f"Unknown association filter {name!r}.")
                    continue
                if name not in registry:
                    raise SearchError(f"Property {name!r} does not exist.")
                prop = registry.get(name)
                if prop is not None and prop.type in ("date", "datetime") and flt.get("value") is not None:
                    clean, _ = registry.check({name: flt["value"]})  # ms or ISO 8601, compared as stored
                    flt = flt | {"value": clean.get(name, flt["value"])}
                    group["filters"] = [flt if f.get("propertyName") == name else f for f in group["filters"]]
                operator = (flt.get("operator") or "EQ").upper()
                if operator not in OPERATORS:
                    raise SearchError(f"Unknown operator {flt.get('operator')!r}.")
                if operator in ("IN", "NOT_IN"):
                    _check_values(flt)
        now = time.monotonic()
        with self.lock:
            candidates = [r for r in self.records[kind].values() if now - r.touched >= self.lag]
        hits = [r for r in candidates if not groups or any(_group_matches(r, g) for g in groups)]
        query = (request.get("query") or "").strip().lower()
        if query:
            hits = [r for r in hits if any(query in (v or "").lower() for v in r.properties.values())]
        for sort in reversed(request.get("sorts") or []):
            sort_name = sort.get("propertyName") if isinstance(sort, dict) else str(sort)
            desc = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            hits.sort(key=_sorter(str(sort_name)), reverse=desc)
        if not request.get("sorts"):
            hits.sort(key=lambda r: int(r.id))
        names = request.get("properties") or DEFAULT_PROPERTIES[kind]
        page = hits[after : after + limit]
        body: dict[str, Any] = {"total": len(hits), "results": [r.to_json(list(names)) for r in page]}
        if after + limit < len(hits):
            nxt = str(after + limit)
            body["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return body


def _sorter(name: str) -> Callable[[Record], tuple[int, float, str]]:
    return lambda record: _sort_key(record.properties.get(name))


def _sort_key(value: str | None) -> tuple[int, float, str]:
    if value is None:
        return (1, 0.0, "")
    try:
        return (0, float(value), "")
    except ValueError:
        return (0, 0.0, value.lower())


def _check_values(flt: dict[str, Any]) -> None:
    """An ``IN`` / ``NOT_IN`` filter takes a non-empty list of at most ``MAX_IN_VALUES`` values."""
    values = flt.get("values")
    if not isinstance(values, list) or not values:
        raise SearchError(f"The {flt.get('operator')} filter on {flt.get('propertyName')!r} needs a list of values.")
    if len(values) > MAX_IN_VALUES:
        raise SearchError(
            f"The {flt.get('operator')} filter on {flt.get('propertyName')!r} has {len(values)} "
            f"values; the maximum is {MAX_IN_VALUES}."
        )


def _group_matches(record: Record, group: dict[str, Any]) -> bool:
    return all(_filter_matches(record, f) for f in group.get("filters") or [])


def _filter_matches(record: Record, flt: dict[str, Any]) -> bool:
    name = str(flt.get("propertyName", ""))
    if name.startswith("associations."):  # records associated with that object id
        return str(flt.get("value")) in {str((a.get("to") or {}).get("id")) for a in record.associations}
    value = record.properties.get(name)
    op = (flt.get("operator") or "EQ").upper()
    wanted = "" if flt.get("value") is None else str(flt["value"]).lower()
    text = None if value is None else str(value).lower()
    if op == "HAS_PROPERTY":
        return bool(text)
    if op == "NOT_HAS_PROPERTY":
        return not text
    if op == "EQ":
        return text == wanted
    if op == "NEQ":
        return text != wanted
    if op in ("IN", "NOT_IN"):
        values = {str(v).lower() for v in flt.get("values") or []}
        return (text in values) == (op == "IN")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = text is not None and any(fnmatch.fnmatchcase(token, wanted) for token in _TOKENS.split(text) if token)
        return found == (op == "CONTAINS_TOKEN")
    if op in ("LT", "LTE", "GT", "GTE", "BETWEEN"):
        if text is None:
            return False
        try:
            number, low = float(text), float(wanted)
        except ValueError:
            return False
        if op == "BETWEEN":
            return low <= number <= float(flt.get("highValue") or 0)
        return {"LT": number < low, "LTE": number <= low, "GT": number > low, "GTE": number >= low}[op]
    raise SearchError(f"Unknown operator {op!r}.")
