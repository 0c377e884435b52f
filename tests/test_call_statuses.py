"""``statuses:``: unanswered and failed calls are logged only when the mapping asks, with
the CRM's own status (HubSpot ``hs_call_status``, Salesforce ``CallDisposition``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsync import jobs
from crmsync.crm.base import Activity, Person
from crmsync.crm.salesforce_task import task_fields
from crmsync.errors import MappingError
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.mapping import load_mapping
from crmsync.record import SyncRecord
from tests.conftest import ROOT
from tests.test_jobs import runtime_for  # noqa: F401  (fixture; hubspot: conftest)


def mapping_dir(tmp_path: Path, statuses: str | None) -> Path:
    text = (ROOT / "mappings" / "hubspot.yaml").read_text()
    if statuses is not None:
        text = text.replace("crm: hubspot", f"crm: hubspot\nstatuses: {statuses}", 1)
    (tmp_path / "hubspot.yaml").write_text(text)
    return tmp_path


def receive_no_answer(redis, fixture_path: Path) -> str:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["data"]["data"]["status"] = "NO_ANSWER"
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    return event["call_id"]


def test_the_default_logs_completed_calls_only(tmp_path: Path) -> None:
    assert load_mapping(mapping_dir(tmp_path, None) / "hubspot.yaml").statuses == ["completed"]


def test_an_unknown_status_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as raised:
        load_mapping(mapping_dir(tmp_path, "[completed, no_anwser]") / "hubspot.yaml")
    assert 'statuses[1]: "no_anwser" is not one of completed, no_answer, busy, failed, terminated' in str(raised.value)
    assert '(did you mean "no_answer"?)' in str(raised.value)


def test_a_no_answer_call_is_skipped_unless_the_mapping_asks(hubspot, redis, runtime_for, fixture_path, tmp_path):  # noqa: F811
    hubspot.seed_contact({"phone": "+966501234567", "lastname": "Alharbi"})
    runtime_for(hubspot, MAPPINGS_DIR=str(mapping_dir(tmp_path, None)))
    call_id = receive_no_answer(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "skipped"
    assert SyncRecord.load(redis, call_id).reason == (
        "the call's status is no_answer: the mapping logs completed (statuses:)"
    )
    assert hubspot.calls == {}


def test_a_no_answer_call_is_logged_as_no_answer_when_asked(hubspot, redis, runtime_for, fixture_path, tmp_path):  # noqa: F811
    hubspot.seed_contact({"phone": "+966501234567", "lastname": "Alharbi"})
    runtime_for(hubspot, MAPPINGS_DIR=str(mapping_dir(tmp_path, "[completed, no_answer]")))
    call_id = receive_no_answer(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    [call] = hubspot.calls_for(call_id)
    assert call["hs_call_status"] == "NO_ANSWER"


@pytest.mark.parametrize(
    ("where", "value", "status"),
    [
        ("endReason", "customer_hangup", "completed"),  # why it ended, not how: a completed call
        ("endReason", "agent_hangup", "completed"),
        ("status", "customer_hangup", "completed"),  # an unknown status on call.ended reads completed
        ("status", "NO_ANSWER", "no_answer"),
        ("status", "TERMINATED", "terminated"),
    ],
)
def test_a_call_ended_status_outside_the_known_ones_is_completed(fixture_path, where, value, status) -> None:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["data"]["data"][where] = value
    assert normalise(body, "SA")["call"]["status"] == status


def test_a_call_ended_with_an_end_reason_syncs_under_the_default_statuses(
    hubspot,  # noqa: F811
    redis,
    runtime_for,  # noqa: F811
    fixture_path,
    tmp_path,
):
    hubspot.seed_contact({"phone": "+966501234567", "lastname": "Alharbi"})
    runtime_for(hubspot, MAPPINGS_DIR=str(mapping_dir(tmp_path, None)))
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["data"]["data"]["endReason"] = "customer_hangup"
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    assert jobs.sync_call(event["call_id"], "call.ended") == "synced"
    [call] = hubspot.calls_for(event["call_id"])
    assert call["hs_call_status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("status", "result"),
    [("no_answer", "No answer"), ("failed", "Failed"), ("terminated", "Terminated"), ("completed", None)],
)
def test_salesforce_tasks_carry_the_call_result(status: str, result: str | None) -> None:
    person = Person(object="Contact", id="003000000000001", phones={})
    task = task_fields(
        person, Activity(call_id="c1", title="Call", body="", timestamp="2026-03-02T09:14:52Z", status=status)
    )
    assert task.get("CallDisposition") == result
    chosen = task_fields(
        person,
        Activity(
            call_id="c1",
            title="Call",
            body="",
            timestamp="2026-03-02T09:14:52Z",
            status="no_answer",
            disposition="Voicemail full",
        ),
    )
    assert chosen["CallDisposition"] == "Voicemail full"  # the mapping's own disposition wins


def test_a_no_answer_call_is_a_salesforce_task_with_that_call_result(
    redis, redis_url, fixture_path, tmp_path, monkeypatch
):
    from crmsync.runtime import Runtime
    from crmsync.sandbox.salesforce import SalesforceSandbox
    from crmsync.settings import Settings

    text = (ROOT / "mappings" / "salesforce.yaml").read_text()
    (tmp_path / "salesforce.yaml").write_text(
        text.replace("crm: salesforce", "crm: salesforce\nstatuses: [completed, no_answer]", 1)
    )
    with SalesforceSandbox() as org:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_path))
        org.seed("Contact", {"Phone": "+966501234567", "LastName": "Alharbi"})
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_url,
                "CRM": "salesforce",
                "SALESFORCE_INSTANCE_URL": org.url,
                "SALESFORCE_ACCESS_TOKEN": org.token,
                "MAPPINGS_DIR": str(tmp_path),
                "DEFAULT_REGION": "SA",
            }
        )
        runtime = Runtime.build(settings, redis)
        Runtime.install(runtime)
        try:
            call_id = receive_no_answer(redis, fixture_path)
            assert jobs.sync_call(call_id, "call.ended") == "synced"
            [task] = [t for t in org.tasks() if t.get("CallObject") == call_id]
            assert (task["CallDisposition"], task["Status"]) == ("No answer", "Completed")
        finally:
            Runtime.install(None)
            runtime.close()
