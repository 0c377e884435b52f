"""What both sandbox CRMs share: a threaded server, a request log and injected faults.

A sandbox is a WSGI app run by werkzeug's threaded server in a background thread, over
TLS when asked (a ``trustme`` CA whose certificate covers 127.0.0.1). Every request is
recorded so tests can count them; faults (a status, a delay, a dropped response; once,
N times or always) are matched by method and path.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]
    at: float
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """Answer matching requests with ``status``/``body`` (after ``delay`` seconds), or handle
    them and then drop the response (``drop=True``), or handle them and then answer
    ``status``/``body`` instead (``commit=True``: "502 after commit", the work is done but
    its answer is lost). Applies ``times`` times (None: always)."""

    match: str = ".*"  # regex on "METHOD /path"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    commit: bool = False
    times: int | None = 1
    until: float | None = None  # monotonic deadline, for "503 for 30 seconds"

    def applies(self, line: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.until is not None and time.monotonic() > self.until:
            return False
        return re.search(self.match, line) is not None


class _QuietHandler(WSGIRequestHandler):
    """No request lines in the log: a search URL carries the phone number searched for."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """Runs ``app`` on 127.0.0.1 in a thread. Use as a context manager or start()/stop()."""

    def __init__(self, app: WSGIApp, *, tls: bool = False, port: int = 0, cert_dir: Path | None = None):
        self.app = app
        self.tls = tls
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._port = port
        self._cert_dir = cert_dir
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_path: Path | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> SandboxServer:
        ssl_context = None
        if self.tls:
            ssl_context = self._make_tls()
        self._server = make_server(
            "127.0.0.1", self._port, self._wsgi, threaded=True, ssl_context=ssl_context, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the sandbox is not started"
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _make_tls(self) -> Any:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        directory = self._cert_dir or Path(__import__("tempfile").mkdtemp(prefix="crmsync-sandbox-"))
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "sandbox-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context

    # -- faults and the request log ----------------------------------------------------
    def add_fault(self, **kwargs: Any) -> Fault:
        """``add_fault(match="POST /composite", status=503, times=3)``; ``seconds=30`` for a window."""
        seconds = kwargs.pop("seconds", None)
        if seconds is not None:
            kwargs.setdefault("times", None)
            kwargs["until"] = time.monotonic() + seconds
        fault = Fault(**kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def count(self, pattern: str = ".*") -> int:
        """How many recorded requests match ``pattern`` (regex on "METHOD /path")."""
        return sum(1 for r in list(self.requests) if re.search(pattern, f"{r.method} {r.path}"))

    def _take_fault(self, line: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.applies(line):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        record = RecordedRequest(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", ""),
            query=environ.get("QUERY_STRING", ""),
            body=body,
            headers={k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")},
            at=time.time(),
        )
        with self._lock:
            self.requests.append(record)
        fault = self._take_fault(f"{record.method} {record.path}")
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.status is not None and fault.commit:
            list(self.app(environ, lambda status, headers, *a: None))  # the work is done; its answer is lost
        if fault and fault.status is not None:
            record.status = fault.status
            payload = fault.body if isinstance(fault.body, bytes) else json.dumps(fault.body).encode()
            headers = {"Content-Type": "application/json", **fault.headers}
            start_response(f"{fault.status} Injected", list(headers.items()))
            return [payload]

        def recording_start_response(status: str, headers: list[tuple[str, str]], *a: Any) -> Any:
            record.status = int(status.split()[0])
            return start_response(status, headers, *a)

        result = list(self.app(environ, recording_start_response))
        if fault and fault.drop:
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return result


class HostedSandbox:
    """What every sandbox CRM or API shares: it runs on a ``SandboxServer`` (``self.server``)
    and delegates its life cycle, address, request log and faults to it."""

    server: SandboxServer

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    def add_fault(self, **kwargs: Any) -> Fault:
        """See ``SandboxServer.add_fault``; ``match`` is a regex on ``"METHOD /path"``."""
        return self.server.add_fault(**kwargs)

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def count(self, pattern: str = ".*") -> int:
        """How many recorded requests match ``pattern`` (regex on ``"METHOD /path"``)."""
        return self.server.count(pattern)
