"""The one in-flight ledger, and how both connectors use it the same way: one entry per
create, ``pending`` with its start time until the CRM's answer replaces it with the id.
Real Redis, real client libraries against the sandbox CRMs; typed values written in each
CRM's wire form."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from redis import Redis

from crmsync import store
from crmsync.crm.base import Person
from crmsync.crm.hubspot import HubSpotConnector
from crmsync.crm.ledger import Ledger, person_name
from crmsync.crm.salesforce import SalesforceConnector
from crmsync.errors import RetryableError
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sub_settings import SalesforceSettings
from tests.hs_helpers import make_activity
from tests.sf_helpers import activity as sf_activity

CALLER = "+14155551212"


def ledger_keys(redis: Redis) -> dict[str, str]:
    """Every key a connector wrote about what it created: all but metrics, rate limits, API usage."""
    keys = [k.decode() for k in redis.scan_iter("*") if redis.type(k) == b"string"]
    others = ("crmsync:metrics:", "crmsync:limits", "LIMITS", "crmsync:salesforce:api_usage")
    wanted = [k for k in keys if not k.startswith(others)]
    return {k: (redis.get(k) or b"").decode() for k in wanted}


def test_an_entry_is_pending_with_its_start_then_an_id_then_gone(redis: Redis) -> None:
    ledger = Ledger(redis, "hubspot", "activity")
    assert ledger.get("call-1") is None
    before = time.time()
    ledger.begin("call-1")
    entry = ledger.get("call-1")
    assert entry is not None and entry.pending and entry.id is None
    assert entry.started is not None and before <= entry.started <= time.time()
    assert 0 <= entry.age() < 5
    key = store.ledger_key("activity", "hubspot", "call-1")
    assert 0 < redis.ttl(key) <= store.LEDGER_TTLS["activity"]
    ledger.record("call-1", "9001")
    recorded = ledger.get("call-1")
    assert recorded is not None and (recorded.id, recorded.pending) == ("9001", False)
    ledger.clear("call-1")
    assert ledger.get("call-1") is None


def test_a_bare_pending_mark_is_pending_since_an_unknown_time(redis: Redis) -> None:
    redis.set(store.ledger_key("activity", "salesforce", "call-old"), "pending", ex=store.LEDGER_TTLS["activity"])
    entry = Ledger(redis, "salesforce", "activity").get("call-old")
    assert entry is not None and entry.pending and entry.age() == float("inf")


def test_person_names_hold_no_phone_number() -> None:
    name = person_name("Lead", {"LastName": "X", "MobilePhone": CALLER}, ("Phone", "MobilePhone"))
    assert "4155551212" not in name and len(name) == 32
    assert name == person_name("lead", {"MobilePhone": CALLER, "LastName": "Y"}, ("Phone", "MobilePhone"))
    assert name != person_name("Contact", {"MobilePhone": CALLER}, ("Phone", "MobilePhone"))
    no_phone = person_name("contact", {"lastname": "X"}, ("phone",))
    assert no_phone != person_name("contact", {"lastname": "Y"}, ("phone",))


# -- HubSpot -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def running_hubspot() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox() as hs:
        yield hs


@pytest.fixture
def hubspot(running_hubspot: HubSpotSandbox, redis: Redis) -> Iterator[tuple[HubSpotSandbox, HubSpotConnector]]:
    running_hubspot.reset()
    conn = HubSpotConnector(running_hubspot.settings(), redis, timeout=(1, 3), index_lag=1.0)
    yield running_hubspot, conn
    conn.close()


def test_hubspot_writes_one_entry_per_create(hubspot: tuple[HubSpotSandbox, HubSpotConnector], redis: Redis) -> None:
    sandbox, conn = hubspot
    created = conn.create_person("contact", {"lastname": "New", "phone": CALLER}, [])
    result = conn.write_call(created, make_activity(), {})
    name = person_name("contact", {"lastname": "New", "phone": CALLER}, ("phone", "mobilephone"))
    assert ledger_keys(redis) == {
        store.ledger_key("person", "hubspot", name): created.id,
        store.ledger_key("activity", "hubspot", "call-1"): result.activity_id,
    }


def test_hubspot_lost_answer_leaves_pending_with_its_time(
    hubspot: tuple[HubSpotSandbox, HubSpotConnector], redis: Redis
) -> None:
    sandbox, conn = hubspot
    cid = sandbox.seed_contact({"phone": CALLER})
    sandbox.add_fault(match=r"POST /crm/v3/objects/calls$", drop=True)
    with pytest.raises(RetryableError):
        conn.write_call(Person("contact", cid, {"phone": CALLER}), make_activity(), {})
    (value,) = ledger_keys(redis).values()
    assert value.startswith("pending:") and time.time() - float(value.split(":", 1)[1]) < 10


def test_hubspot_gets_typed_values_in_its_wire_form(hubspot: tuple[HubSpotSandbox, HubSpotConnector]) -> None:
    sandbox, conn = hubspot
    cid = sandbox.seed_contact({"phone": CALLER})
    updates = {
        "follow_up_date": date(2026, 4, 1),
        "budget": 80000,
        "callback_requested": True,
        "last_ai_call_at": datetime(2026, 3, 2, 9, 14, 52, 318000, tzinfo=UTC),
    }
    result = conn.write_call(Person("contact", cid, {"phone": CALLER}), make_activity(), updates)
    assert result.written == {
        "follow_up_date": "1775001600000",
        "budget": "80000",
        "callback_requested": "true",
        "last_ai_call_at": "1772442892318",
    }
    assert not result.rejected
    assert sandbox.contact(cid)["follow_up_date"] == "2026-04-01"


# -- Salesforce ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox() as sf:
        yield sf


@pytest.fixture
def salesforce(
    org: SalesforceSandbox, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SalesforceSandbox, SalesforceConnector]]:
    org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_path))
    settings = SalesforceSettings(instance_url=org.url, access_token=org.token)
    with SalesforceConnector(settings, redis, timeout=(1, 3)) as conn:
        yield org, conn


def test_salesforce_writes_one_entry_per_create(
    salesforce: tuple[SalesforceSandbox, SalesforceConnector], redis: Redis
) -> None:
    sandbox, conn = salesforce
    props = {"LastName": "New", "Company": "-", "Phone": CALLER}
    created = conn.create_person("Lead", props, [])
    result = conn.write_call(created, sf_activity("call-sf"), {})
    name = person_name("Lead", props, ("Phone", "MobilePhone"))
    assert ledger_keys(redis) == {
        store.ledger_key("person", "salesforce", name): created.id,
        store.ledger_key("activity", "salesforce", "call-sf"): result.activity_id,
    }


def test_salesforce_gets_typed_values_in_its_wire_form(
    salesforce: tuple[SalesforceSandbox, SalesforceConnector],
) -> None:
    sandbox, conn = salesforce
    sandbox.seed("Contact", {"Phone": CALLER})
    person = conn.find_people(CALLER, ["Contact"], [])[0]
    updates = {
        "Follow_Up_Date__c": date(2026, 4, 1),
        "Budget__c": 80000,
        "Callback_Requested__c": True,
        "Last_AI_Call__c": datetime(2026, 3, 2, 9, 14, 52, 318000, tzinfo=UTC),
    }
    result = conn.write_call(person, sf_activity("call-typed"), updates)
    assert result.written == {
        "Follow_Up_Date__c": "2026-04-01",
        "Budget__c": 80000,
        "Callback_Requested__c": True,
        "Last_AI_Call__c": "2026-03-02T09:14:52.318Z",
    }
    assert not result.rejected
    assert sandbox.get("Contact", person.id)["Follow_Up_Date__c"] == "2026-04-01"
