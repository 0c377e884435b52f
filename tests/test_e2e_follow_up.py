"""A follow-up task is created once per call whatever happens (SPEC §6, §8): five deliveries,
a replay, and an RQ worker killed between the call's activity and its task. Real gunicorn,
real RQ workers, real Redis, the shipped mappings (``hubspot-callbacks.yaml`` serves the
callbacks agent) and hubspot-api-client talking to the sandbox HubSpot."""

from __future__ import annotations

import json

import pytest

from crmsync.sandbox.hubspot import HubSpotSandbox
from tests.processes import wait_for
from tests.test_e2e_sync import Stack, mappings_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e
CALL = "call-e2e-follow-up-1"
TASKS = r"^POST /crm/v3/objects/tasks$"


@pytest.fixture
def hubspot_stack(redis, redis_url, tmp_path, mappings_dir):  # noqa: F811
    sandbox = HubSpotSandbox().start()
    running = Stack("hubspot", sandbox, redis_url, tmp_path, mappings_dir)
    try:
        yield running
    finally:
        running.stop()
        sandbox.stop()


def callback_body(fixture_path) -> bytes:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body |= {"callId": CALL, "agentId": "agent-callbacks-1"}
    body["data"]["data"]["outcomeResult"] |= {"follow_up_date": "2026-03-05", "first_name": "Noura"}
    return json.dumps(body).encode()


def test_worker_killed_between_activity_and_task_gives_one_task(hubspot_stack, fixture_path):
    stack, sandbox = hubspot_stack, hubspot_stack.sandbox
    company = sandbox.seed_company({"name": "Acme Realty"})
    contact = sandbox.seed_contact(
        {"phone": "+966501234567", "lastname": "Alharbi", "associatedcompanyid": company, "hubspot_owner_id": "1002"}
    )
    deal = sandbox.seed_deal({"dealname": "Lease", "dealstage": "qualifiedtobuy"}, contacts=(contact,))
    # the task create is slow: the worker is killed while it waits (HubSpot creates the task)
    sandbox.add_fault(match=TASKS, delay=3, times=1)
    body = callback_body(fixture_path)
    for _ in range(5):  # five deliveries of the same event: one call
        assert stack.post(body).status_code == 200
    wait_for(lambda: sandbox.count(TASKS) >= 1, 30, what="the task create")
    assert len(sandbox.calls_for(CALL)) == 1  # the activity was written before the task
    stack.workers[0].kill()
    stack.restart_worker()
    record = stack.wait_state(CALL, ("synced", "partial"), timeout=150)
    assert record["state"] == "synced" and record["attempts"] >= 2
    assert record["mapping"] == "hubspot-callbacks.yaml" and record["route"] == "agent agent-callbacks-1"
    [task] = sandbox.tasks.values()
    assert task["hs_task_subject"] == "Call back Noura" and set(task["_associations"]) == {contact, deal}
    assert record["links"] == {"company": company, "deal": deal, "follow_up": next(iter(sandbox.tasks))}
    assert sandbox.count(TASKS) == 1  # the new worker looked the task up instead of creating it again
    # a replay: still one call and one task
    assert stack.cli("replay", CALL).returncode == 0
    wait_for(lambda: stack.status(CALL).get("attempts", 0) > record["attempts"], 60, what="the replay")
    stack.wait_state(CALL, ("synced",), timeout=60)
    assert len(sandbox.tasks) == 1 and len(sandbox.calls_for(CALL)) == 1
