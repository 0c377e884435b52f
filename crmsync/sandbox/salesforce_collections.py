"""sObject Collections for the Salesforce sandbox: ``POST`` (create) and ``PATCH`` (update)
``/services/data/vXX.X/composite/sobjects``.

The body is ``{"allOrNone": bool, "records": [{"attributes": {"type": "Task"}, ...}]}``
(an update's records carry ``id``); at most ``MAX_RECORDS`` (200) records, else 400
``EXCEEDED_ID_LIMIT``. The answer is 200 with one result per record, in order:
``{"id", "success", "errors": [{"statusCode", "message", "fields"}]}``. With ``allOrNone``
false each record succeeds or fails on its own; with it true, one failure rolls every
record back, and the others answer ``ALL_OR_NONE_OPERATION_ROLLED_BACK``. The request
counts as one API call, like any other.
"""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.salesforce_org import Org
from crmsync.sandbox.salesforce_schema import SfApiError, object_name

MAX_RECORDS = 200
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
    "fields": [],
}
Answer = tuple[int, Any, dict[str, str]]


def run_collection(org: Org, method: str, body: Any) -> Answer:
    """Create (``POST``) or update (``PATCH``) every record of the body; see the module."""
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise SfApiError(400, "JSON_PARSER_ERROR", "records must be a non-empty list")
    if len(records) > MAX_RECORDS:
        raise SfApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
        )
    all_or_none = bool(body.get("allOrNone"))
    with org.lock:
        saved = org.snapshot() if all_or_none else None
        results = [_one(org, method, record) for record in records]
        if all_or_none and saved is not None and not all(r["success"] for r in results):
            org.restore(saved)
            results = [
                r if not r["success"] else {"id": None, "success": False, "errors": [dict(ROLLED_BACK)]}
                for r in results
            ]
    return 200, results, {}


def _one(org: Org, method: str, record: Any) -> dict[str, Any]:
    """One record's result: its id, or the error Salesforce gives it."""
    if not isinstance(record, dict):
        return _failed(None, SfApiError(400, "JSON_PARSER_ERROR", "a record must be an object"))
    values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
    record_id = record.get("id") or record.get("Id")
    try:
        obj = object_name(str((record.get("attributes") or {}).get("type") or ""))
        if method == "POST":
            if record_id:
                raise SfApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            return {"id": org.create(obj, values), "success": True, "errors": []}
        if not record_id:
            raise SfApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        org.update(obj, str(record_id), values)
        return {"id": str(record_id), "success": True, "errors": []}
    except SfApiError as exc:
        return _failed(str(record_id) if record_id else None, exc)


def _failed(record_id: str | None, exc: SfApiError) -> dict[str, Any]:
    errors = [
        {"statusCode": e["errorCode"], "message": e["message"], "fields": list(e.get("fields") or [])}
        for e in exc.errors
    ]
    return {"id": record_id, "success": False, "errors": errors}
