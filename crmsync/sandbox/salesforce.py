"""A sandbox Salesforce org over HTTPS, for the tests, the benchmarks and ``crmsync demo``.

It speaks the REST API as ``simple-salesforce`` uses it, under ``/services/data/vXX.X/``
(any version): SOSL ``search/``, SOQL ``query/``, ``sobjects/{Obj}/`` create, read,
update (204) and delete, ``sobjects/{Obj}/describe``, ``composite`` (``@{ref.id}``
references, ``allOrNone`` rollback, at most 25 subrequests, no search), sObject
Collections create and update (``composite/sobjects``, at most 200 records, ``allOrNone``
true or false: ``salesforce_collections``) and ``limits/``. SOSL takes ``FIND {a OR b …}``.
Every data response carries ``Sforce-Limit-Info: api-usage=N/MAX`` (a composite counts
once); past MAX the org answers 403 ``REQUEST_LIMIT_EXCEEDED``. A wrong bearer token gets
401 ``[{"errorCode": "INVALID_SESSION_ID"}]``. Logins: see ``salesforce_login``.

    with SalesforceSandbox() as sf:                   # TLS with its own CA: sf.ca_path
        contact_id = sf.seed("Contact", {"LastName": "Doe", "Phone": "(415) 555-1212"})
        settings = SalesforceSettings(instance_url=sf.url, access_token=sf.token)
        sf.add_fault(match="POST .*/composite", status=503)    # faults as in SandboxServer
        sf.tasks()                                     # what was written
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.salesforce_collections import run_collection
from crmsync.sandbox.salesforce_composite import DATA_PATH, Answer, run_composite
from crmsync.sandbox.salesforce_login import (
    SOAP_FAULT,
    SOAP_OK,
    Credentials,
    new_token,
    oauth_login,
    soap_login,
)
from crmsync.sandbox.salesforce_org import Org
from crmsync.sandbox.salesforce_query import parse_sosl
from crmsync.sandbox.salesforce_schema import SCHEMA, SfApiError, object_name
from crmsync.sandbox.server import HostedSandbox, SandboxServer

DEFAULT_TOKEN = "00D000000000001!sandbox-session"


class SalesforceApp:
    """The WSGI app: authentication, API usage, routing and ``composite``."""

    def __init__(self, org: Org, creds: Credentials, *, token: str, api_max: int) -> None:
        self.org = org
        self.creds = creds
        self.tokens = {token}
        self.api_max = api_max
        self.api_used = 0
        self.logins = 0
        self.public_url = ""
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        status, body, headers = self.handle(request)
        if isinstance(body, str):
            response = Response(body, status, headers, content_type="text/xml; charset=utf-8")
        elif body is None:
            response = Response(b"", status, headers)
        else:
            response = Response(json.dumps(body), status, headers, content_type="application/json;charset=UTF-8")
        return response(environ, start_response)

    def handle(self, request: Request) -> Answer:
        path = request.path
        if request.method == "POST" and re.fullmatch(r"/services/Soap/u/\d+\.\d+/?", path):
            if not soap_login(self.creds, request.get_data(as_text=True)):
                return 500, SOAP_FAULT, {}
            version = path.rstrip("/").rsplit("/", 1)[1]
            return 200, SOAP_OK.format(base=self._base(request), version=version, token=self._issue()), {}
        if request.method == "POST" and path.rstrip("/") == "/services/oauth2/token":
            status, body = oauth_login(self.creds, request.form.to_dict(), request.headers.get("Authorization", ""))
            if status == 200:
                body = {
                    "access_token": self._issue(),
                    "instance_url": self._base(request),
                    "token_type": "Bearer",
                    "id": f"{self._base(request)}/id/00D000000000001/005000000000001AAA",
                }
            return status, body, {}
        match = DATA_PATH.match(path)
        if not match:
            return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], {}
        auth = request.headers.get("Authorization", "")
        with self._lock:
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], {}
            if self.api_used >= self.api_max:
                return (
                    403,
                    [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                    self._usage(),
                )
            self.api_used += 1
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return (
                400,
                [{"message": "The request body is not valid JSON", "errorCode": "JSON_PARSER_ERROR"}],
                self._usage(),
            )
        params = {k: v[-1] for k, v in parse_qs(request.query_string.decode()).items()}
        status, out, headers = self.dispatch(request.method, match[2] or "/", params, body, match[1], top=True)
        return status, out, {**headers, **self._usage()}

    def _usage(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_max}"}

    def _base(self, request: Request) -> str:
        return self.public_url or request.host_url.rstrip("/")

    def _issue(self) -> str:
        token = new_token()
        with self._lock:
            self.tokens.add(token)
            self.logins += 1
        return token

    # -- the data API ----------------------------------------------------------------------
    def dispatch(
        self, method: str, rest: str, params: dict[str, str], body: Any, version: str, *, top: bool = False
    ) -> Answer:
        try:
            return self._route(method, rest.rstrip("/") or "/", params, body, version, top)
        except SfApiError as exc:
            return exc.status, exc.errors, {}

    def _route(self, method: str, rest: str, params: dict[str, str], body: Any, version: str, top: bool) -> Answer:
        org = self.org
        if rest == "/search" and method == "GET":
            return 200, {"searchRecords": org.search(parse_sosl(params.get("q", "")), version)}, {}
        if rest == "/query" and method == "GET":
            return 200, org.query(params.get("q", ""), version), {}
        if rest == "/limits" and method == "GET":
            return 200, {"DailyApiRequests": {"Max": self.api_max, "Remaining": self.api_max - self.api_used}}, {}
        if rest == "/composite" and method == "POST" and top:
            return run_composite(self.org, self.dispatch, body)
        if rest == "/composite/sobjects" and method in ("POST", "PATCH") and top:
            return run_collection(self.org, method, body)
        if rest == "/sobjects" and method == "GET":
            return (
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [{"name": o, "label": o, "custom": False} for o in SCHEMA],
                },
                {},
            )
        parts = rest.strip("/").split("/")
        if parts[0] != "sobjects" or len(parts) not in (2, 3):
            raise SfApiError(404, "NOT_FOUND", "The requested resource does not exist")
        obj = object_name(parts[1])
        if len(parts) == 2 and method == "POST":
            record_id = org.create(obj, body)
            return (
                201,
                {"id": record_id, "success": True, "errors": []},
                {"Location": f"/services/data/v{version}/sobjects/{obj}/{record_id}"},
            )
        if len(parts) == 3 and parts[2] == "describe" and method == "GET":
            described = [f.describe() for f in SCHEMA[obj].values()]
            return (
                200,
                {
                    "name": obj,
                    "label": obj,
                    "custom": False,
                    "createable": True,
                    "updateable": True,
                    "queryable": True,
                    "searchable": True,
                    "fields": described,
                },
                {},
            )
        if len(parts) == 3 and method == "GET":
            fields = [f for f in params.get("fields", "").split(",") if f] or None
            return 200, org.render(obj, org.get(obj, parts[2]), fields, version), {}
        if len(parts) == 3 and method == "PATCH":
            org.update(obj, parts[2], body)
            return 204, None, {}
        if len(parts) == 3 and method == "DELETE":
            org.delete(obj, parts[2])
            return 204, None, {}
        raise SfApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")


class SalesforceSandbox(HostedSandbox):
    """An org served over TLS on 127.0.0.1: ``start()``/``stop()`` or a ``with`` block.

    ``token`` is a valid session from the start (``SALESFORCE_ACCESS_TOKEN``); ``creds``
    are what the login endpoints accept; ``search_lag`` seconds pass before a record
    written through the API shows up in SOSL; ``api_max`` is the daily allowance.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        creds: Credentials | None = None,
        api_max: int = 15000,
        search_lag: float = 0.0,
        cert_dir: Path | None = None,
    ) -> None:
        self.token = token
        self.creds = creds or Credentials()
        self.org = Org(search_lag)
        self._search_lag = search_lag
        self.app = SalesforceApp(self.org, self.creds, token=token, api_max=api_max)
        self.server = SandboxServer(self.app, tls=True, cert_dir=cert_dir)

    def start(self) -> Self:
        super().start()
        self.app.public_url = self.server.url
        return self

    def reset(self) -> None:
        """Forget records, faults, the request log, issued sessions and API usage."""
        self.org.restore(({obj: {} for obj in SCHEMA}, {}))
        self.org.search_lag = self._search_lag
        self.server.clear_faults()
        self.server.requests.clear()
        self.app.tokens = {self.token}
        self.app.api_used = 0
        self.app.logins = 0

    # -- what tests and the demo use (and HostedSandbox's url, requests, faults, count) ------------
    @property
    def ca_path(self) -> Path:
        assert self.server.ca_path is not None, "the sandbox is not started"
        return self.server.ca_path

    def api_requests(self) -> int:
        """Requests to the data API (``/services/data/…``), whatever their answer."""
        return self.server.count(r"^\w+ /services/data/")

    def seed(self, object: str, fields: dict[str, Any]) -> str:
        """Store a record as if it had always been there (searchable at once); returns its id.
        Required fields that are missing get placeholders (``LastName``, ``Company``)."""
        values = dict(fields)
        if object_name(object) in ("Contact", "Lead"):
            values.setdefault("LastName", "Seeded")
        if object_name(object) == "Lead":
            values.setdefault("Company", "Seeded Inc.")
            values.setdefault("Status", "Open - Not Contacted")
        return self.org.create(object, values, seeded=True)

    def get(self, object: str, record_id: str) -> dict[str, Any]:
        return dict(self.org.get(object, record_id))

    def records(self, object: str) -> list[dict[str, Any]]:
        with self.org.lock:
            return [dict(r) for r in self.org.records[object_name(object)].values()]

    def tasks(self) -> list[dict[str, Any]]:
        return self.records("Task")

    def expire_sessions(self) -> None:
        """Every session issued so far (the initial ``token`` too) answers 401 from now on."""
        self.app.tokens = set()

    @property
    def api_used(self) -> int:
        return self.app.api_used

    @api_used.setter
    def api_used(self, value: int) -> None:
        self.app.api_used = value

    @property
    def logins(self) -> int:
        return self.app.logins
