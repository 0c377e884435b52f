"""The field-write audit, ``crmsync history`` and ``crmsync rollback``: calls synced by the real
job against a sandbox HubSpot (the real hubspot-api-client) and a real Redis; the commands run
as a person types them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from crmsync import jobs
from crmsync.audit import Audit
from crmsync.cli import main
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.settings import Settings
from tests.conftest import ROOT, installed
from tests.hs_helpers import hubspot_env
from tests.sf_helpers import salesforce_env

NUMBER = "+966501234567"


@pytest.fixture
def env(hubspot, redis_url):
    return hubspot_env(hubspot, redis_url)


@pytest.fixture
def runtime(env, redis):
    with installed(env, redis) as built:
        yield built


def sync(redis, fixture_path: Path, call_id: str, number: str = NUMBER, agent: str | None = None, **outcome) -> str:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["callId"] = call_id
    body["agentId"] = agent or body["agentId"]
    body["data"]["data"]["callParams"]["userNumber"] = number
    body["data"]["data"]["conversationId"] = f"conv-{call_id}"
    body["data"]["data"]["outcomeResult"].update(outcome)
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    assert jobs.sync_call(call_id, "call.ended") in ("synced", "partial")
    return call_id


def cli(env, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def set_in_crm(hubspot: HubSpotSandbox, cid: str, **properties: str) -> None:
    """What a salesperson does in HubSpot: change a property."""
    answer = requests.patch(
        f"{hubspot.url}/crm/v3/objects/contacts/{cid}",
        json={"properties": properties},
        headers={"Authorization": f"Bearer {hubspot.token}"},
        timeout=5,
    )
    assert answer.status_code == 200


def seeded(hubspot: HubSpotSandbox) -> str:
    return hubspot.seed_contact(
        {
            "phone": NUMBER,
            "lastname": "Alharbi",
            "budget": "50000",
            "interest_level": "low",
            "preferred_call_time": "evenings",
        }
    )


def test_history_lists_a_calls_writes_with_old_and_new_values(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    rows = json.loads(cli(env, "history", "--call", "call-a", "--json"))
    writes = {r["field"]: r for r in rows if r["kind"] == "write"}
    assert writes["budget"]["old"] == "50000" and writes["budget"]["new"] == "80000"
    assert writes["interest_level"]["old"] == "low" and writes["interest_level"]["new"] == "high"
    assert writes["preferred_call_time"]["old"] == "evenings"
    row = writes["budget"]
    assert row["call_id"] == "call-a" and row["mapping"] == "hubspot.yaml" and len(row["mapping_hash"]) == 12
    assert row["record_id"] == cid and row["object"] == "contact" and row["crm"] == "hubspot"
    assert row["at"].endswith("Z")
    [activity] = [r for r in rows if r["kind"] == "activity created"]
    assert activity["new"] == hubspot.calls_for("call-a")[0]["hs_object_id"]
    # the same writes, asked by record, and as a person reads them
    by_record = json.loads(cli(env, "history", "--record", cid, "--json"))
    assert [r for r in by_record if r["kind"] == "write"] == list(writes.values())
    text = cli(env, "history", "--record", cid)
    assert "budget" in text and "50000" in text and "80000" in text and "hubspot.yaml" in text
    # a replay writes nothing new, so the audit does not grow
    assert jobs.sync_call("call-a", "replay") == "synced"
    assert len(json.loads(cli(env, "history", "--call", "call-a", "--json"))) == len(rows)


def test_a_created_person_is_in_the_audit(runtime, hubspot, redis, env, fixture_path):
    sync(redis, fixture_path, "call-new")
    rows = json.loads(cli(env, "history", "--call", "call-new", "--json"))
    [person] = [r for r in rows if r["kind"] == "person created"]
    assert person["new"] in hubspot.contacts
    assert {r["field"] for r in rows if r["kind"] == "write"} >= {"budget", "interest_level"}


def test_history_needs_one_choice_and_says_when_nothing_is_known(env, redis):
    result = CliRunner().invoke(main, ["history"], env=env)
    assert result.exit_code == 1 and "exactly one of --record ID or --call ID" in result.output
    assert "no writes by crmsync are recorded for call nope (the audit keeps 90 days)" in cli(
        env, "history", "--call", "nope"
    )


def test_rollback_dry_run_changes_nothing_and_shows_the_plan(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    before, audit_before = hubspot.contact(cid), Audit(redis).for_call("call-a")
    writes = hubspot.count(r"PATCH|DELETE")
    out = cli(env, "rollback", "call-a", "--activities", "--dry-run")
    assert "budget: would restore (80000 -> 50000)" in out
    assert "would delete" in out and "dry run, nothing changed" in out
    assert hubspot.contact(cid) == before and hubspot.count(r"PATCH|DELETE") == writes
    assert Audit(redis).for_call("call-a") == audit_before


def test_rollback_restores_fields_and_leaves_one_a_person_changed(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    assert hubspot.contact(cid)["budget"] == "80000"
    set_in_crm(hubspot, cid, interest_level="medium")  # a salesperson's own judgement since
    out = cli(env, "rollback", "call-a")
    contact = hubspot.contact(cid)
    assert contact["budget"] == "50000" and contact["preferred_call_time"] == "evenings"
    assert contact["interest_level"] == "medium"
    assert "interest_level: left: changed in the CRM since (high -> low; now medium)" in out
    assert "budget: restored (80000 -> 50000)" in out
    assert not contact.get("last_call_summary")  # empty before the call: empty again
    rows = json.loads(cli(env, "history", "--call", "call-a", "--json"))
    restored = {r["field"]: r for r in rows if r["kind"] == "rollback"}
    assert restored["budget"]["old"] == "80000" and restored["budget"]["new"] == "50000"
    assert [r["field"] for r in rows if r["kind"] == "rollback left"] == ["interest_level"]
    assert hubspot.calls_for("call-a")  # the activity stays without --activities


def test_rollback_activities_then_again_is_a_no_op(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    out = cli(env, "rollback", "call-a", "--activities")
    assert not hubspot.calls_for("call-a") and "activities deleted" in out
    assert hubspot.contact(cid)["budget"] == "50000"
    writes, entries = hubspot.count(r"PATCH|DELETE"), len(Audit(redis).for_call("call-a"))
    again = json.loads(cli(env, "rollback", "call-a", "--activities", "--json"))
    assert again["restored"] == 0 and again["deleted"] == 0 and again["left"] == 0
    assert {s["action"] for s in again["calls"][0]["fields"]} == {"done"}
    assert hubspot.count(r"PATCH|DELETE") == writes and len(Audit(redis).for_call("call-a")) == entries


def test_rollback_of_two_calls_unwinds_in_order(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")  # budget 50000 -> 80000
    sync(redis, fixture_path, "call-b", budget="95000")  # 80000 -> 95000
    cli(env, "rollback", "call-a", "call-b")
    assert hubspot.contact(cid)["budget"] == "50000"


def test_rollback_by_time_window_and_mapping(runtime, hubspot, redis, env, fixture_path):
    first = seeded(hubspot)
    sync(redis, fixture_path, "call-early")
    time.sleep(1.1)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    second = hubspot.seed_contact({"phone": "+966501234568", "budget": "1000"})
    sync(redis, fixture_path, "call-late", number="+966501234568", budget="2000")
    out = cli(env, "rollback", "--since", since, "--mapping", "mappings/other.yaml")
    assert "0 fields restored" in out and hubspot.contact(second)["budget"] == "2000"  # other.yaml wrote nothing
    out = cli(env, "rollback", "--since", since, "--mapping", "mappings/hubspot.yaml")
    assert "call-late" in out and "call-early" not in out
    assert hubspot.contact(second)["budget"] == "1000"
    assert hubspot.contact(first)["budget"] == "80000"  # written before the window: kept


def test_rollback_needs_calls_or_a_time(env, redis):
    result = CliRunner().invoke(main, ["rollback"], env=env)
    assert result.exit_code == 1 and "name call ids, or --since TIME" in result.output
    result = CliRunner().invoke(main, ["rollback", "--since", "yesterday"], env=env)
    assert result.exit_code == 1 and "is not an ISO 8601 time" in result.output


# -- Salesforce: the same contract over simple-salesforce -----------------------------------
@pytest.fixture(scope="module")
def running_org():
    from crmsync.sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox() as org:
        yield org


@pytest.fixture
def org(running_org, monkeypatch):
    running_org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running_org.ca_path))
    return running_org


@pytest.fixture
def sf_env(org, redis_url):
    return salesforce_env(org, redis_url)


@pytest.fixture
def sf_runtime(sf_env, redis):
    with installed(sf_env, redis) as built:
        yield built


@pytest.mark.usefixtures("sf_runtime")
def test_salesforce_rollback_restores_deletes_the_task_and_repeats_as_a_no_op(org, redis, sf_env, fixture_path):
    lead = org.seed(
        "Lead",
        {
            "LastName": "Alharbi",
            "Company": "Acme",
            "Phone": NUMBER,
            "Preferred_Time__c": "evenings",
            "Interest_Level__c": "Low",
        },
    )
    sync(redis, fixture_path, "call-sf")
    assert org.get("Lead", lead)["Preferred_Time__c"] == "after 10am"
    rows = json.loads(cli(sf_env, "history", "--record", lead, "--json"))
    assert {"field": "Preferred_Time__c", "old": "evenings", "new": "after 10am"}.items() <= {
        k: v for r in rows if r["field"] == "Preferred_Time__c" for k, v in r.items()
    }.items()
    [task] = org.tasks()
    out = cli(sf_env, "rollback", "call-sf", "--activities")
    assert "Preferred_Time__c: restored (after 10am -> evenings)" in out and f"Task {task['Id']}: deleted" in out
    record = org.get("Lead", lead)
    assert record["Preferred_Time__c"] == "evenings" and record["Interest_Level__c"] == "Low"
    assert not org.tasks()
    again = json.loads(cli(sf_env, "rollback", "call-sf", "--activities", "--json"))
    assert again["restored"] == 0 and again["deleted"] == 0


def test_the_console_call_page_shows_the_calls_writes(runtime, hubspot, redis, env, fixture_path):
    from crmsync.web import create_app
    from tests.test_console import PASSWORD, SECRET, log_in

    seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    app = create_app(
        Settings.from_env({**env, "WEBHOOK_AUTH": "none", "CONSOLE_PASSWORD": PASSWORD, "SECRET_KEY": SECRET}), redis
    )
    client = app.test_client()
    log_in(client)
    page = client.get("/console/calls/call-a").text
    audit = page[page.index("<h2>Audit</h2>") :]
    assert re.search(r"budget\s*</td><td><span class=\"old\">50000</span> → <span class=\"new\">80000</span>", audit)
    assert "hubspot.yaml" in audit and "activity created" in audit
    assert "crmsync rollback call-a --dry-run" in audit


def test_the_audit_is_bounded_per_record_and_expires(redis):
    from crmsync.audit import AUDIT_RECORD_BYTES, Entry, call_key, record_key

    audit = Audit(redis, ttl=3600)
    for i in range(1500):
        audit.record(
            [
                Entry(
                    kind="fields",
                    call_id=f"call-{i:05d}",
                    crm="hubspot",
                    object="contact",
                    record_id="102",
                    writes=[("budget", str(i), str(i + 1))],
                )
            ]
        )
    assert redis.strlen(record_key("hubspot", "102")) <= AUDIT_RECORD_BYTES
    entries = audit.for_record("hubspot", "102")
    assert entries[-1].call_id == "call-01499" and entries[-1].writes == [("budget", "1499", "1500")]
    assert 3590 <= redis.ttl(record_key("hubspot", "102")) <= 3600 and 3590 <= redis.ttl(call_key("call-00000"))
    assert {k.decode().split(":")[2] for k in redis.keys("crmsync:audit:*")} == {"call", "record", "calls"}


def test_a_rate_limited_rollback_waits_as_told_and_finishes(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    hubspot.add_fault(
        match=r"PATCH /crm/v3/objects/contacts",
        status=429,
        headers={"Retry-After": "1"},
        times=1,
        body={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
    )
    out = cli(env, "rollback", "call-a")
    assert "budget: restored (80000 -> 50000)" in out and hubspot.contact(cid)["budget"] == "50000"
    assert hubspot.statuses(r"PATCH /crm/v3/objects/contacts").count(429) == 1


def test_the_mapping_deployed_at_ten_is_undone_in_one_command(hubspot, redis, redis_url, tmp_path, fixture_path):
    """Two mapping files; the growth team's one wrote the wrong picklist since T: rollback --since T
    --mapping growth.yaml undoes its writes and leaves the default file's."""
    import shutil

    folder = tmp_path / "mappings"
    folder.mkdir()
    shutil.copy(ROOT / "mappings" / "hubspot.yaml", folder / "hubspot.yaml")
    growth = (
        (ROOT / "mappings" / "hubspot.yaml")
        .read_text()
        .replace(
            "crm: hubspot                    # must match the file name: hubspot | salesforce",
            "crm: hubspot\nagents: [agent-growth]",
        )
    )
    (folder / "growth.yaml").write_text(
        growth.replace("{high: high, medium: medium, low: low}", "{high: low, medium: low, low: low}")
    )  # the bad deploy
    env = hubspot_env(hubspot, redis_url, folder)
    with installed(env, redis):
        sales = hubspot.seed_contact({"phone": NUMBER, "interest_level": "medium"})
        grown = hubspot.seed_contact({"phone": "+966501234568", "interest_level": "medium"})
        time.sleep(1.1)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sync(redis, fixture_path, "call-sales")
        sync(redis, fixture_path, "call-growth", number="+966501234568", agent="agent-growth")
    assert hubspot.contact(sales)["interest_level"] == "high"  # the default file's map
    assert hubspot.contact(grown)["interest_level"] == "low"  # growth.yaml's wrong picklist
    rows = json.loads(cli(env, "history", "--call", "call-growth", "--json"))
    assert {r["mapping"] for r in rows} == {"growth.yaml"}
    plan = cli(env, "rollback", "--since", since, "--mapping", "growth.yaml", "--dry-run")
    assert "call-growth" in plan and "call-sales" not in plan and hubspot.contact(grown)["interest_level"] == "low"
    out = cli(env, "rollback", "--since", since, "--mapping", "growth.yaml")
    assert "interest_level: restored (low -> medium)" in out
    assert hubspot.contact(grown)["interest_level"] == "medium" and hubspot.contact(sales)["interest_level"] == "high"


def test_rollback_of_a_record_deleted_in_the_crm_reports_it_and_goes_on(runtime, hubspot, redis, env, fixture_path):
    cid = seeded(hubspot)
    sync(redis, fixture_path, "call-a")
    other = hubspot.seed_contact({"phone": "+966501234568", "budget": "1000"})
    sync(redis, fixture_path, "call-b", number="+966501234568", budget="2000")
    answer = requests.delete(
        f"{hubspot.url}/crm/v3/objects/contacts/{cid}", headers={"Authorization": f"Bearer {hubspot.token}"}, timeout=5
    )
    assert answer.status_code == 204  # someone deleted the first contact in HubSpot
    out = cli(env, "rollback", "call-a", "call-b")
    assert f"contact {cid} budget: left: the record is gone" in out
    assert hubspot.contact(other)["budget"] == "1000"


def test_a_follow_up_task_and_a_deal_field_are_audited_and_rolled_back(
    hubspot, redis, redis_url, tmp_path, fixture_path
):
    import shutil

    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("hubspot.yaml", "hubspot-callbacks.yaml"):
        shutil.copy(ROOT / "mappings" / name, folder / name)
    env = hubspot_env(hubspot, redis_url, folder)
    with installed(env, redis):
        cid = hubspot.seed_contact({"phone": NUMBER, "lastname": "Alharbi"})
        deal = hubspot.seed_deal({"dealname": "Two-bedroom flat", "dealstage": "appointmentscheduled"}, contacts=(cid,))
        sync(redis, fixture_path, "call-cb", agent="agent-callbacks-1")
    [task_id] = list(hubspot.tasks)
    assert hubspot.deal(deal)["amount"] == "80000"
    rows = json.loads(cli(env, "history", "--call", "call-cb", "--json"))
    assert {"object": "deal", "record_id": deal, "field": "amount", "old": None, "new": "80000"}.items() <= next(
        r for r in rows if r["field"] == "amount"
    ).items()
    created = {(r["object"], r["new"]) for r in rows if r["kind"] == "activity created"}
    assert ("task", task_id) in created and ("call", hubspot.calls_for("call-cb")[0]["hs_object_id"]) in created
    assert any(r["record_id"] == deal for r in json.loads(cli(env, "history", "--record", deal, "--json")))
    out = cli(env, "rollback", "call-cb", "--activities")
    assert f"deal {deal} amount: restored (80000 -> (empty))" in out and f"task {task_id}: deleted" in out
    assert not hubspot.tasks and not hubspot.calls_for("call-cb") and not hubspot.deal(deal).get("amount")


@pytest.mark.usefixtures("sf_runtime")
def test_salesforce_follow_up_task_and_opportunity_field_roll_back(
    org, redis, redis_url, tmp_path, fixture_path, monkeypatch
):
    import shutil

    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("salesforce.yaml", "salesforce-callbacks.yaml"):
        shutil.copy(ROOT / "mappings" / name, folder / name)
    env = salesforce_env(org, redis_url, folder)
    with installed(env, redis):
        account = org.seed("Account", {"Name": "Acme"})
        org.seed("Contact", {"LastName": "Alharbi", "Phone": NUMBER, "AccountId": account})
        deal = org.seed(
            "Opportunity", {"Name": "Flat", "StageName": "Prospecting", "CloseDate": "2026-12-31", "AccountId": account}
        )
        sync(redis, fixture_path, "call-sf-cb", agent="agent-callbacks-1")
    assert org.get("Opportunity", deal)["Amount"] == 80000
    assert len(org.tasks()) == 2  # the call's Task and the follow-up
    out = cli(env, "rollback", "call-sf-cb", "--activities")
    assert f"Opportunity {deal} Amount: restored" in out and "2 activities deleted" in out
    assert org.get("Opportunity", deal)["Amount"] is None and not org.tasks()
