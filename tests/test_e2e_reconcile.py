"""Reconciliation end to end: real gunicorn (Procfile web), two real RQ workers (Procfile
worker) running the sweeps on their own, real Redis, the sandbox Hamsa API and a sandbox
HubSpot. One set of processes serves the whole module; each test uses its own calls."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.hamsa import sweep
from crmsync.harness import start_sandbox
from crmsync.metrics import snapshot
from crmsync.record import SyncRecord
from crmsync.sandbox.hamsa import HamsaSandbox
from tests.conftest import FIXTURES, ROOT, free_port, key_problems
from tests.processes import Process, crmsync_env, run_cli, wait_for, wait_http

pytestmark = pytest.mark.e2e
TOKEN = "e2e-reconcile-token"
INTERVAL = 3  # seconds between sweeps
GRACE = 2  # seconds
CONVERSATION = "GET /v1/voice-agents/conversation/"


class Stack:
    def __init__(self, redis_url: str, tmp: Path) -> None:
        self.tmp = tmp
        self.mappings = tmp / "mappings"
        shutil.copytree(ROOT / "mappings", self.mappings)
        self.hubspot = start_sandbox("hubspot", rate_limit=None, search_rate_limit=None)
        self.hamsa = HamsaSandbox().start()
        self.port = free_port()
        self.env = crmsync_env(
            "hubspot",
            self.hubspot,
            redis_url,
            TOKEN,
            self.mappings,
            PORT=str(self.port),
            WEB_CONCURRENCY="1",
            HAMSA_API_KEY=self.hamsa.api_key,
            HAMSA_BASE_URL=self.hamsa.url,
            HAMSA_RECONCILE_INTERVAL=str(INTERVAL),
            HAMSA_RECONCILE_GRACE=str(GRACE),
            HAMSA_RECONCILE_LOOKBACK="900",
            HUBSPOT_RATE_LIMIT="10000/10s",
            HUBSPOT_SEARCH_RATE_LIMIT="1000/s",
        )
        self.redis = Redis.from_url(redis_url)
        self.redis.flushdb()
        self.web = Process("web", self.env, tmp)
        self.workers = [Process("worker", self.env, tmp) for _ in range(2)]
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def restart_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = [Process("worker", self.env, self.tmp) for _ in range(2)]

    def post(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"http://127.0.0.1:{self.port}/webhooks/hamsa",
            json=body,
            timeout=5,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, timeout=120)

    def state(self, call_id: str) -> dict[str, Any]:
        record = SyncRecord.load(self.redis, call_id)
        return asdict(record) if record else {}

    def wait_synced(self, call_id: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.state(call_id)).get("state") in ("synced", "partial") and s,
            timeout,
            interval=0.3,
            what=f"{call_id} synced",
        )

    def activities(self, external_id: str) -> list[dict[str, Any]]:
        return self.hubspot.calls_for(external_id)

    def stop(self) -> None:
        for process in [self.web, *self.workers]:
            process.stop()
        self.hamsa.stop()
        self.hubspot.stop()
        self.redis.close()


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(redis_url, tmp_path_factory.mktemp("e2e-reconcile"))
    try:
        yield running
        # What tests/conftest.py's redis fixture checks, for the keys these processes wrote.
        problems = key_problems(running.redis)
        assert not problems, "keys outside crmsync.store.KEY_FAMILIES:\n" + "\n".join(problems)
    finally:
        running.stop()


def number(i: int) -> str:
    """A Saudi mobile number of its own for each call (each caller is created once)."""
    return f"+96650{i:07d}"


def webhook_for(conversation_id: str, call_id: str, user_number: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / "call_ended_documented.json").read_text())
    body = copy.deepcopy(body)
    body["callId"] = call_id
    body["data"]["data"]["conversationId"] = conversation_id
    body["data"]["data"]["callParams"]["userNumber"] = user_number
    return body


def test_ten_calls_seven_webhooks_all_ten_in_the_crm_once(stack: Stack) -> None:
    calls = [(str(uuid.uuid4()), number(100 + i)) for i in range(10)]
    for i, (conversation, user) in enumerate(calls[:7]):
        answer = stack.post(webhook_for(conversation, f"call_ten-{i}", user))
        assert answer.status_code == 200 and answer.json()["call_id"] == f"call_ten-{i}"
    for conversation, user in calls:  # Hamsa's history lists all ten
        stack.hamsa.add_call(
            call_id=conversation,
            ended_ago=60,
            user_number=user,
            outcome={"budget": "1000"},
            transcript=[{"Agent": "Hello"}],
        )
    for i in range(7):
        stack.wait_synced(f"call_ten-{i}")
    for conversation, _ in calls[7:]:
        record = stack.wait_synced(conversation, timeout=60)
        assert record["source"] == "reconcile" and record["unavailable"] == []
    assert [len(stack.activities(f"call_ten-{i}")) for i in range(7)] == [1] * 7
    assert [len(stack.activities(c)) for c, _ in calls] == [0] * 7 + [1] * 3
    assert stack.hamsa.count(CONVERSATION) == 3  # nothing fetched for the calls already received
    status = stack.cli("status", calls[8][0])
    assert status.returncode == 0 and "source   reconcile" in status.stdout
    ready = requests.get(f"http://127.0.0.1:{stack.port}/readyz", timeout=5).json()
    assert any("reached crmsync only through Hamsa's call history" in w for w in ready["warnings"])
    assert snapshot(stack.redis)["webhooks_missed_total"][""] >= 3
    logs = stack.web.output() + "".join(w.output() for w in stack.workers)
    assert f'"call_id": "{calls[8][0]}"' in logs  # the sweep's log lines carry the call id
    for secret in (*(user[1:] for _, user in calls), stack.hamsa.api_key, TOKEN, "Hello"):
        assert secret not in logs, secret


def test_a_webhook_after_the_sweep_queued_its_call_is_still_one_activity(stack: Stack) -> None:
    conversation, user = str(uuid.uuid4()), number(200)
    stack.hamsa.add_call(call_id=conversation, ended_ago=60, user_number=user, outcome=None)
    first = stack.wait_synced(conversation)
    assert first["unavailable"] == ["outcome", "transcript"]
    answer = stack.post(webhook_for(conversation, "call_late-webhook", user))
    assert answer.json() == {"status": "accepted", "call_id": conversation, "event": "call.ended"}
    wait_for(lambda: stack.state(conversation).get("events_synced") == 2, 60, what="the webhook's event synced")
    assert len(stack.activities(conversation)) == 1 and stack.activities("call_late-webhook") == []
    [activity] = stack.activities(conversation)
    assert "Riyadh" in activity["hs_call_body"]  # the webhook's transcript and outcome reached the same activity


def test_two_workers_run_one_sweep_at_a_time(stack: Stack) -> None:
    stack.hamsa.add_fault(match="GET /v1/voice-agents/conversations/minimal-list", delay=1.5, seconds=6)
    queue = Queue(store.QUEUE_NAME, connection=stack.redis, serializer=JSONSerializer)
    jobs = [queue.enqueue("crmsync.jobs.reconcile") for _ in range(2)]
    results = wait_for(
        lambda: (
            all(j.get_status(refresh=True) == "finished" for j in jobs)
            and [Job.fetch(j.id, connection=stack.redis, serializer=JSONSerializer).return_value() for j in jobs]
        ),
        60,
        what="both sweep jobs finished",
    )
    states = sorted(r["state"] for r in results)
    assert states.count("locked") >= 1 and states.count("done") <= 1, results
    runs = sorted((r["started"], r["ended"]) for r in sweep.recent_runs(stack.redis))
    assert all(later[0] >= earlier[1] for earlier, later in zip(runs, runs[1:], strict=False)), "two sweeps overlapped"
    assert len(runs) >= 2  # the workers also sweep on their own, every few seconds


def test_no_answer_calls_are_logged_only_when_the_mapping_asks(stack: Stack) -> None:
    missed = stack.hamsa.add_call(ended_ago=30, status="NO_ANSWER", duration=0, user_number=number(300))
    asked = time.time()
    wait_for(
        lambda: any(r["started"] > asked + GRACE for r in sweep.recent_runs(stack.redis)),
        60,
        what="a sweep after the grace",
    )
    assert stack.state(missed) == {} and stack.activities(missed) == []
    mapping = stack.mappings / "hubspot.yaml"
    mapping.write_text(mapping.read_text().replace("crm: hubspot", "crm: hubspot\nstatuses: [completed, no_answer]", 1))
    try:
        stack.restart_workers()
        record = stack.wait_synced(missed, timeout=60)
        assert record["source"] == "reconcile"
        [activity] = stack.activities(missed)
        assert activity["hs_call_status"] == "NO_ANSWER"
    finally:
        mapping.write_text((ROOT / "mappings" / "hubspot.yaml").read_text())


def test_hamsa_answering_503_for_a_while_loses_nothing(stack: Stack) -> None:
    stack.hamsa.add_fault(match="GET /v1/voice-agents/", status=503, body={"message": "down"}, seconds=8)
    calls = [stack.hamsa.add_call(ended_ago=60, user_number=number(400 + i)) for i in range(3)]
    for call in calls:
        stack.wait_synced(call, timeout=90)
    assert [len(stack.activities(c)) for c in calls] == [1, 1, 1]
    assert snapshot(stack.redis)["hamsa_requests_total"].get("status=503", 0) > 0


def test_backfill_dry_run_writes_nothing_and_a_second_backfill_queues_nothing_new(stack: Stack) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    calls = [stack.hamsa.add_call(created_at=old + timedelta(minutes=i), user_number=number(500 + i)) for i in range(3)]
    since = (old - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (old + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dry = stack.cli("backfill", "--since", since, "--until", until, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["queued"] == 3
    assert [stack.state(c) for c in calls] == [{}, {}, {}]
    assert [store.load_events(stack.redis, c) for c in calls] == [[], [], []]
    first = stack.cli("backfill", "--since", since, "--until", until, "--json")
    assert json.loads(first.stdout)["queued"] == 3
    for call in calls:
        assert stack.wait_synced(call)["source"] == "backfill"
    again = json.loads(stack.cli("backfill", "--since", since, "--until", until, "--json").stdout)
    assert (again["queued"], again["already_in_crmsync"]) == (0, 3)
    assert [len(stack.activities(c)) for c in calls] == [1, 1, 1]


def test_a_call_whose_call_ended_was_lost_after_call_started_is_logged_once(stack: Stack) -> None:
    conversation, user = str(uuid.uuid4()), number(600)
    started = json.loads((FIXTURES / "call_started.json").read_text())
    started["callId"] = conversation  # Hamsa's callId is the conversation id; its call.ended never comes
    started["data"]["callParams"]["userNumber"] = user
    assert stack.post(started).json() == {"status": "accepted", "call_id": conversation, "event": "call.started"}
    stack.hamsa.add_call(call_id=conversation, ended_ago=60, user_number=user, outcome={"budget": "9"})
    record = stack.wait_synced(conversation)
    assert record["source"] == "reconcile"
    assert len(stack.activities(conversation)) == 1
    late = stack.post(webhook_for(conversation, conversation, user))  # the call.ended after all
    assert late.json() == {"status": "accepted", "call_id": conversation, "event": "call.ended"}
    wait_for(lambda: stack.state(conversation).get("events_synced") == 2, 60, what="the late call.ended synced")
    assert len(stack.activities(conversation)) == 1
