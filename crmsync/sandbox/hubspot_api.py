"""The sandbox HubSpot's endpoint handlers: request JSON in, (status, response JSON) out.

Error bodies follow HubSpot's ``Error`` schema (``status, message, correlationId,
category, errors[]``); property validation errors name each refused property in
``errors[].context.propertyName`` and in the message, as HubSpot does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from crmsync.sandbox.hubspot_objects import ASSOCIATION_TYPES
from crmsync.sandbox.hubspot_portal import DEFAULT_PROPERTIES, Portal, Record, SearchError
from crmsync.sandbox.hubspot_schema import iso

MAX_BATCH = 100
KINDS = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "calls": "calls",
    "call": "calls",
    "0-48": "calls",
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "tasks": "tasks",
    "task": "tasks",
    "0-27": "tasks",
}


def error_body(message: str, category: str, errors: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    if errors is not None:
        body["errors"] = errors
    return body


class HubSpotError(Exception):
    def __init__(
        self, status: int, message: str, category: str, errors: list[dict[str, Any]] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.category, self.errors, self.extra = status, message, category, errors, extra

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.category, self.errors, **self.extra)


def invalid_properties(errors: list[dict[str, Any]]) -> HubSpotError:
    """HubSpot's 400 for refused property values."""
    legacy = [
        {
            "isValid": False,
            "message": e["message"],
            "error": e["code"],
            "name": e["name"],
            "localizedErrorMessage": e["message"],
        }
        for e in errors
    ]
    public = [{k: v for k, v in e.items() if k != "name"} for e in errors]
    return HubSpotError(400, "Property values were not valid: " + json.dumps(legacy), "VALIDATION_ERROR", public)


def not_found(kind: str, rid: str) -> HubSpotError:
    return HubSpotError(
        404,
        f"Object not found.  objectId are usually numeric. ({kind} {rid})",
        "OBJECT_NOT_FOUND",
        context={"id": [rid]},
    )


def _kind(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise HubSpotError(400, f"Unable to infer object type from: {kind}", "VALIDATION_ERROR") from None


def _names(query: Mapping[str, Any], kind: str) -> list[str]:
    names: list[str] = []
    getlist = getattr(query, "getlist", None)
    raw = getlist("properties") if getlist else [query.get("properties")] if query.get("properties") else []
    for item in raw:
        names.extend(n for n in str(item).split(",") if n)
    return list(dict.fromkeys(DEFAULT_PROPERTIES[kind] + names))


class Handlers:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    # -- single objects ---------------------------------------------------------------------
    def search(self, *, payload: dict[str, Any], query: Any, kind: str) -> tuple[int, Any]:
        try:
            return 200, self.portal.search(_kind(kind), payload)
        except SearchError as exc:
            raise HubSpotError(400, str(exc), "VALIDATION_ERROR") from None

    def get(self, *, payload: dict[str, Any], query: Any, kind: str, rid: str) -> tuple[int, Any]:
        kind = _kind(kind)
        record = self.portal.get(kind, rid)
        if record is None:
            raise not_found(kind, rid)
        return 200, record.to_json(_names(query, kind))

    def create(self, *, payload: dict[str, Any], query: Any, kind: str) -> tuple[int, Any]:
        kind = _kind(kind)
        return 201, self._create(kind, payload).to_json()

    def _create(self, kind: str, payload: dict[str, Any]) -> Record:
        values = self._creatable(kind, payload)
        return self.portal.insert(kind, values, associations=payload.get("associations") or [])

    def _creatable(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The checked property values of a create; ``HubSpotError`` when HubSpot refuses it."""
        values, errors = self.portal.registries[kind].check(payload.get("properties") or {})
        if errors:
            raise invalid_properties(errors)
        associations = payload.get("associations") or []
        self._check_associations(kind, associations)
        if kind in ("calls", "tasks"):
            if not values.get("hs_timestamp"):
                raise HubSpotError(
                    400,
                    f"hs_timestamp is required to create a {kind[:-1]}",
                    "VALIDATION_ERROR",
                    [
                        {
                            "message": "hs_timestamp is required",
                            "code": "REQUIRED_PROPERTY",
                            "context": {"propertyName": ["hs_timestamp"]},
                        }
                    ],
                )
        elif values.get("email"):
            for rid, other in list(self.portal.records["contacts"].items()):
                if (other.properties.get("email") or "").lower() == values["email"].lower():
                    raise HubSpotError(409, f"Contact already exists. Existing ID: {rid}", "CONFLICT")
        return values

    def _check_associations(self, kind: str, associations: list[dict[str, Any]]) -> None:
        """HubSpot's 400 for an association type that does not go from ``kind``, or to a
        record that does not exist."""
        for assoc in associations:
            to_id = str((assoc.get("to") or {}).get("id") or "")
            types = assoc.get("types") or []
            if not types:
                raise HubSpotError(400, "An association needs at least one type", "VALIDATION_ERROR")
            for spec in types:
                found = ASSOCIATION_TYPES.get(spec.get("associationTypeId"))
                if spec.get("associationCategory") != "HUBSPOT_DEFINED" or found is None or found[0] != kind:
                    raise HubSpotError(
                        400,
                        f"{spec.get('associationCategory')} {spec.get('associationTypeId')} "
                        f"is not a valid association type from {kind[:-1]}",
                        "VALIDATION_ERROR",
                    )
                if self.portal.get(found[1], to_id) is None:
                    raise HubSpotError(
                        400,
                        f"One or more associated objects were not found: {found[1][:-1]} {to_id}",
                        "VALIDATION_ERROR",
                    )

    def update(self, *, payload: dict[str, Any], query: Any, kind: str, rid: str) -> tuple[int, Any]:
        kind = _kind(kind)
        return 200, self._update(kind, rid, payload.get("properties") or {}).to_json()

    def _update(self, kind: str, rid: str, properties: dict[str, Any]) -> Record:
        if self.portal.get(kind, rid) is None:
            raise not_found(kind, rid)
        values, errors = self.portal.registries[kind].check(properties)
        if errors:
            raise invalid_properties(errors)
        return self.portal.update(kind, rid, values)

    def archive(self, *, payload: dict[str, Any], query: Any, kind: str, rid: str) -> tuple[int, Any]:
        kind = _kind(kind)
        if self.portal.get(kind, rid) is None:
            raise not_found(kind, rid)
        self.portal.remove(kind, rid)
        return 204, None

    # -- batch ------------------------------------------------------------------------------
    def batch(self, *, payload: dict[str, Any], query: Any, kind: str, op: str) -> tuple[int, Any]:
        kind = _kind(kind)
        inputs = payload.get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise HubSpotError(
                400, f"Batch size of {len(inputs)} exceeds the limit of {MAX_BATCH} inputs", "VALIDATION_ERROR"
            )
        started = iso(datetime.now(UTC))
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        status = 200
        if op == "read":
            names = list(dict.fromkeys(DEFAULT_PROPERTIES[kind] + list(payload.get("properties") or [])))
            self._batch_read(kind, inputs, names, results, missing)
        elif op == "update":
            self._batch_update(kind, inputs, results, missing)
        elif op == "create":  # HubSpot refuses the whole batch for one invalid input: nothing is created
            checked = [self._creatable(kind, item) for item in inputs]
            results = [
                self.portal.insert(kind, values, associations=item.get("associations") or []).to_json()
                for values, item in zip(checked, inputs, strict=True)
            ]
            status = 201
        else:
            raise HubSpotError(404, f"Unknown batch operation {op}", "OBJECT_NOT_FOUND")
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso(datetime.now(UTC)),
        }
        if missing:
            status = 207
            body["numErrors"] = 1
            body["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some " + kind + " objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "context": {"ids": missing},
                    "links": {},
                    "errors": [],
                }
            ]
        return status, body

    def _batch_read(
        self, kind: str, inputs: list[Any], names: list[str], results: list[Any], missing: list[str]
    ) -> None:
        for item in inputs:
            record = self.portal.get(kind, str(item.get("id")))
            if record is None:
                missing.append(str(item.get("id")))
            else:
                results.append(record.to_json(names))

    def _batch_update(self, kind: str, inputs: list[Any], results: list[Any], missing: list[str]) -> None:
        ids = [str(item.get("id")) for item in inputs]
        if len(set(ids)) < len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise HubSpotError(
                400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique", "VALIDATION_ERROR"
            )
        for item in inputs:  # HubSpot refuses the whole batch for an invalid value
            _, errors = self.portal.registries[kind].check(item.get("properties") or {})
            if errors:
                raise invalid_properties(errors)
        for item in inputs:
            rid = str(item.get("id"))
            if self.portal.get(kind, rid) is None:
                missing.append(rid)
            else:
                results.append(self._update(kind, rid, item.get("properties") or {}).to_json())

    # -- properties -------------------------------------------------------------------------
    def properties(self, *, payload: dict[str, Any], query: Any, kind: str) -> tuple[int, Any]:
        registry = self.portal.registries[_kind(kind)]
        return 200, {"results": [p.to_json() for p in registry.properties.values()]}

    def property(self, *, payload: dict[str, Any], query: Any, kind: str, name: str) -> tuple[int, Any]:
        prop = self.portal.registries[_kind(kind)].get(name)
        if prop is None:
            raise HubSpotError(404, f"Unable to find property {name}", "OBJECT_NOT_FOUND")
        return 200, prop.to_json()
