"""Every accepted call lands in the CRM exactly once: real gunicorn (Procfile web), real
RQ worker (Procfile worker), real Redis, and the real CRM client libraries talking to a
sandbox CRM."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from tests.conftest import ROOT, free_port
from tests.processes import Process, crmsync_env, run_cli, wait_for, wait_http

pytestmark = pytest.mark.e2e
TOKEN = "e2e-webhook-token"
DOCUMENTED_CALL = "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"
FLAT_CALL = "c2a41f0e-77b9-4f3c-a1d8-0b6e9e4c5d21"


class Stack:
    """web + worker processes around one sandbox CRM (``workers=0``: start them later with
    ``restart_worker``, e.g. once the calls of a burst are all queued)."""

    def __init__(
        self, crm: str, sandbox, redis_url: str, tmp: Path, mappings: Path, *, workers: int = 1, **extra: str
    ) -> None:
        self.crm, self.sandbox, self.tmp = crm, sandbox, tmp
        self.port = free_port()
        self.env = crmsync_env(
            crm, sandbox, redis_url, TOKEN, mappings, PORT=str(self.port), WEB_CONCURRENCY="1", **extra
        )
        self.web = Process("web", self.env, tmp)
        self.workers = [Process("worker", self.env, tmp) for _ in range(workers)]
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def post(self, body: bytes) -> requests.Response:
        return requests.post(
            f"http://127.0.0.1:{self.port}/webhooks/hamsa",
            data=body,
            timeout=5,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args)

    def status(self, call_id: str) -> dict:
        done = self.cli("status", call_id, "--json")
        return json.loads(done.stdout) if done.returncode == 0 else {}

    def wait_state(self, call_id: str, states: tuple[str, ...], timeout: float = 60) -> dict:
        return wait_for(
            lambda: (s := self.status(call_id)) and s.get("state") in states and s,
            timeout,
            interval=0.5,
            what=f"{call_id} in {states}",
        )

    def restart_worker(self) -> None:
        self.workers.append(Process("worker", self.env, self.tmp))

    def stop(self) -> None:
        for process in [self.web, *self.workers]:
            process.stop()


def activities(sandbox, call_id: str) -> list:
    if isinstance(sandbox, HubSpotSandbox):
        return sandbox.calls_for(call_id)
    return [t for t in sandbox.tasks() if t.get("CallObject") == call_id]


def person(sandbox, person_id: str) -> dict:
    if isinstance(sandbox, HubSpotSandbox):
        return sandbox.contact(person_id)
    return sandbox.get("Contact", person_id)


def seed(sandbox, phone: str, **fields) -> str:
    if isinstance(sandbox, HubSpotSandbox):
        return sandbox.seed_contact({"phone": phone, "lastname": "Alharbi", **fields})
    return sandbox.seed("Contact", {"Phone": phone, "LastName": "Alharbi", **fields})


@pytest.fixture
def mappings_dir(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    return target


@pytest.fixture(params=["hubspot", "salesforce"])
def stack(request, redis, redis_url, tmp_path, mappings_dir):
    sandbox = HubSpotSandbox().start() if request.param == "hubspot" else SalesforceSandbox().start()
    running = Stack(request.param, sandbox, redis_url, tmp_path, mappings_dir)
    try:
        yield running
    finally:
        running.stop()
        sandbox.stop()


@pytest.fixture
def hubspot_stack(redis, redis_url, tmp_path, mappings_dir):
    sandbox = HubSpotSandbox().start()
    running = Stack("hubspot", sandbox, redis_url, tmp_path, mappings_dir)
    try:
        yield running
    finally:
        running.stop()
        sandbox.stop()


def test_both_fixtures_land_once_with_mapped_fields(stack, fixture_path):
    sandbox = stack.sandbox
    # stored in a different format than the call sends it
    known = seed(sandbox, "050 123 4567")
    for _ in range(5):  # five deliveries of one event
        assert stack.post((fixture_path / "call_ended_documented.json").read_bytes()).status_code == 200
    assert stack.post((fixture_path / "call_ended_flat.json").read_bytes()).status_code == 200

    documented = stack.wait_state(DOCUMENTED_CALL, ("synced", "partial"))
    flat = stack.wait_state(FLAT_CALL, ("synced", "partial"))
    assert documented["person"]["id"] == known and not documented["person"]["created"]
    assert flat["person"]["created"] is True  # unknown caller, mapping says create
    assert len(activities(sandbox, DOCUMENTED_CALL)) == 1
    assert len(activities(sandbox, FLAT_CALL)) == 1
    fields = person(sandbox, known)
    budget = "budget" if stack.crm == "hubspot" else "Budget__c"
    assert float(fields[budget]) == 80000
    assert documented["fields"]["written"][budget] in ("80000", 80000, 80000.0)
    assert documented["activity_id"]
    logs = stack.web.output() + stack.workers[0].output()
    assert '"call_id": "' + DOCUMENTED_CALL in logs  # structured, with the call id
    for secret in (
        "966501234567",
        "501234567",
        "966551234567",
        "Around 80,000 riyals",
        "Not now, maybe next month",
        stack.sandbox.token,
        TOKEN,
    ):
        assert secret not in logs, secret


def test_on_multiple_most_recent(hubspot_stack, fixture_path):
    sandbox = hubspot_stack.sandbox
    older = sandbox.seed_contact({"phone": "+966501234567", "lastname": "Old"})
    time.sleep(1.1)  # a later lastmodifieddate, whatever the clock's resolution
    newer = sandbox.seed_contact({"mobilephone": "0501234567", "lastname": "New"})
    hubspot_stack.post((fixture_path / "call_ended_documented.json").read_bytes())
    record = hubspot_stack.wait_state(DOCUMENTED_CALL, ("synced", "partial"))
    assert record["person"]["id"] == newer != older


WRITE = {"hubspot": "POST /crm/v3/objects/calls$", "salesforce": "POST .*/composite$"}
BUDGET = {"hubspot": "budget", "salesforce": "Budget__c"}


def test_worker_killed_mid_call_gives_one_activity(stack, fixture_path):
    sandbox = stack.sandbox
    known = seed(sandbox, "+966501234567")
    # the activity write is slow: the worker is killed while it waits for the answer (the CRM writes it)
    sandbox.add_fault(match=WRITE[stack.crm], delay=3, times=1)
    stack.post((fixture_path / "call_ended_documented.json").read_bytes())
    wait_for(lambda: sandbox.count(WRITE[stack.crm]) >= 1, 30, what="the activity write")
    stack.workers[0].kill()
    stack.restart_worker()
    record = stack.wait_state(DOCUMENTED_CALL, ("synced", "partial"), timeout=150)
    assert len(activities(sandbox, DOCUMENTED_CALL)) == 1
    assert float(person(sandbox, known)[BUDGET[stack.crm]]) == 80000
    assert record["attempts"] >= 2


def test_crm_outage_of_30_seconds_delays_and_loses_nothing(stack, fixture_path):
    sandbox = stack.sandbox
    seed(sandbox, "+966501234567")
    down = (
        {"status": "error", "message": "down", "category": "INTERNAL"}
        if stack.crm == "hubspot"
        else [{"message": "Server busy", "errorCode": "SERVER_UNAVAILABLE"}]
    )
    sandbox.add_fault(match=".*", status=503, body=down, seconds=30)
    stack.post((fixture_path / "call_ended_documented.json").read_bytes())
    stack.post((fixture_path / "call_ended_flat.json").read_bytes())
    queued = wait_for(lambda: (s := stack.status(DOCUMENTED_CALL)).get("errors") and s, 20, what="a failed attempt")
    assert queued["state"] == "queued" and queued["errors"][0]["status"] == 503
    for call_id in (DOCUMENTED_CALL, FLAT_CALL):
        stack.wait_state(call_id, ("synced", "partial"), timeout=120)
        assert len(activities(sandbox, call_id)) == 1


def test_permanent_refusal_fails_and_replay_after_mapping_fix_syncs(hubspot_stack, fixture_path, mappings_dir):
    sandbox = hubspot_stack.sandbox
    mapping = mappings_dir / "hubspot.yaml"
    good = mapping.read_text()
    # a property HubSpot does not have: creating the unknown caller is refused (400)
    mapping.write_text(good.replace('lead_source: "{{ outcome.lead_source }}"', 'no_such_property: "{{ call.id }}"'))
    hubspot_stack.workers[0].stop()
    hubspot_stack.restart_worker()
    hubspot_stack.post((fixture_path / "call_ended_flat.json").read_bytes())
    failed = hubspot_stack.wait_state(FLAT_CALL, ("failed",))
    assert "no_such_property" in json.dumps(failed["errors"])
    assert activities(sandbox, FLAT_CALL) == []
    mapping.write_text(good)  # the fix, deployed: workers restart
    hubspot_stack.workers[-1].stop()
    hubspot_stack.restart_worker()
    assert hubspot_stack.cli("replay", "--failed").returncode == 0
    hubspot_stack.wait_state(FLAT_CALL, ("synced", "partial"))
    assert len(activities(sandbox, FLAT_CALL)) == 1


def test_a_storm_of_429s_ends_with_every_call_synced(redis, redis_url, tmp_path, mappings_dir, fixture_path):
    # The sandbox allows 4 requests / 2 s; crmsync is told the portal allows far more, so 429s come.
    # Each call alone (SYNC_BATCH_MAX=1): in one batch, 12 calls would need only 4 requests
    # (tests/test_e2e_burst.py has the batch's own 429s).
    sandbox = HubSpotSandbox(rate_limit=(4, 2.0)).start()
    running = Stack(
        "hubspot", sandbox, redis_url, tmp_path, mappings_dir, HUBSPOT_RATE_LIMIT="1000/10s", SYNC_BATCH_MAX="1"
    )
    try:
        body = json.loads((fixture_path / "call_ended_documented.json").read_text())
        ids = []
        for i in range(12):
            body["callId"] = f"storm-{i}"
            ids.append(body["callId"])
            assert running.post(json.dumps(body).encode()).status_code == 200
        for call_id in ids:
            record = running.wait_state(call_id, ("synced", "partial", "failed"), timeout=120)
            assert record["state"] != "failed"
        assert 429 in sandbox.statuses()
        assert sum(len(activities(sandbox, c)) for c in ids) == 12
    finally:
        running.stop()
        sandbox.stop()


def test_status_json_has_the_documented_keys(hubspot_stack, fixture_path):
    seed(hubspot_stack.sandbox, "+966501234567")
    hubspot_stack.post((fixture_path / "call_ended_documented.json").read_bytes())
    record = hubspot_stack.wait_state(DOCUMENTED_CALL, ("synced", "partial"))
    assert {"call_id", "state", "crm", "person", "activity_id", "fields", "errors", "attempts", "updated_at"} <= set(
        record
    )
    assert set(record["person"]) >= {"type", "id", "created"}
    assert record["crm"] == "hubspot"


def test_two_calls_from_one_new_number_create_one_person(redis, redis_url, tmp_path, mappings_dir, fixture_path):
    # HubSpot's search index lags 5 s: the second call cannot find the person the first created
    sandbox = HubSpotSandbox(lag=5.0).start()
    running = Stack("hubspot", sandbox, redis_url, tmp_path, mappings_dir)
    running.restart_worker()  # two workers, one call each
    try:
        body = json.loads((fixture_path / "call_ended_flat.json").read_text())
        for call_id in ("same-number-1", "same-number-2"):
            body["caller_info"]["call_id"] = call_id
            assert running.post(json.dumps(body).encode()).json()["status"] == "accepted"
        first = running.wait_state("same-number-1", ("synced", "partial"))
        second = running.wait_state("same-number-2", ("synced", "partial"))
        assert first["person"]["id"] == second["person"]["id"]
        assert len(sandbox.contacts) == 1
        assert len(activities(sandbox, "same-number-1")) == len(activities(sandbox, "same-number-2")) == 1
    finally:
        running.stop()
        sandbox.stop()


def test_sigterm_finishes_the_call_in_flight(hubspot_stack, fixture_path):
    sandbox = hubspot_stack.sandbox
    seed(sandbox, "+966501234567")
    sandbox.add_fault(match="POST /crm/v3/objects/calls$", delay=2, times=1)
    hubspot_stack.post((fixture_path / "call_ended_documented.json").read_bytes())
    wait_for(lambda: sandbox.count("POST /crm/v3/objects/calls$") >= 1, 30, what="the call create")
    worker = hubspot_stack.workers[0]
    worker.stop(timeout=30)  # the platform's SIGTERM: warm shutdown
    assert not worker.alive()
    record = hubspot_stack.status(DOCUMENTED_CALL)
    assert record["state"] in ("synced", "partial")
    assert len(activities(sandbox, DOCUMENTED_CALL)) == 1


def test_unknown_caller_is_skipped_when_the_mapping_says_skip(hubspot_stack, fixture_path, mappings_dir):
    mapping = mappings_dir / "hubspot.yaml"
    mapping.write_text(mapping.read_text().replace("on_missing: create", "on_missing: skip"))
    hubspot_stack.workers[0].stop()
    hubspot_stack.restart_worker()
    hubspot_stack.post((fixture_path / "call_ended_flat.json").read_bytes())
    record = hubspot_stack.wait_state(FLAT_CALL, ("skipped",))
    assert record["reason"] == "no person in the CRM has this number"
    assert hubspot_stack.sandbox.contacts == {} and activities(hubspot_stack.sandbox, FLAT_CALL) == []
