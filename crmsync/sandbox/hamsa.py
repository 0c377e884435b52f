"""A sandbox Hamsa API: the call history crmsync reconciles against (reference §9).

    with HamsaSandbox() as hamsa:
        cid = hamsa.add_call(user_number="+966501234567", duration=95, outcome={"budget": "80000"})
        hamsa.add_fault(match="GET /v1/voice-agents/conversations/minimal-list", status=503, seconds=10)
        settings_env = {"HAMSA_BASE_URL": hamsa.url, "HAMSA_API_KEY": hamsa.api_key}

Served, behind ``Authorization: Token <key>`` (anything else: 401):

* ``GET /v1/voice-agents/conversations/minimal-list`` with ``voiceAgentId``, ``status``
  (repeated), ``startTime``/``endTime`` (inclusive bounds on ``createdAt``, epoch ms),
  ``page`` (1-indexed) and ``perPage`` (default 100, at most 200: a larger value is cut to
  200), newest first; ``data.total`` counts the project's calls, ``data.filtered`` those
  that match.
* ``GET /v1/voice-agents/conversation/<id>``: one call as documented (``callDuration``,
  ``mediaUrl``, ``callParams``, ``callAnalysis``, ``logs``), 404 for an unknown id.

``rate_limit=(requests, seconds)`` answers 429 with ``Retry-After`` past that rate; faults
(a 5xx, a 429, a delay, a dropped answer) come from ``SandboxServer``.
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.hubspot import RollingWindow
from crmsync.sandbox.server import HostedSandbox, SandboxServer

DEFAULT_API_KEY = "hamsa-sandbox-key-0000"
DEFAULT_AGENT = "1df8a0c5-d1c8-44bb-848f-8accf58f32e2"
LIST_PATH = "/v1/voice-agents/conversations/minimal-list"
CONVERSATION_PATH = re.compile(r"^/v1/voice-agents/conversation/([^/]+)$")
PER_PAGE_DEFAULT = 100
PER_PAGE_MAX = 200
STATUSES = ("PENDING", "IN_PROGRESS", "COMPLETED", "NO_ANSWER", "FAILED", "FORWARDED", "TERMINATED")


@dataclass
class SandboxCall:
    """One call in the sandbox's history. ``outcome=None`` leaves ``callAnalysis`` empty
    (Hamsa does not document that the conversation carries the outcome)."""

    id: str
    created_at: datetime
    status: str = "COMPLETED"
    agent_id: str = DEFAULT_AGENT
    agent_name: str = "Support Agent"
    duration: int = 60  # seconds
    user_number: str | None = "+201095987769"
    machine_number: str | None = "+16592225145"
    channel: str = "Telephone"
    transcript: list[dict[str, str]] = field(default_factory=list)  # [{"Agent": "Hello"}]
    outcome: dict[str, Any] | None = None
    media_url: str | None = None

    def minimal(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": _iso(self.created_at),
            "status": self.status,
            "voiceAgentId": self.agent_id,
            "agentName": self.agent_name,
            "duration": self.duration,
            "channelType": self.channel,
            "callParams": {"machineNumber": self.machine_number, "userNumber": self.user_number},
        }

    def full(self) -> dict[str, Any]:
        logs = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/{i}")),
                "timestamp": _iso(self.created_at + timedelta(seconds=i * 5)),
                "payload": {"type": "transcript", "speaker": speaker, "text": text},
                "createdAt": _iso(self.created_at),
                "updatedAt": _iso(self.created_at),
            }
            for i, turn in enumerate(self.transcript)
            for speaker, text in turn.items()
        ]
        analysis: dict[str, Any] = {"outcomeResult": self.outcome} if self.outcome is not None else {}
        return {
            "id": self.id,
            "status": self.status,
            "type": "VOICE_AGENTS",
            "voiceAgentId": self.agent_id,
            "agentName": self.agent_name,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.created_at + timedelta(seconds=self.duration)),
            "title": f"Call with {self.agent_name}",
            "mediaUrl": self.media_url,
            "callParams": {"userNumber": self.user_number, "machineNumber": self.machine_number},
            "callDuration": self.duration,
            "channelType": self.channel.upper(),
            "callAnalysis": analysis,
            "logs": logs,
            "performanceMetrics": {},
        }


class HamsaSandbox(HostedSandbox):
    """Hamsa's call history in memory, served over HTTP on 127.0.0.1."""

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, rate_limit: tuple[int, float] | None = None, tls: bool = False
    ) -> None:
        self.api_key = api_key
        self.server = SandboxServer(self._app, tls=tls)
        self._rate = rate_limit
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """No calls, requests or faults (lets tests share one running server)."""
        with self._lock:
            self.calls: dict[str, SandboxCall] = {}
        self.limit = RollingWindow(*self._rate) if self._rate else None
        self.server.requests.clear()
        self.server.clear_faults()

    # -- test helpers (the life cycle, requests and faults are HostedSandbox's) ----------------
    def add_call(
        self,
        *,
        call_id: str | None = None,
        ended_ago: float | None = None,
        created_at: datetime | None = None,
        **values: Any,
    ) -> str:
        """Add a call to the history; returns its id (the conversation id). ``ended_ago``
        (seconds) places its end that long before now; else ``created_at``, else now."""
        duration = int(values.get("duration", 60))
        if created_at is None:
            created_at = datetime.now(UTC) - timedelta(seconds=(ended_ago or 0) + duration)
        call = SandboxCall(id=call_id or str(uuid.uuid4()), created_at=created_at, **values)
        with self._lock:
            self.calls[call.id] = call
        return call.id

    # -- HTTP --------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._dispatch(Request(environ))(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.headers.get("Authorization", "") != f"Token {self.api_key}":
            return _json(401, {"success": False, "message": "Unauthorized: invalid or missing API key"})
        if self.limit is not None:
            allowed, _, wait = self.limit.hit()
            if not allowed:
                response = _json(429, {"success": False, "message": "Too many requests"})
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
        if request.method != "GET":
            return _json(405, {"success": False, "message": "Method not allowed"})
        if request.path == LIST_PATH:
            return self._list(request)
        found = CONVERSATION_PATH.match(request.path)
        if found:
            with self._lock:
                call = self.calls.get(found.group(1))
            if call is None:
                return _json(404, {"success": False, "message": "Conversation not found"})
            return _json(200, {"success": True, "message": "success", "data": call.full()})
        return _json(404, {"success": False, "message": f"No route for {request.path}"})

    def _list(self, request: Request) -> Response:
        try:
            page = int(request.args.get("page", 1))
            per_page = min(int(request.args.get("perPage", PER_PAGE_DEFAULT)), PER_PAGE_MAX)
            start = _ms(request.args.get("startTime"))
            end = _ms(request.args.get("endTime"))
        except ValueError:
            return _json(400, {"success": False, "message": "page, perPage, startTime and endTime are integers"})
        statuses = request.args.getlist("status")
        unknown = [s for s in statuses if s not in STATUSES]
        if page < 1 or per_page < 1 or unknown:
            return _json(400, {"success": False, "message": f"invalid query: page, perPage or status {unknown}"})
        agent = request.args.get("voiceAgentId")
        with self._lock:
            every = list(self.calls.values())
        matching = [
            c
            for c in every
            if (agent is None or c.agent_id == agent)
            and (not statuses or c.status in statuses)
            and (start is None or _epoch_ms(c.created_at) >= start)
            and (end is None or _epoch_ms(c.created_at) <= end)
        ]
        matching.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        chunk = matching[(page - 1) * per_page : page * per_page]
        data = {"total": len(every), "filtered": len(matching), "calls": [c.minimal() for c in chunk]}
        return _json(200, {"success": True, "message": "success", "data": data})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
