"""``link:`` and ``follow_up:`` (SPEC §6) through the job, in-process, against the sandbox
HubSpot and Salesforce and a real Redis: the call on the contact, its company and its open
deal, deal fields with the write policies, and the follow-up task created once."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync import jobs
from crmsync.errors import MappingError
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.mapping import load_mapping
from crmsync.record import SyncRecord
from crmsync.runtime import Runtime
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.settings import Settings

NUMBER = "+966501234567"
FOLLOW_UP = """
follow_up:
  when: "{{ outcome.callback_requested }}"
  due: outcome.follow_up_date
  title: "Call back {{ outcome.name | default('the customer') }}"
  body: "{{ outcome.summary }}"
  priority: high
"""


def hubspot_mapping(extra: str = "") -> str:
    return textwrap.dedent("""
        version: 1
        crm: hubspot
        link: {company: true, deal: most_recent_open}
        fields:
          - {from: outcome.budget, to: budget, type: number}
          - {from: outcome.budget, to: amount, type: number, object: deal, write: if_empty}
          - {value: "{{ outcome.interest_level }}", to: hs_next_step, object: deal}
        """) + textwrap.dedent(extra)


def salesforce_mapping(extra: str = "") -> str:
    return textwrap.dedent("""
        version: 1
        crm: salesforce
        match: {objects: [Contact, Lead]}
        link: {company: true, deal: most_recent_open}
        fields:
          - {from: outcome.budget, to: Budget__c, type: number}
          - {from: outcome.budget, to: Amount, type: number, object: Opportunity, write: if_empty}
          - {value: "{{ outcome.interest_level }}", to: NextStep, object: Opportunity}
        """) + textwrap.dedent(extra)


def receive(redis, fixture_path: Path, call_id: str = "call-links-1", **outcome: str) -> str:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text()) | {"callId": call_id}
    body["data"]["data"]["outcomeResult"].update(outcome)
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    return event["call_id"]


@pytest.fixture
def install(redis, redis_url, tmp_path) -> Iterator:
    built: list[Runtime] = []

    def make(crm: str, text: str, **env: str) -> Runtime:
        (tmp_path / f"{crm}.yaml").write_text(text)
        settings = Settings.from_env(
            {"REDIS_URL": redis_url, "CRM": crm, "MAPPINGS_DIR": str(tmp_path), "DEFAULT_REGION": "SA", **env}
        )
        runtime = Runtime.build(settings, redis)
        Runtime.install(runtime)
        built.append(runtime)
        return runtime

    yield make
    Runtime.install(None)
    for runtime in built:
        runtime.close()


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(rate_limit=None, search_rate_limit=None) as sandbox:
        yield sandbox


@pytest.fixture
def org(monkeypatch) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox() as sandbox:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_path))
        yield sandbox


def on_hubspot(install, hubspot, text: str) -> Runtime:
    return install("hubspot", text, HUBSPOT_ACCESS_TOKEN=hubspot.token, HUBSPOT_BASE_URL=hubspot.url)


def on_salesforce(install, org, text: str) -> Runtime:
    return install("salesforce", text, SALESFORCE_INSTANCE_URL=org.url, SALESFORCE_ACCESS_TOKEN=org.token)


def seed_hubspot(hubspot: HubSpotSandbox, *, amount: str | None = None) -> tuple[str, str, str]:
    company = hubspot.seed_company({"name": "Acme Realty"})
    contact = hubspot.seed_contact(
        {"phone": NUMBER, "lastname": "Alharbi", "associatedcompanyid": company, "hubspot_owner_id": "1002"}
    )
    hubspot.seed_deal({"dealname": "Old, won", "dealstage": "closedwon"}, contacts=(contact,))
    older = hubspot.seed_deal({"dealname": "Older open", "dealstage": "qualifiedtobuy"}, contacts=(contact,))
    deal = hubspot.seed_deal(
        {
            "dealname": "Two-bedroom lease",
            "dealstage": "presentationscheduled",
            **({"amount": amount} if amount else {}),
        },
        contacts=(contact,),
    )
    hubspot.portal.records["deals"][older].properties["hs_lastmodifieddate"] = "2020-01-01T00:00:00.000Z"
    return company, contact, deal


def seed_salesforce(org: SalesforceSandbox, *, amount: float | None = None) -> tuple[str, str, str]:
    account = org.seed("Account", {"Name": "Acme Realty"})
    contact = org.seed(
        "Contact", {"Phone": NUMBER, "LastName": "Alharbi", "AccountId": account, "OwnerId": "005000000000002AAA"}
    )
    org.seed(
        "Opportunity",
        {
            "Name": "Won",
            "StageName": "Closed Won",
            "CloseDate": "2026-01-01",
            "AccountId": account,
            "LastModifiedDate": "2026-12-01T00:00:00.000+0000",
        },
    )
    org.seed(
        "Opportunity",
        {
            "Name": "Older open",
            "StageName": "Prospecting",
            "CloseDate": "2026-06-01",
            "AccountId": account,
            "LastModifiedDate": "2025-01-01T00:00:00.000+0000",
        },
    )
    deal = org.seed(
        "Opportunity",
        {
            "Name": "Lease",
            "StageName": "Qualification",
            "CloseDate": "2026-06-01",
            "AccountId": account,
            "LastModifiedDate": "2026-02-01T00:00:00.000+0000",
            **({"Amount": amount} if amount is not None else {}),
        },
    )
    return account, contact, deal


def calls_made(org: SalesforceSandbox) -> int:
    """Data API requests, the one-off describes (cached for the connector's life) aside."""
    return org.count(r"^\w+ /services/data/(?!.*/describe)")


# -- linked records ---------------------------------------------------------------------------


def test_hubspot_call_lands_on_contact_company_and_open_deal(install, hubspot, redis, fixture_path):
    company, contact, deal = seed_hubspot(hubspot)
    on_hubspot(install, hubspot, hubspot_mapping())
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    [call] = hubspot.calls_for(call_id)
    assert set(call["_associations"]) == {contact, company, deal}
    assert call["_types"] == [182, 194, 206]  # call -> company, contact, deal
    assert hubspot.deal(deal)["amount"] == "80000" and hubspot.deal(deal)["hs_next_step"] == "high"
    record = SyncRecord.load(redis, call_id)
    assert record.links == {"company": company, "deal": deal}
    assert record.fields["written"]["deal.amount"] == "80000"
    assert record.fields["values"]["deal.amount"] == 80000


def test_salesforce_task_is_on_the_open_opportunity(install, org, redis, fixture_path):
    account, contact, deal = seed_salesforce(org)
    on_salesforce(install, org, salesforce_mapping())
    call_id = receive(redis, fixture_path)
    before = calls_made(org)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    [task] = [t for t in org.tasks() if t.get("CallObject") == call_id]
    assert (task["WhoId"], task["WhatId"]) == (contact, deal)  # the Opportunity, not the Account
    assert org.get("Opportunity", deal)["Amount"] == 80000 and org.get("Opportunity", deal)["NextStep"] == "high"
    assert SyncRecord.load(redis, call_id).links == {"deal": deal}
    assert calls_made(org) - before == 3  # SOSL, the Opportunity query, one composite


def test_salesforce_company_only_puts_the_account_on_the_task(install, org, redis, fixture_path):
    account, contact, _ = seed_salesforce(org)
    text = salesforce_mapping().replace("deal: most_recent_open", "deal: none")
    text = "\n".join(line for line in text.splitlines() if "Opportunity" not in line)
    on_salesforce(install, org, text)
    call_id = receive(redis, fixture_path)
    before = calls_made(org)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    [task] = [t for t in org.tasks() if t.get("CallObject") == call_id]
    assert task["WhatId"] == account
    assert calls_made(org) - before == 2  # the Account came with the SOSL lookup


def test_a_deal_field_with_if_empty_is_left_alone_when_set(install, hubspot, org, redis, fixture_path):
    _, _, deal = seed_hubspot(hubspot, amount="125000")
    on_hubspot(install, hubspot, hubspot_mapping())
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert hubspot.deal(deal)["amount"] == "125000"
    assert SyncRecord.load(redis, call_id).fields["skipped"]["deal.amount"] == "if_empty: the field has a value"
    _, _, opportunity = seed_salesforce(org, amount=125000.0)
    on_salesforce(install, org, salesforce_mapping())
    call_id = receive(redis, fixture_path, "call-links-sf")
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert org.get("Opportunity", opportunity)["Amount"] == 125000.0
    assert org.get("Opportunity", opportunity)["NextStep"] == "high"  # the other deal field was written


def test_no_open_deal_leaves_the_deal_fields_and_the_call_synced(install, hubspot, redis, fixture_path):
    contact = hubspot.seed_contact({"phone": NUMBER, "lastname": "Alharbi"})
    hubspot.seed_deal({"dealname": "Lost", "dealstage": "closedlost"}, contacts=(contact,))
    on_hubspot(install, hubspot, hubspot_mapping())
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    record = SyncRecord.load(redis, call_id)
    assert record.fields["skipped"]["deal.amount"] == "no open deal to link"
    assert record.links == {}
    [call] = hubspot.calls_for(call_id)
    assert call["_associations"] == [contact]


def test_a_lead_gets_its_task_without_what_id(install, org, redis, fixture_path):
    lead = org.seed("Lead", {"Phone": NUMBER, "LastName": "Alharbi"})
    on_salesforce(install, org, salesforce_mapping(FOLLOW_UP))
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    tasks = org.tasks()
    assert {t["WhoId"] for t in tasks} == {lead} and len(tasks) == 2  # the call and the follow-up
    assert all(t.get("WhatId") is None for t in tasks)


def test_the_sandbox_refuses_what_salesforce_refuses(org):
    import requests

    lead = org.seed("Lead", {"Phone": NUMBER, "LastName": "Alharbi"})
    account = org.seed("Account", {"Name": "Acme"})
    answer = requests.post(
        f"{org.url}/services/data/v59.0/sobjects/Task",
        verify=str(org.ca_path),
        headers={"Authorization": f"Bearer {org.token}"},
        json={"Subject": "x", "Status": "Completed", "Priority": "Normal", "WhoId": lead, "WhatId": account},
    )
    assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_the_hubspot_sandbox_refuses_an_unknown_association_type(hubspot):
    import requests

    contact = hubspot.seed_contact({"phone": NUMBER})
    answer = requests.post(
        f"{hubspot.url}/crm/v3/objects/tasks",
        headers={"Authorization": f"Bearer {hubspot.token}"},
        json={
            "properties": {"hs_timestamp": "2026-03-03T09:00:00Z", "hs_task_subject": "x"},
            "associations": [
                {"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}
            ],
        },
    )
    assert answer.status_code == 400
    assert "194 is not a valid association type from task" in answer.json()["message"]


# -- follow-up ----------------------------------------------------------------------------------


def test_hubspot_follow_up_once_across_five_deliveries_and_a_replay(install, hubspot, redis, fixture_path):
    _, contact, deal = seed_hubspot(hubspot)
    on_hubspot(install, hubspot, hubspot_mapping(FOLLOW_UP))
    call_id = receive(redis, fixture_path, follow_up_date="2026-03-04", name="Omar")
    for _ in range(5):
        receive(redis, fixture_path, follow_up_date="2026-03-04", name="Omar")  # duplicates: not stored again
        assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert jobs.sync_call(call_id, "replay") == "synced"
    [task] = hubspot.tasks.values()
    assert task["hs_task_subject"] == "Call back Omar" and task["hs_task_priority"] == "HIGH"
    assert task["hs_timestamp"] == "2026-03-04T12:00:00.000Z" and task["hs_task_status"] == "NOT_STARTED"
    assert task["hubspot_owner_id"] == "1002"  # the contact's owner
    assert set(task["_associations"]) == {contact, deal} and task["_types"] == [204, 216]
    assert SyncRecord.load(redis, call_id).links["follow_up"] == next(iter(hubspot.tasks))


def test_salesforce_follow_up_in_the_one_composite(install, org, redis, fixture_path):
    account, contact, deal = seed_salesforce(org)
    text = salesforce_mapping(FOLLOW_UP).replace("deal: most_recent_open", "deal: none")
    on_salesforce(install, org, "\n".join(line for line in text.splitlines() if "Opportunity" not in line))
    call_id = receive(redis, fixture_path, follow_up_date="2026-03-04T16:30:00+03:00")
    before = calls_made(org)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert calls_made(org) - before == 2  # SOSL and one composite: Task, Contact fields, follow-up
    assert jobs.sync_call(call_id, "replay") == "synced"
    [follow] = [t for t in org.tasks() if t.get("CallObject") != call_id]
    assert (follow["Status"], follow["Priority"], follow["ActivityDate"]) == ("Not Started", "High", "2026-03-04")
    assert (follow["WhoId"], follow["WhatId"], follow["OwnerId"]) == (contact, account, "005000000000002AAA")
    assert follow["Subject"] == "Call back the customer"


def test_no_follow_up_when_when_renders_false(install, hubspot, org, redis, fixture_path):
    seed_hubspot(hubspot)
    on_hubspot(install, hubspot, hubspot_mapping(FOLLOW_UP))
    call_id = receive(redis, fixture_path, callback_requested="no")
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert hubspot.tasks == {}
    assert SyncRecord.load(redis, call_id).links["follow_up"] == "not created: when is false"
    seed_salesforce(org)
    on_salesforce(install, org, salesforce_mapping(FOLLOW_UP))
    call_id = receive(redis, fixture_path, "call-links-sf", callback_requested="false")
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    assert [t["CallObject"] for t in org.tasks()] == [call_id]


def test_follow_up_without_due_is_due_a_day_after_the_call(install, hubspot, redis, fixture_path):
    seed_hubspot(hubspot)
    on_hubspot(install, hubspot, hubspot_mapping(FOLLOW_UP.replace("  due: outcome.follow_up_date\n", "")))
    call_id = receive(redis, fixture_path)
    assert jobs.sync_call(call_id, "call.ended") == "synced"
    [task] = hubspot.tasks.values()
    assert task["hs_timestamp"] == "2026-03-03T09:14:52.318Z"  # the call ended 2026-03-02T09:14:52.318Z


def test_a_lost_task_answer_is_looked_up_not_created_again(install, hubspot, redis, fixture_path):
    seed_hubspot(hubspot)
    runtime = on_hubspot(install, hubspot, hubspot_mapping(FOLLOW_UP))
    runtime.connector.client.index_lag = 0.0  # type: ignore[attr-defined]  # trust "not found" at once
    call_id = receive(redis, fixture_path, follow_up_date="2026-03-04")
    hubspot.add_fault(match="POST /crm/v3/objects/tasks$", drop=True, times=1)  # created, answer lost
    assert jobs.sync_call(call_id, "call.ended") == "retrying"
    assert len(hubspot.tasks) == 1
    assert jobs.sync_call(call_id, "replay") == "synced"
    assert len(hubspot.tasks) == 1
    assert hubspot.count("POST /crm/v3/objects/tasks/search") == 1


def test_mapping_errors_for_links_and_follow_up(tmp_path):
    path = tmp_path / "hubspot.yaml"
    path.write_text(
        textwrap.dedent("""
        version: 1
        crm: hubspot
        link: {company: yes please, deal: newest}
        follow_up: {when: "{{ outcome.x }}", priority: urgent}
        fields:
          - {from: outcome.a, to: amount, object: deal}
        """)
    )
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    text = "\n".join(raised.value.problems)
    assert "link.company: must be true or false" in text
    assert 'link.deal: "newest" is not one of none, most_recent_open' in text
    assert 'follow_up: "title" is required' in text
    assert 'follow_up.priority: "urgent" is not one of low, normal, high' in text
    path.write_text(path.read_text().replace("link: {company: yes please, deal: newest}\n", ""))
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    assert 'fields[0].object: "deal" is the linked deal: it needs link.deal: most_recent_open' in str(raised.value)
