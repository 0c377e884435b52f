"""The Hamsa API client against the sandbox Hamsa API: paging, the 200 cap, retries, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from crmsync.errors import CredentialsError, PermanentError
from crmsync.hamsa.client import HamsaClient, HamsaUnavailable
from crmsync.metrics import Metrics, snapshot
from crmsync.sandbox.hamsa import DEFAULT_AGENT, LIST_PATH, HamsaSandbox

LIST = f"GET {LIST_PATH}"


def window() -> tuple[int, int]:
    now = datetime.now(UTC)
    return int((now - timedelta(hours=3)).timestamp() * 1000), int(now.timestamp() * 1000)


def client_for(hamsa: HamsaSandbox, waits: list[float] | None = None, **kw: object) -> HamsaClient:
    sleeps = waits if waits is not None else []
    return HamsaClient(hamsa.api_key, hamsa.url, sleep=sleeps.append, **kw)  # type: ignore[arg-type]


def test_sandbox_caps_pages_at_200_and_filters(hamsa: HamsaSandbox) -> None:
    for i in range(250):
        hamsa.add_call(
            ended_ago=600 + i,
            status="NO_ANSWER" if i % 5 == 0 else "COMPLETED",
            agent_id=DEFAULT_AGENT if i % 2 else "agent-b",
        )
    headers = {"Authorization": f"Token {hamsa.api_key}"}
    start, end = window()
    big = requests.get(
        hamsa.url + LIST_PATH, params={"perPage": 500, "startTime": start, "endTime": end}, headers=headers, timeout=5
    ).json()["data"]
    assert (len(big["calls"]), big["total"], big["filtered"]) == (200, 250, 250)
    default = requests.get(hamsa.url + LIST_PATH, headers=headers, timeout=5).json()["data"]
    assert len(default["calls"]) == 100
    only = requests.get(
        hamsa.url + LIST_PATH,
        headers=headers,
        timeout=5,
        params={"status": ["NO_ANSWER"], "voiceAgentId": "agent-b", "perPage": 200},
    ).json()["data"]
    assert only["filtered"] == 25 and {c["status"] for c in only["calls"]} == {"NO_ANSWER"}
    assert {c["voiceAgentId"] for c in only["calls"]} == {"agent-b"}
    older = requests.get(
        hamsa.url + LIST_PATH, headers=headers, timeout=5, params={"endTime": end - 700_000, "perPage": 200}
    ).json()["data"]
    assert older["filtered"] == 210  # created 660 + i seconds ago: i >= 40 is before endTime


def test_sandbox_refuses_a_wrong_key_and_unknown_conversations(hamsa: HamsaSandbox) -> None:
    wrong = requests.get(hamsa.url + LIST_PATH, headers={"Authorization": "Token nope"}, timeout=5)
    bearer = requests.get(hamsa.url + LIST_PATH, headers={"Authorization": f"Bearer {hamsa.api_key}"}, timeout=5)
    assert wrong.status_code == bearer.status_code == 401
    with client_for(hamsa) as client:
        assert client.conversation("no-such-call") is None


def test_client_pages_over_the_window_in_pages_of_200(hamsa: HamsaSandbox) -> None:
    ids = {hamsa.add_call(ended_ago=600 + i) for i in range(450)}
    start, end = window()
    with client_for(hamsa) as client:
        seen = [c["id"] for calls, _ in client.list_pages(start, end) for c in calls]
    assert set(seen) == ids and len(seen) == 450
    assert hamsa.count(LIST) == 3 and client.requests_made == 3


def test_client_reads_one_conversation(hamsa: HamsaSandbox) -> None:
    cid = hamsa.add_call(ended_ago=900, duration=95, outcome={"budget": "80000"}, transcript=[{"Agent": "Hello"}])
    with client_for(hamsa) as client:
        data = client.conversation(cid)
    assert data is not None
    assert (data["id"], data["callDuration"], data["callAnalysis"]["outcomeResult"]) == (cid, 95, {"budget": "80000"})


def test_429_waits_as_retry_after_says_and_5xx_backs_off(hamsa: HamsaSandbox, redis) -> None:
    hamsa.add_call(ended_ago=600)
    hamsa.add_fault(match=LIST, status=429, headers={"Retry-After": "7"}, times=1)
    hamsa.add_fault(match=LIST, status=503, times=2)
    waits: list[float] = []
    start, end = window()
    with client_for(hamsa, waits, metrics=Metrics(redis)) as client:
        pages = list(client.list_pages(start, end))
    assert len(pages) == 1 and len(pages[0][0]) == 1
    assert waits[0] == 7 and len(waits) == 3 and 2 <= waits[1] <= 4 and 4 <= waits[2] <= 8  # attempts 2 and 3
    counted = snapshot(redis)["hamsa_requests_total"]
    assert counted == {"status=429": 1, "status=503": 2, "status=200": 1}


def test_hamsa_down_for_good_raises_unavailable_after_the_tries(hamsa: HamsaSandbox) -> None:
    hamsa.add_fault(match=LIST, status=502, times=None)
    start, end = window()
    with client_for(hamsa, attempts=3) as client, pytest.raises(HamsaUnavailable) as raised:
        list(client.list_pages(start, end))
    assert hamsa.count(LIST) == 3
    assert "stayed unavailable after 3 tries" in str(raised.value) and raised.value.status == 502


def test_a_refused_key_is_a_configuration_problem_that_never_shows_the_key(hamsa: HamsaSandbox) -> None:
    start, end = window()
    with HamsaClient("sk-secret-wrong-key", hamsa.url) as client, pytest.raises(CredentialsError) as raised:
        list(client.list_pages(start, end))
    assert "Hamsa refused HAMSA_API_KEY (401)" in str(raised.value)
    assert "sk-secret" not in str(raised.value)
    assert hamsa.count(LIST) == 1  # not retried


def test_another_4xx_is_permanent(hamsa: HamsaSandbox) -> None:
    hamsa.add_fault(match=LIST, status=400, body={"success": False, "message": "startTime must be a number"})
    with client_for(hamsa) as client, pytest.raises(PermanentError, match="startTime must be a number"):
        list(client.list_pages(0, 1))


def test_the_sandbox_rate_limit_answers_429_with_retry_after_and_the_client_waits() -> None:
    with HamsaSandbox(rate_limit=(2, 30.0)) as limited:
        limited.add_call(ended_ago=600)
        waits: list[float] = []
        start, end = window()
        with client_for(limited, waits) as client:
            for _ in range(2):
                assert len(list(client.list_pages(start, end))) == 1
            with pytest.raises(HamsaUnavailable):
                list(client.list_pages(start, end))
        answered = [r.status for r in limited.requests]
        assert answered[:2] == [200, 200] and set(answered[2:]) == {429}
        assert waits and all(25 <= w <= 30 for w in waits)  # as Retry-After said, not a guess


def test_pages_smaller_than_asked_are_followed_to_the_end(hamsa: HamsaSandbox) -> None:
    ids = {hamsa.add_call(ended_ago=600 + i) for i in range(250)}
    start, end = window()
    with client_for(hamsa) as client:  # asks 300 a page; the sandbox caps at 200
        seen = [c["id"] for calls, _ in client.list_pages(start, end, per_page=300) for c in calls]
    assert set(seen) == ids and hamsa.count(LIST) == 2
