"""``crmsync forget``: after it, no key in Redis holds the forgotten call's data. Webhooks go
through the real web app, calls sync through a real (in-process) RQ worker against a sandbox
HubSpot, and every key of the database is read afterwards."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from crmsync import record
from crmsync.cli import main
from crmsync.queue import queue_for
from crmsync.settings import Settings
from crmsync.web import create_app
from tests.conftest import installed
from tests.hs_helpers import hubspot_env
from tests.redis_scan import holding

TOKEN = "forget-test-token-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NUMBER = "+966501234567"
OTHER = "+966551112222"


@pytest.fixture(params=["raw body with the event", "raw body apart"])
def env(request, hubspot, redis_url):
    shorter = {"RAW_BODY_TTL": "3600"} if request.param == "raw body apart" else {}
    return {**shorter, **hubspot_env(hubspot, redis_url), "WEBHOOK_TOKENS": TOKEN}


@pytest.fixture
def stack(env, redis):
    """The web app's test client; ``work()`` runs the queued jobs in a real RQ worker."""

    def work() -> None:
        SimpleWorker([queue_for(redis)], connection=redis, serializer=JSONSerializer).work(burst=True)

    with installed(env, redis):
        yield create_app(Settings.from_env(env), redis).test_client(), work


def body(fixture_path, call_id: str, number: str, *, event: str = "call.ended") -> dict:
    data = json.loads((fixture_path / "call_ended_documented.json").read_text())
    data["callId"], data["eventType"] = call_id, event
    data["data"]["data"]["transcription"].append({"User": f"My flat is number {call_id[-1]} in Olaya"})
    data["data"]["data"]["conversationId"] = f"conv-{call_id}"
    data["data"]["data"]["callParams"]["userNumber"] = number
    return data


def test_forget_phone_in_a_national_format_leaves_no_key_holding_the_calls_data(
    stack, redis, env, fixture_path, hubspot
):
    client, work = stack
    hubspot.seed_contact({"phone": OTHER, "lastname": "Other"})
    for call_id, number in (("call-forget-1", NUMBER), ("call-forget-2", NUMBER), ("call-keep", OTHER)):
        for event in ("call.started", "transcription.update", "call.ended"):
            answer = client.post("/webhooks/hamsa", json=body(fixture_path, call_id, number, event=event), headers=AUTH)
            assert answer.status_code == 200
    # a body refused with 422 that holds the number: kept in quarantine for an admin
    refused = {"eventType": "call.ended", "data": {"callParams": {"userNumber": NUMBER}}}
    assert client.post("/webhooks/hamsa", json=refused, headers=AUTH).status_code == 422
    work()
    assert record.call_status(redis, "call-forget-1")["state"] == "synced"
    needles = ("call-forget-1", "call-forget-2", "501234567", "flat is number 1", "flat is number 2")
    before = holding(redis, *needles)
    families = {k.split(":")[1] if k.startswith("crmsync:") else k.split(":")[0] for k in before}
    assert {"call", "status", "seen", "audit", "index", "quarantine", "activity", "rq"} <= families, families
    assert any(k.endswith(":raw") for k in before) == ("RAW_BODY_TTL" in env)
    result = CliRunner().invoke(main, ["forget", "--phone", "050 123 4567"], env=env)
    assert result.exit_code == 0, result.output
    assert "2 calls forgotten" in result.output and "quarantined body" in result.output
    assert "The CRM's own records (the person, the call activities) are the CRM's to delete" in result.output
    assert "501234567" not in result.output
    assert holding(redis, *needles) == {}
    # the other caller's call is untouched, and the CRM still has the forgotten person's records
    assert record.call_status(redis, "call-keep")["state"] == "synced"
    assert CliRunner().invoke(main, ["history", "--call", "call-keep", "--json"], env=env).output.strip() != "[]"
    assert any(c.get("phone") == NUMBER for c in hubspot.contacts.values())


def test_forget_call_erases_one_call(stack, redis, env, fixture_path):
    client, work = stack
    assert client.post("/webhooks/hamsa", json=body(fixture_path, "call-x", NUMBER), headers=AUTH).status_code == 200
    work()
    result = CliRunner().invoke(main, ["forget", "--call", "call-x"], env=env)
    assert result.exit_code == 0 and "1 calls forgotten" in result.output
    assert not holding(redis, "call-x")


def test_forget_refuses_what_is_no_number(env, redis):
    result = CliRunner().invoke(main, ["forget", "--phone", "hello"], env=env)
    assert result.exit_code == 1 and "is not a phone number crmsync can read" in result.output
    result = CliRunner().invoke(main, ["forget"], env=env)
    assert result.exit_code == 1 and "exactly one of --phone NUMBER or --call ID" in result.output


def test_forget_phone_finds_a_call_by_its_audit_after_its_events_expired(stack, redis, env, fixture_path, hubspot):
    client, work = stack
    hubspot.seed_contact({"mobilephone": NUMBER, "lastname": "Alharbi"})  # phone empty: written if_empty
    assert client.post("/webhooks/hamsa", json=body(fixture_path, "call-old", NUMBER), headers=AUTH).status_code == 200
    work()
    history = CliRunner().invoke(main, ["history", "--call", "call-old", "--json"], env=env).output
    assert any(r["field"] == "phone" and r["new"] == NUMBER for r in json.loads(history))
    for key in redis.scan_iter(match="crmsync:*"):  # a week on: events, markers and the index are gone
        if not key.startswith(b"crmsync:audit:"):
            redis.delete(key)
    result = CliRunner().invoke(main, ["forget", "--phone", "+966 50 123 4567"], env=env)
    assert result.exit_code == 0 and "1 calls forgotten" in result.output
    assert holding(redis, "call-old", "501234567") == {}
