"""The connectors' batch methods (``find_people_many``, ``write_calls``) against both
sandboxes, with the real client libraries and a real Redis: each call gets what the
one-call path gives it, in fewer requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from crmsync import phones
from crmsync.crm.base import CallWrite, Person, WriteResult
from crmsync.crm.hubspot import HubSpotConnector
from crmsync.crm.salesforce import SalesforceConnector
from crmsync.errors import PermanentError, RateLimited, RetryableError
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sub_settings import SalesforceSettings
from tests.hs_helpers import make_activity
from tests.phone_cases import PHONE_CASES
from tests.sf_helpers import activity as sf_activity

HS_BATCH_CREATE = r"POST /crm/v3/objects/calls/batch/create$"
SF_COLLECTION = r"/composite/sobjects$"
HUBSPOT_LIMITS = {"search_rate_limit": None}  # the portal's (conftest's ``hubspot``): HubSpot's general limit only


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sf(org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceSandbox]:
    org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_path))
    yield org
    org.reset()


@pytest.fixture
def sconn(sf: SalesforceSandbox, redis: Redis) -> Iterator[SalesforceConnector]:
    settings = SalesforceSettings(instance_url=sf.url, access_token=sf.token)
    with SalesforceConnector(settings, redis, timeout=(1, 2)) as conn:
        yield conn


def received(case) -> str:
    number = phones.to_e164(case.received, case.region)
    assert number is not None
    return number


# -- the phone table, all cases in one burst ----------------------------------------------------
def test_hubspot_phone_cases_in_one_batch(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    ids = [
        hubspot.seed_contact({"firstname": f"Case {n}", ("phone", "mobilephone")[n % 2]: case.stored})
        for n, case in enumerate(PHONE_CASES)
    ]
    numbers = list(dict.fromkeys(received(c) for c in PHONE_CASES))
    found = hconn.find_people_many(numbers, ["contact"], ["firstname"])
    batch_searches = hubspot.count("/search")
    for cid, case in zip(ids, PHONE_CASES, strict=True):
        people = found[received(case)]
        assert not isinstance(people, Exception)
        assert (cid in [p.id for p in people]) == case.match, case.why
    for number in numbers:  # the very answer of the one-call lookup
        alone = hconn.find_people(number, ["contact"], ["firstname"])
        batch = found[number]
        assert not isinstance(batch, Exception)
        assert [p.id for p in batch] == [p.id for p in alone], phones.mask(number)
    assert batch_searches < len(numbers) / 4


def test_hubspot_number_needing_contains_token_is_found(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    # "1-415-555-1212": the one-call search finds it only by CONTAINS_TOKEN *4155551212
    cid = hubspot.seed_contact({"phone": "1-415-555-1212"})
    other = hubspot.seed_contact({"phone": "+44 20 7946 0018"})
    found = hconn.find_people_many(["+14155551212", "+442079460018", "+971501234567"], ["contact"], [])
    assert [p.id for p in found["+14155551212"]] == [cid]  # type: ignore[union-attr]
    assert [p.id for p in found["+442079460018"]] == [other]  # type: ignore[union-attr]
    assert found["+971501234567"] == []
    # one IN search for the three, then the one-call search (CONTAINS_TOKEN) for the number not found
    assert hubspot.count("/search") == 2


def test_hubspot_batch_searches_wait_in_the_shared_search_limit(redis: Redis) -> None:
    # a portal allowing 1 search a second, and crmsync told so: 150 numbers are 3 IN searches,
    # spaced by the shared limiter before HubSpot has to refuse one
    with HubSpotSandbox(search_rate_limit=(1, 1.0)) as portal:
        numbers = [f"+9665010{i:05d}" for i in range(150)]
        for number in numbers:
            portal.seed_contact({"phone": number})
        conn = HubSpotConnector(portal.settings(search_rate_limit="1/s"), redis, timeout=(1, 3))
        try:
            found = conn.find_people_many(numbers, ["contact"], [])
        finally:
            conn.close()
        assert all(len(found[n]) == 1 for n in numbers)  # type: ignore[arg-type]
        assert portal.statuses("/search$") == [200, 200, 200]
        assert portal.max_per_window(1.0, "/search$", exclude_search=False) == 1
    waits = redis.hgetall("crmsync:metrics:rate_limit_waits_total")
    assert sum(int(v) for v in waits.values()) >= 2


def test_salesforce_phone_cases_in_one_batch(sf: SalesforceSandbox, sconn: SalesforceConnector) -> None:
    fields = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
    ids = [
        sf.seed("Contact", {"LastName": f"Case {n}", fields[n % 4]: case.stored}) for n, case in enumerate(PHONE_CASES)
    ]
    numbers = list(dict.fromkeys(received(c) for c in PHONE_CASES))
    before = sf.count("/search")
    found = sconn.find_people_many(numbers, ["Contact", "Lead"], [])
    assert sf.count("/search") - before == -(-len(numbers) // 50)
    for cid, case in zip(ids, PHONE_CASES, strict=True):
        people = found[received(case)]
        assert not isinstance(people, Exception)
        assert (cid in [p.id for p in people]) == case.match, case.why
    for number in numbers:
        batch = found[number]
        assert not isinstance(batch, Exception)
        assert [p.id for p in batch] == [p.id for p in sconn.find_people(number, ["Contact", "Lead"], [])]


# -- HubSpot writes ---------------------------------------------------------------------------
def hs_writes(hubspot: HubSpotSandbox, count: int, **updates: str) -> list[CallWrite]:
    out = []
    for n in range(count):
        cid = hubspot.seed_contact({"firstname": f"C{n}", "phone": f"+1415555{1000 + n}"})
        out.append(CallWrite(Person("contact", cid, {}), make_activity(f"call-{n}"), dict(updates)))
    return out


def test_hubspot_batch_costs_two_requests_and_logs_each_call_once(
    hubspot: HubSpotSandbox, hconn: HubSpotConnector
) -> None:
    writes = hs_writes(hubspot, 30, budget="100")
    answers = hconn.write_calls(writes)
    assert all(isinstance(a, WriteResult) and a.activity_created and a.written == {"budget": "100"} for a in answers)
    assert hubspot.count() == 2  # one batch create of the calls, one batch update of the contacts
    for write, answer in zip(writes, answers, strict=True):
        assert [c["_associations"] for c in hubspot.calls_for(write.activity.call_id)] == [[write.person.id]]
        assert hubspot.contact(write.person.id)["budget"] == "100"
        assert isinstance(answer, WriteResult) and hubspot.calls[answer.activity_id]
    again = hconn.write_calls(writes)  # the ledger knows them: one batch update, no second call
    assert all(isinstance(a, WriteResult) and not a.activity_created for a in again)
    assert len(hubspot.calls) == 30 and hubspot.count(r"batch/update$") == 3


def test_hubspot_refused_field_touches_only_its_call(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    writes = hs_writes(hubspot, 3, interest_level="high")
    writes[1].updates = {"interest_level": "huge", "budget": "5"}
    answers = hconn.write_calls(writes)
    assert [type(a) for a in answers] == [WriteResult] * 3
    refused = answers[1]
    assert isinstance(refused, WriteResult) and set(refused.rejected) == {"interest_level"}
    assert refused.written == {"budget": "5"} and hubspot.contact(writes[1].person.id)["budget"] == "5"
    for i in (0, 2):
        answer = answers[i]
        assert isinstance(answer, WriteResult) and answer.written == {"interest_level": "high"} and not answer.rejected
    assert len(hubspot.calls) == 3


def test_hubspot_refused_input_fails_only_its_call(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    writes = hs_writes(hubspot, 3)
    writes[2].person = Person("contact", "999999", {})  # no such contact: HubSpot refuses the whole batch
    answers = hconn.write_calls(writes)
    assert isinstance(answers[2], PermanentError) and answers[2].status == 400
    assert all(isinstance(a, WriteResult) for a in answers[:2])
    assert sorted(c["hs_call_external_id"] for c in hubspot.calls.values()) == ["call-0", "call-1"]


def test_hubspot_429_stops_the_batch_and_is_every_rest_answer(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    # 150 calls: two creates of 100 and 50; HubSpot refuses the first with a 429, so crmsync
    # sends nothing more (no second create, no contact update, no call on its own)
    writes = hs_writes(hubspot, 150, budget="5")
    hubspot.add_fault(
        match=HS_BATCH_CREATE,
        status=429,
        headers={"Retry-After": "7"},
        body={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
        },
        times=1,
    )
    before = hubspot.count()
    answers = hconn.write_calls(writes)
    assert all(isinstance(a, RateLimited) for a in answers)
    assert hubspot.count() - before == 1 and hubspot.calls == {}
    assert all(hconn.ledger.get(w.activity.call_id) is None for w in writes)  # nothing created: no mark left


def test_hubspot_lost_batch_answer_is_recovered_without_a_duplicate(
    hubspot: HubSpotSandbox, hconn: HubSpotConnector
) -> None:
    writes = hs_writes(hubspot, 4)
    hubspot.add_fault(
        match=HS_BATCH_CREATE, status=502, commit=True, body={"status": "error", "message": "Bad Gateway"}
    )
    answers = hconn.write_calls(writes)
    assert all(isinstance(a, RetryableError) for a in answers)
    assert len(hubspot.calls) == 4  # HubSpot created them; the answer was lost
    answers = hconn.write_calls(writes)  # each call searched by hs_call_external_id before any create
    assert all(isinstance(a, WriteResult) and not a.activity_created for a in answers)
    assert hubspot.count(HS_BATCH_CREATE) == 1 and hubspot.count(r"POST /crm/v3/objects/calls$") == 0
    assert all(len(hubspot.calls_for(w.activity.call_id)) == 1 for w in writes)


def test_hubspot_207_touches_only_the_missing_call(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    writes = hs_writes(hubspot, 3)
    first = hconn.write_calls(writes)
    gone = first[1]
    assert isinstance(gone, WriteResult)
    with hubspot.portal.lock:  # someone deleted one call in HubSpot
        del hubspot.portal.records["calls"][gone.activity_id]
    answers = hconn.write_calls(writes)
    assert 207 in hubspot.statuses(r"calls/batch/update$")
    assert [isinstance(a, WriteResult) and a.activity_created for a in answers] == [False, True, False]
    assert all(len(hubspot.calls_for(w.activity.call_id)) == 1 for w in writes)


# -- Salesforce writes -----------------------------------------------------------------------
def sf_writes(sf: SalesforceSandbox, count: int, **updates: object) -> list[CallWrite]:
    out = []
    for n in range(count):
        cid = sf.seed("Contact", {"LastName": f"C{n}", "Phone": f"+1415555{1000 + n}"})
        out.append(CallWrite(Person("Contact", cid, {}), sf_activity(f"call-{n}"), dict(updates)))
    return out


def test_salesforce_batch_costs_two_requests(sf: SalesforceSandbox, sconn: SalesforceConnector) -> None:
    writes = sf_writes(sf, 40, Interest_Level__c="High")
    before = sf.api_requests()
    answers = sconn.write_calls(writes)
    assert sf.api_requests() - before == 2  # one collection of Tasks, one of Contacts
    assert all(isinstance(a, WriteResult) and a.activity_created for a in answers)
    tasks = sf.tasks()
    assert sorted(t["CallObject"] for t in tasks) == sorted(f"call-{n}" for n in range(40))
    assert all(sf.get("Contact", w.person.id)["Interest_Level__c"] == "High" for w in writes)
    assert {t["WhoId"] for t in tasks} == {w.person.id for w in writes}


def test_salesforce_refused_field_touches_only_its_call(sf: SalesforceSandbox, sconn: SalesforceConnector) -> None:
    writes = sf_writes(sf, 3, Interest_Level__c="High")
    writes[0].updates = {"Interest_Level__c": "Extreme", "NPS__c": 7}
    answers = sconn.write_calls(writes)
    refused = answers[0]
    assert isinstance(refused, WriteResult) and set(refused.rejected) == {"Interest_Level__c"}
    assert refused.written == {"NPS__c": 7} and sf.get("Contact", writes[0].person.id)["NPS__c"] == 7
    assert all(isinstance(a, WriteResult) and a.written == {"Interest_Level__c": "High"} for a in answers[1:])
    assert len(sf.tasks()) == 3


def test_salesforce_lost_collection_answer_is_recovered_without_a_duplicate(
    sf: SalesforceSandbox, sconn: SalesforceConnector
) -> None:
    writes = sf_writes(sf, 3)
    sf.add_fault(
        match="POST .*" + SF_COLLECTION,
        status=502,
        commit=True,
        body=[{"errorCode": "BAD_GATEWAY", "message": "Bad Gateway"}],
    )
    answers = sconn.write_calls(writes)
    assert all(isinstance(a, RetryableError) for a in answers), answers
    assert len(sf.tasks()) == 3
    answers = sconn.write_calls(writes)  # each call finds its Task by CallObject first
    assert all(isinstance(a, WriteResult) and not a.activity_created for a in answers)
    assert sorted(t["CallObject"] for t in sf.tasks()) == ["call-0", "call-1", "call-2"]


def test_salesforce_failed_record_touches_only_its_call(sf: SalesforceSandbox, sconn: SalesforceConnector) -> None:
    writes = sf_writes(sf, 3)
    writes[1].person = Person("Contact", "003000000000999AAA", {})  # no such Contact: that Task record fails
    answers = sconn.write_calls(writes)
    assert isinstance(answers[0], WriteResult) and isinstance(answers[2], WriteResult)
    assert isinstance(answers[1], PermanentError) and answers[1].code == "INVALID_CROSS_REFERENCE_KEY"
    assert sorted(t["CallObject"] for t in sf.tasks()) == ["call-0", "call-2"]


def test_salesforce_daily_budget_counts_each_batch_request(sf: SalesforceSandbox, redis: Redis) -> None:
    settings = SalesforceSettings(instance_url=sf.url, access_token=sf.token, daily_budget=3)
    with SalesforceConnector(settings, redis, timeout=(1, 2)) as conn:
        writes = sf_writes(sf, 30, Interest_Level__c="High")
        found = conn.find_people_many([f"+1415555{1000 + n}" for n in range(30)], ["Contact"], [])  # 1 unit
        assert all(len(people) == 1 for people in found.values())  # type: ignore[arg-type]
        assert all(isinstance(a, WriteResult) for a in conn.write_calls(writes))  # 2 units: the budget is spent
        more = sf_writes(sf, 2)
        more = [CallWrite(w.person, sf_activity(f"more-{n}"), {}) for n, w in enumerate(more)]
        before = sf.api_requests()
        answers = conn.write_calls(more)
        assert all(isinstance(a, RateLimited) and "salesforce:daily" in a.message for a in answers), answers
        assert sf.api_requests() == before  # nothing was sent
        assert all(conn.ledger.get(w.activity.call_id) is None for w in more)  # nothing pending: created later
