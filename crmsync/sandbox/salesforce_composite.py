"""``POST /services/data/vXX.X/composite`` for the Salesforce sandbox.

Subrequests run in order; ``@{ref.field}`` (and ``@{ref.records[0].Id}``) in a URL or body
is replaced by what an earlier subrequest returned. With ``allOrNone`` one failure rolls
every write back and each other subrequest answers 400 ``PROCESSING_HALTED``; without it,
only subrequests that refer to a failed one are skipped. At most 25 subrequests; search
(SOSL) and nested composite are refused, as on Salesforce. The whole request counts as one
API call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from crmsync.sandbox.salesforce_org import Org
from crmsync.sandbox.salesforce_schema import SfApiError

MAX_SUBREQUESTS = 25
DATA_PATH = re.compile(r"^/services/data/v(\d+\.\d+)(/.*)?$")
_REF = re.compile(r"@\{(\w+)((?:\.\w+|\[\d+\])*)\}")
Answer = tuple[int, Any, dict[str, str]]
Dispatch = Callable[[str, str, dict[str, str], Any, str], Answer]


def run_composite(org: Org, dispatch: Dispatch, body: Any) -> Answer:
    """``POST composite``: run the subrequests in order; with ``allOrNone`` one failure
    rolls all of them back and every other subrequest answers ``PROCESSING_HALTED``."""
    subs = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs:
        raise SfApiError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list")
    if len(subs) > MAX_SUBREQUESTS:
        raise SfApiError(
            400, "INVALID_BATCH_REQUEST", f"Composite request may contain at most {MAX_SUBREQUESTS} subrequests"
        )
    for sub in subs:
        url = str(sub.get("url", "")) if isinstance(sub, dict) else ""
        if not DATA_PATH.match(url.split("?")[0]) or re.search(r"/v[\d.]+/(search|composite|parameterized)", url):
            raise SfApiError(400, "INVALID_BATCH_REQUEST", f"The URL {url!r} is not supported in composite")
        if sub.get("method") not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise SfApiError(400, "INVALID_BATCH_REQUEST", "method must be GET, POST, PUT, PATCH or DELETE")
    all_or_none = bool(body.get("allOrNone"))
    with org.lock:
        saved = org.snapshot() if all_or_none else None
        results: dict[str, Any] = {}
        answers: list[dict[str, Any]] = []
        failed = False
        for sub in subs:
            ref = str(sub.get("referenceId", ""))
            if failed and all_or_none:
                answers.append(_halted(ref))
                continue
            try:
                url = _resolve(sub["url"], results)
                payload = _resolve(sub.get("body"), results)
            except (KeyError, IndexError, TypeError) as exc:
                failed = True
                answers.append(_halted(ref, f"Invalid reference specified: {exc}"))
                continue
            path, _, query = url.partition("?")
            match = DATA_PATH.match(path)
            assert match is not None
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            status, out, headers = dispatch(sub["method"], match[2] or "/", params, payload, match[1])
            answers.append({"body": out, "httpHeaders": headers, "httpStatusCode": status, "referenceId": ref})
            if status < 300:
                results[ref] = out
            else:
                failed = True
        if failed and all_or_none and saved is not None:
            org.restore(saved)
            answers = [
                a
                if a["httpStatusCode"] >= 400 and a["body"] and a["body"][0].get("errorCode") != "PROCESSING_HALTED"
                else _halted(a["referenceId"])
                for a in answers
            ]
    return 200, {"compositeResponse": answers}, {}


def _halted(
    ref: str, message: str = "The transaction was rolled back since another operation in the same transaction failed."
) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``@{ref.path}`` references by the values earlier subrequests returned."""
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def lookup(match: re.Match[str]) -> Any:
        current = results[match[1]]
        for step in re.findall(r"\.(\w+)|\[(\d+)\]", match[2]):
            current = current[int(step[1])] if step[1] else current[step[0]]
        return current

    whole = _REF.fullmatch(value)
    if whole:
        return lookup(whole)
    return _REF.sub(lambda m: str(lookup(m)), value)
