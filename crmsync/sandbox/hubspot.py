"""A sandbox HubSpot: the CRM v3 endpoints crmsync uses, over plain HTTP on 127.0.0.1.

    with HubSpotSandbox(lag=0.5, rate_limit=(10, 2.0)) as hs:
        cid = hs.seed_contact({"firstname": "Omar", "phone": "055 123 4567"})
        connector = HubSpotConnector(hs.settings(), redis)
        hs.add_fault(match="POST /crm/v3/objects/calls$", drop=True)   # faults: see SandboxServer

Served: contacts and calls search / get / create / update / batch read, create and update
(at most 100 inputs; one invalid input refuses the whole batch with 400, unknown ids give
207 multi-status with the others done), the properties API for both. Search takes ``IN``
with at most 100 values per filter (``hubspot_portal.MAX_IN_VALUES``). Like HubSpot, it refuses a wrong
bearer token (401 ``INVALID_AUTHENTICATION``), keeps a rolling request limit (429
``TEN_SECONDLY_ROLLING`` with ``Retry-After``) and a separate per-second search limit
(429 ``SECONDLY``), sends ``X-HubSpot-RateLimit-*`` headers except on search and
``X-HubSpot-Correlation-Id`` everywhere, and answers errors with its JSON error body.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.hubspot_api import Handlers, HubSpotError, error_body
from crmsync.sandbox.hubspot_portal import Portal
from crmsync.sandbox.server import HostedSandbox, SandboxServer
from crmsync.sub_settings import HubSpotSettings

DEFAULT_TOKEN = "pat-na1-sandbox-0000"
DAILY_LIMIT = 250_000

ROUTES = Map(
    [
        Rule("/crm/v3/objects/<kind>/search", methods=["POST"], endpoint="search"),
        Rule("/crm/v3/objects/<kind>/batch/<op>", methods=["POST"], endpoint="batch"),
        Rule("/crm/v3/objects/<kind>", methods=["POST"], endpoint="create"),
        Rule("/crm/v3/objects/<kind>/<rid>", methods=["GET"], endpoint="get"),
        Rule("/crm/v3/objects/<kind>/<rid>", methods=["PATCH"], endpoint="update"),
        Rule("/crm/v3/objects/<kind>/<rid>", methods=["DELETE"], endpoint="archive"),
        Rule("/crm/v3/properties/<kind>", methods=["GET"], endpoint="properties"),
        Rule("/crm/v3/properties/<kind>/<name>", methods=["GET"], endpoint="property"),
    ],
    strict_slashes=False,
)


class RollingWindow:
    """At most ``limit`` requests in any ``seconds``-long rolling window."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until room)."""
        now = time.monotonic()
        with self._lock:
            while self._hits and now - self._hits[0] >= self.seconds:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0, self.seconds - (now - self._hits[0])
            self._hits.append(now)
            return True, self.limit - len(self._hits), 0.0


class HubSpotSandbox(HostedSandbox):
    """An in-memory HubSpot portal served over HTTP. ``rate_limit`` and ``search_rate_limit``
    are (requests, seconds) or None for no limit; ``lag`` is the search index lag in seconds."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        lag: float = 0.0,
        rate_limit: tuple[int, float] | None = (100, 10.0),
        search_rate_limit: tuple[int, float] | None = (4, 1.0),
        owners: tuple[str, ...] = ("1001", "1002", "1003"),
        tls: bool = False,
    ) -> None:
        self.token = token
        self.server = SandboxServer(self._app, tls=tls)
        self._config = (lag, rate_limit, search_rate_limit, owners)
        self.reset()

    def reset(self) -> None:
        """Back to an empty portal with the configured limits and lag: no records, requests
        or faults (lets tests share one running server)."""
        lag, rate_limit, search_rate_limit, owners = self._config
        self.portal = Portal(lag=lag, owners=owners)
        self.handlers = Handlers(self.portal)
        self.general = RollingWindow(*rate_limit) if rate_limit else None
        self.search_limit = RollingWindow(*search_rate_limit) if search_rate_limit else None
        self.server.requests.clear()
        self.server.clear_faults()

    # -- test helpers (the life cycle is HostedSandbox's) -------------------------------------
    @property
    def lag(self) -> float:
        return self.portal.lag

    @lag.setter
    def lag(self, seconds: float) -> None:
        self.portal.lag = seconds

    def settings(self, **overrides: Any) -> HubSpotSettings:
        """``HubSpotSettings`` pointing at this sandbox, with its token."""
        values: dict[str, Any] = {"access_token": self.token, "base_url": self.url, **overrides}
        return HubSpotSettings(**values)

    def seed_contact(self, properties: dict[str, Any], *, indexed: bool = True) -> str:
        """Store a contact as if typed in HubSpot's UI (no validation); returns its id.
        ``indexed=False`` makes it subject to the index lag like an API-created one."""
        values = {k: ("" if v is None else str(v)) for k, v in properties.items()}
        return self.portal.insert("contacts", values, indexed=indexed).id

    def seed_company(self, properties: dict[str, Any]) -> str:
        """A company, as typed in HubSpot's UI; make it a contact's primary company by seeding
        the contact with ``associatedcompanyid``."""
        return self.portal.insert("companies", {k: str(v) for k, v in properties.items()}, indexed=True).id

    def seed_deal(self, properties: dict[str, Any], contacts: tuple[str, ...] = ()) -> str:
        """A deal associated with ``contacts`` (deal → contact, type 3)."""
        assoc = [
            {"to": {"id": c}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}
            for c in contacts
        ]
        values = {"pipeline": "default", **{k: str(v) for k, v in properties.items()}}
        return self.portal.insert("deals", values, indexed=True, associations=assoc).id

    def deal(self, rid: str) -> dict[str, str | None]:
        record = self.portal.get("deals", rid)
        if record is None:
            raise KeyError(rid)
        return dict(record.properties)

    def _with_associations(self, kind: str) -> dict[str, dict[str, Any]]:
        with self.portal.lock:
            return {
                rid: {
                    **r.properties,
                    "_associations": [a["to"]["id"] for a in r.associations],
                    "_types": sorted(t["associationTypeId"] for a in r.associations for t in a["types"]),
                }
                for rid, r in self.portal.records[kind].items()
            }

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Tasks by id: properties plus ``_associations`` (ids) and ``_types`` (association type ids)."""
        return self._with_associations("tasks")

    def contact(self, rid: str) -> dict[str, str | None]:
        record = self.portal.get("contacts", rid)
        if record is None:
            raise KeyError(rid)
        return dict(record.properties)

    @property
    def contacts(self) -> dict[str, dict[str, str | None]]:
        with self.portal.lock:
            return {rid: dict(r.properties) for rid, r in self.portal.records["contacts"].items()}

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        """Calls by id: their properties plus ``_associations`` (the contact, company and deal
        ids) and ``_types`` (the association type ids)."""
        return self._with_associations("calls")

    def calls_for(self, external_id: str) -> list[dict[str, Any]]:
        return [c for c in self.calls.values() if c.get("hs_call_external_id") == external_id]

    def statuses(self, pattern: str = ".*") -> list[int]:
        return [r.status for r in list(self.requests) if re.search(pattern, f"{r.method} {r.path}")]

    def last_status(self) -> int:
        """The HTTP status of the last request answered."""
        return self.requests[-1].status

    def max_per_window(self, seconds: float, pattern: str = ".*", *, exclude_search: bool = True) -> int:
        """The most requests received in any ``seconds``-long window (arrival times)."""
        times = sorted(
            r.at
            for r in list(self.requests)
            if re.search(pattern, f"{r.method} {r.path}") and not (exclude_search and r.path.endswith("/search"))
        )
        best, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- HTTP --------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._dispatch(request)
        response.headers["X-HubSpot-Correlation-Id"] = str(uuid.uuid4())
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return _json(
                401,
                error_body(
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        try:
            endpoint, args = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            code = exc.code or 404
            return _json(code, error_body(f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND"))
        is_search = endpoint == "search"
        limited, remaining = self._limit(is_search)
        if limited is not None:
            return limited
        try:
            payload = request.get_json(silent=True) if request.data else None
            if request.data and payload is None:
                raise HubSpotError(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
            handler = getattr(self.handlers, endpoint)
            status, body = handler(payload=payload or {}, query=request.args, **args)
        except HubSpotError as exc:
            status, body = exc.status, exc.body()
        response = _json(status, body)
        if not is_search and self.general is not None:
            window = self.general
            response.headers.update(
                {
                    "X-HubSpot-RateLimit-Max": str(window.limit),
                    "X-HubSpot-RateLimit-Remaining": str(remaining),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window.seconds * 1000)),
                    "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
                    "X-HubSpot-RateLimit-Daily-Remaining": str(DAILY_LIMIT - self.server.count()),
                    "X-HubSpot-RateLimit-Secondly": str(max(1, int(window.limit / window.seconds))),
                    "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, int(remaining / window.seconds))),
                }
            )
        return response

    def _limit(self, is_search: bool) -> tuple[Response | None, int]:
        """A 429 when the request's window is full (else None), and the room left."""
        window = self.search_limit if is_search else self.general
        if window is None:
            return None, 0
        allowed, remaining, wait = window.hit()
        if allowed:
            return None, remaining
        policy = "SECONDLY" if is_search else "TEN_SECONDLY_ROLLING"
        body = {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": "publicapi:sandbox",
        }
        response = _json(429, body)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response, 0


def _json(status: int, body: Any) -> Response:
    if status == 204:
        return Response(status=204)
    return Response(json.dumps(body), status=status, content_type="application/json;charset=utf-8")
