"""Hamsa's REST API as crmsync uses it: the call history and one conversation (reference §9).

``HamsaClient(api_key, base_url)`` sends ``Authorization: Token <key>`` with timeouts and
retries what is worth retrying:

* 429: waits as ``Retry-After`` says (at most ``MAX_WAIT`` seconds), then again;
* 5xx, timeouts, refused connections: jittered exponential backoff (1–2 s, 2–4 s, …);
* after ``attempts`` tries it raises ``HamsaUnavailable`` (a ``RetryableError``): the sweep
  stops there and the next one picks up from the watermark;
* 401 and 403 raise ``CredentialsError("hamsa", …)``: a configuration problem, not a bad call;
* another 4xx raises ``PermanentError``; 404 on a conversation returns None.

``on_wait`` (settable, e.g. the sweep's lock heartbeat) is called before and after every
wait between two tries: one request may retry for minutes, longer than a lock lives.

Every answer is counted in ``/metrics`` (``crmsync_hamsa_requests_total`` by status).
Error messages never hold the key.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from crmsync.errors import CredentialsError, PermanentError, RetryableError
from crmsync.metrics import Metrics

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 15)  # seconds: connect, read
ATTEMPTS = 5  # tries per request before HamsaUnavailable
MAX_BACKOFF = 30  # seconds between two tries at most
MAX_WAIT = 60  # seconds: the longest Retry-After honoured in one wait
PER_PAGE = 200  # calls per list page: Hamsa's hard cap
MAX_PAGES = 5_000  # pages per listing at most (a million calls): a list that never ends fails the run
LIST_PATH = "/v1/voice-agents/conversations/minimal-list"
CONVERSATION_PATH = "/v1/voice-agents/conversation/"
SERVICE = "hamsa"


class HamsaUnavailable(RetryableError):
    """Hamsa kept answering 429/5xx or did not answer; try again later."""


def backoff(attempt: int) -> float:
    """Jittered exponential: 1–2 s, 2–4 s, 4–8 s … at most ``MAX_BACKOFF``."""
    ceiling = min(MAX_BACKOFF, 2.0**attempt)
    return random.uniform(ceiling / 2, ceiling)


class HamsaClient:
    """One API key, one HTTP session. ``sleep`` is replaceable so that a benchmark can count
    waits; ``requests_made`` counts every request sent (retries included)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        metrics: Metrics | None = None,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = TIMEOUT,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Token {api_key}", "Accept": "application/json"})
        self._metrics = metrics
        self._attempts = max(1, attempts)
        self._sleep = sleep
        self._timeout = timeout
        self._max_wait = max_wait
        self.requests_made = 0
        self.on_wait: Callable[[], None] | None = None  # called around each wait between tries

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> HamsaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_pages(
        self, start_ms: int, end_ms: int, *, agent_id: str | None = None, per_page: int = PER_PAGE
    ) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """The calls created in ``[start_ms, end_ms]`` (epoch ms, inclusive), page by page:
        yields ``(calls, filtered)`` where ``filtered`` is Hamsa's count of matching calls.
        It stops once ``filtered`` calls came (so N calls cost ⌈N/200⌉ requests), at an empty
        page, or, when Hamsa gives no count, at a page shorter than asked. Pages smaller
        than asked (a lower cap) are followed too. One page is held at a time."""
        page, seen = 1, 0
        while page <= MAX_PAGES:
            params: dict[str, Any] = {"startTime": start_ms, "endTime": end_ms, "page": page, "perPage": per_page}
            if agent_id:
                params["voiceAgentId"] = agent_id
            data = self._get(LIST_PATH, params).get("data") or {}
            calls = [c for c in data.get("calls") or [] if isinstance(c, dict) and c.get("id")]
            filtered = int(data.get("filtered") or 0)
            yield calls, filtered
            seen += len(calls)
            if not calls or (seen >= filtered if filtered > 0 else len(calls) < per_page):
                return
            page += 1
        raise HamsaUnavailable(SERVICE, f"Hamsa's call list did not end after {MAX_PAGES} pages")

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """``data`` of one conversation, or None when Hamsa does not know the id."""
        body = self._get(CONVERSATION_PATH + quote(conversation_id, safe=""), {}, missing_ok=True)
        if body is None:
            return None
        data = body.get("data")
        return data if isinstance(data, dict) else None

    def check(self) -> None:
        """One cheap request (a one-call page); raises ``CredentialsError`` on a refused key."""
        now_ms = int(time.time() * 1000)
        self._get(LIST_PATH, {"startTime": now_ms - 60_000, "endTime": now_ms, "page": 1, "perPage": 1})

    # -- one request, with retries -----------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any], *, missing_ok: bool = False) -> Any:
        status: int | str = 0
        for attempt in range(1, self._attempts + 1):
            answer, status = self._try(path, params, missing_ok, attempt)
            if not isinstance(answer, Wait):
                return answer
            if attempt < self._attempts:
                self._wait(answer.seconds)
        raise HamsaUnavailable(
            SERVICE,
            f"Hamsa's API stayed unavailable after {self._attempts} tries ({_kind(path)}, last answer: {status})",
            status=status if isinstance(status, int) else 0,
        )

    def _wait(self, seconds: float) -> None:
        if self.on_wait is not None:
            self.on_wait()
        self._sleep(seconds)
        if self.on_wait is not None:
            self.on_wait()

    def _try(self, path: str, params: dict[str, Any], missing_ok: bool, attempt: int) -> tuple[Any, int | str]:
        """(the answer's JSON, or None for a 404 when ``missing_ok``, or a ``Wait``; the status)."""
        self.requests_made += 1
        try:
            response = self._session.get(self._base + path, params=params, timeout=self._timeout)
        except requests.RequestException as exc:
            self._count("network")
            log.warning("Hamsa API did not answer", extra={"error": type(exc).__name__, "endpoint": _kind(path)})
            return Wait(backoff(attempt)), "network"
        status = response.status_code
        self._count(status)
        if status == 200:
            try:
                return response.json(), status
            except ValueError:
                return Wait(backoff(attempt)), status
        if status == 404 and missing_ok:
            return None, status
        if status in (401, 403):
            raise CredentialsError(
                SERVICE, f"Hamsa refused HAMSA_API_KEY ({status}): set a valid API key from the Hamsa dashboard"
            )
        if status == 429:
            log.warning("Hamsa API rate limit; waiting", extra={"endpoint": _kind(path)})
            return Wait(min(self._max_wait, _retry_after(response) or backoff(attempt))), status
        if status >= 500:
            log.warning("Hamsa API error; retrying", extra={"status": status, "endpoint": _kind(path)})
            return Wait(min(self._max_wait, backoff(attempt))), status
        raise PermanentError(SERVICE, f"Hamsa refused the request ({status}): {_message(response)}", status=status)

    def _count(self, status: int | str) -> None:
        if self._metrics is not None:
            self._metrics.incr("hamsa_requests_total", status=status)


@dataclass(frozen=True)
class Wait:
    """Try again after ``seconds``."""

    seconds: float


def _kind(path: str) -> str:
    """The endpoint, without the conversation id."""
    return "conversation" if path.startswith(CONVERSATION_PATH) else "minimal-list"


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no message"
    text = body.get("message") if isinstance(body, dict) else None
    return str(text or response.reason or "no message")[:200]
