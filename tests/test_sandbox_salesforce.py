"""The Salesforce sandbox behaves like the documented REST API (Part D of the CRM
reference), as seen through the real simple-salesforce over HTTPS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceLogin, format_soql
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmsync.sandbox.salesforce import SalesforceSandbox
from tests.sf_helpers import login_session

V = "/services/data/v59.0"
TASK = {"Subject": "Call", "Status": "Completed", "Priority": "Normal"}


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(api_max=1000) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceSandbox]:
    org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_path))
    yield org
    org.reset()


@pytest.fixture
def sf(sandbox) -> Iterator[Salesforce]:
    session = requests.Session()
    yield Salesforce(
        instance_url=sandbox.url, session_id=sandbox.token, session=session, version="59.0", object_pairs_hook=dict
    )
    session.close()


def error_of(info: pytest.ExceptionInfo) -> dict:
    return info.value.content[0]


# -- SOSL ----------------------------------------------------------------------------------


def test_sosl_finds_formatted_numbers_across_types(sandbox, sf):
    contact = sandbox.seed("Contact", {"Phone": "(415) 555-1212"})
    lead = sandbox.seed("Lead", {"MobilePhone": "+1 415 555 1212"})
    sandbox.seed("Contact", {"HomePhone": "415 555 1213"})
    found = sf.search("FIND {4155551212} IN PHONE FIELDS RETURNING Contact(Id, Phone), Lead(Id, MobilePhone)")
    hits = {r["Id"]: r for r in found["searchRecords"]}
    assert set(hits) == {contact, lead}
    assert hits[lead]["attributes"] == {"type": "Lead", "url": f"{V}/sobjects/Lead/{lead}"}
    assert hits[contact]["Phone"] == "(415) 555-1212"
    assert sf.search("FIND {9999999} IN PHONE FIELDS RETURNING Contact(Id)") == {"searchRecords": []}


def test_sosl_or_finds_either_term(sandbox, sf):
    us = sandbox.seed("Contact", {"Phone": "(415) 555-1212"})
    uk = sandbox.seed("Contact", {"Phone": "+44 20 7946 0018"})
    sandbox.seed("Contact", {"Phone": "+971 55 000 0000"})
    found = sf.search("FIND {4155551212 OR 442079460018} IN PHONE FIELDS RETURNING Contact(Id)")
    assert {r["Id"] for r in found["searchRecords"]} == {us, uk}
    one = sf.search("FIND {442079460018} IN PHONE FIELDS RETURNING Contact(Id)")
    assert [r["Id"] for r in one["searchRecords"]] == [uk]


@pytest.mark.parametrize("term", ["+14155551212", "415-555-1212", "(415) 5551212", "415*", "a:b"])
def test_sosl_refuses_unescaped_reserved_characters(term, sf):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.search(f"FIND {{{term}}} IN PHONE FIELDS RETURNING Contact(Id)")
    assert error_of(info)["errorCode"] == "MALFORMED_SEARCH"


def test_sosl_accepts_escaped_reserved_characters(sandbox, sf):
    contact = sandbox.seed("Contact", {"Phone": "+1 415 555 1212"})
    found = sf.search(r"FIND {\+1415\-555\-1212} IN PHONE FIELDS RETURNING Contact(Id)")
    assert [r["Id"] for r in found["searchRecords"]] == [contact]


def test_sosl_unknown_field_is_invalid_field(sf):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.search("FIND {4155551212} IN PHONE FIELDS RETURNING Lead(Id, NPS__c)")
    assert error_of(info)["errorCode"] == "INVALID_FIELD"


def test_search_index_lag(sandbox, sf):
    sandbox.org.search_lag = 0.3
    sf.restful("sobjects/Contact/", method="POST", json={"LastName": "New", "Phone": "4155551212"})
    query = "FIND {4155551212} IN PHONE FIELDS RETURNING Contact(Id)"
    assert sf.search(query)["searchRecords"] == []
    assert sf.query("SELECT Id FROM Contact WHERE Phone = '4155551212'")["totalSize"] == 1  # SOQL is consistent
    time.sleep(0.35)
    assert len(sf.search(query)["searchRecords"]) == 1


# -- SOQL ----------------------------------------------------------------------------------


def test_soql_subset(sandbox, sf):
    who = sandbox.seed("Contact", {"Phone": "1"})
    ids = [
        sf.restful("sobjects/Task/", method="POST", json={**TASK, "CallObject": f"c'{n}", "WhoId": who})["id"]
        for n in range(3)
    ]
    found = sf.query(format_soql("SELECT Id, CallObject FROM Task WHERE CallObject = {} LIMIT 1", "c'1"))
    assert found["totalSize"] == 1 and found["done"] is True
    assert found["records"][0]["Id"] == ids[1] and found["records"][0]["CallObject"] == "c'1"
    found = sf.query(format_soql("SELECT Id FROM Task WHERE Id IN {}", ids[:2]))
    assert sorted(r["Id"] for r in found["records"]) == sorted(ids[:2])
    assert sf.query(format_soql("SELECT Id FROM Task WHERE Id = {}", ids[2]))["totalSize"] == 1
    assert sf.query("SELECT Id FROM Task LIMIT 2")["totalSize"] == 2
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Task WHERE")
    assert error_of(info)["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Nope FROM Task")
    assert error_of(info)["errorCode"] == "INVALID_FIELD"


# -- sObject writes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj, body, missing",
    [
        ("Task", {"Subject": "x", "Priority": "Normal"}, ["Status"]),
        ("Task", {"Subject": "x", "Status": "Completed"}, ["Priority"]),
        ("Contact", {"FirstName": "A"}, ["LastName"]),
        ("Lead", {"LastName": "B"}, ["Company"]),
        ("Lead", {"FirstName": "A"}, ["LastName", "Company"]),
    ],
)
def test_required_fields(obj, body, missing, sf):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(f"sobjects/{obj}/", method="POST", json=body)
    assert error_of(info)["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sorted(error_of(info)["fields"]) == sorted(missing)


@pytest.mark.parametrize(
    "obj, field, limit",
    [
        ("Task", "Subject", 255),
        ("Task", "Description", 32000),
        ("Task", "CallDisposition", 255),
        ("Task", "CallObject", 255),
        ("Contact", "Phone", 40),
        ("Lead", "MobilePhone", 40),
    ],
)
def test_length_limits(obj, field, limit, sf):
    base = {"Task": TASK, "Contact": {"LastName": "L"}, "Lead": {"LastName": "L", "Company": "C"}}[obj]
    created = sf.restful(f"sobjects/{obj}/", method="POST", json={**base, field: "1" * limit})
    assert created["success"] is True
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(f"sobjects/{obj}/", method="POST", json={**base, field: "1" * (limit + 1)})
    assert error_of(info)["errorCode"] == "STRING_TOO_LONG" and error_of(info)["fields"] == [field]


@pytest.mark.parametrize(
    "body, code",
    [
        ({"Nope__c": 1}, "INVALID_FIELD"),
        ({"Interest_Level__c": "Extreme"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"Callback_Requested__c": "yes"}, "JSON_PARSER_ERROR"),
        ({"NPS__c": "nine"}, "JSON_PARSER_ERROR"),
        ({"Follow_Up_Date__c": "tomorrow"}, "JSON_PARSER_ERROR"),
        ({"LastModifiedDate": "2026-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"LastName": None}, "REQUIRED_FIELD_MISSING"),
    ],
)
def test_update_validation(body, code, sandbox, sf):
    contact = sandbox.seed("Contact", {"Phone": "1"})
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Contact.update(contact, body)
    assert error_of(info)["errorCode"] == code


def test_read_update_and_owner(sandbox, sf):
    contact = sandbox.seed("Contact", {"Phone": "1"})
    before = sandbox.get("Contact", contact)["LastModifiedDate"]
    time.sleep(0.002)
    assert (
        sf.Contact.update(
            contact,
            {
                "Interest_Level__c": "High",
                "Budget__c": 80000,
                "Callback_Requested__c": True,
                "Follow_Up_Date__c": "2026-05-02",
            },
        )
        == 204
    )
    record = sf.Contact.get(contact)
    assert record["Interest_Level__c"] == "High" and record["OwnerId"].startswith("005")
    assert record["LastModifiedDate"] > before
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get("003000000000999AAA")


# -- composite -----------------------------------------------------------------------------


def _composite(sf, subs, all_or_none=True):
    return sf.restful("composite", method="POST", json={"allOrNone": all_or_none, "compositeRequest": subs})


def test_composite_references_and_all_or_none_rollback(sandbox, sf):
    contact = sandbox.seed("Contact", {"Phone": "1"})
    task = {"method": "POST", "url": f"{V}/sobjects/Task", "referenceId": "task", "body": {**TASK, "WhoId": contact}}

    def patch(body):
        return {"method": "PATCH", "url": f"{V}/sobjects/Contact/{contact}", "referenceId": "c", "body": body}

    answers = _composite(sf, [task, patch({"Interest_Level__c": "Extreme"})])["compositeResponse"]
    assert [a["httpStatusCode"] for a in answers] == [400, 400]
    assert answers[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert answers[1]["body"][0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sandbox.tasks() == []
    answers = _composite(sf, [task, patch({"Interest_Level__c": "Extreme"})], all_or_none=False)["compositeResponse"]
    assert [a["httpStatusCode"] for a in answers] == [201, 400]
    assert len(sandbox.tasks()) == 1
    answers = _composite(sf, [task, patch({"Description": "task @{task.id}"})])["compositeResponse"]
    assert [a["httpStatusCode"] for a in answers] == [201, 204]
    assert sandbox.get("Contact", contact)["Description"] == f"task {answers[0]['body']['id']}"


def test_composite_limits(sf):
    sub = {"method": "GET", "url": f"{V}/limits", "referenceId": "x"}
    with pytest.raises(SalesforceMalformedRequest):
        _composite(sf, [dict(sub, referenceId=f"r{n}") for n in range(26)])
    with pytest.raises(SalesforceMalformedRequest):
        _composite(sf, [dict(sub, url=f"{V}/search/?q=FIND+%7B1234%7D")])


# -- sObject Collections --------------------------------------------------------------------


def _collection(sf, method, records, all_or_none=False):
    return sf.restful("composite/sobjects", method=method, json={"allOrNone": all_or_none, "records": records})


def test_collection_create_and_update_each_record_on_its_own(sandbox, sf):
    contact = sandbox.seed("Contact", {"LastName": "Doe", "Phone": "1"})
    task = {"attributes": {"type": "Task"}, **TASK, "WhoId": contact}
    results = _collection(sf, "POST", [task, {**task, "Status": None}, dict(task, Subject="Second")])
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["id"] is None and results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[1]["errors"][0]["fields"] == ["Status"]
    assert sorted(t["Subject"] for t in sandbox.tasks()) == ["Call", "Second"]
    updates = [
        {"attributes": {"type": "Contact"}, "id": contact, "Description": "called"},
        {"attributes": {"type": "Contact"}, "id": contact, "Interest_Level__c": "Extreme"},
        {"attributes": {"type": "Task"}, "id": results[0]["id"], "Subject": "Renamed"},
    ]
    answers = _collection(sf, "PATCH", updates)
    assert [r["success"] for r in answers] == [True, False, True]
    assert answers[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sandbox.get("Contact", contact)["Description"] == "called"
    assert sandbox.get("Task", results[0]["id"])["Subject"] == "Renamed"


def test_collection_all_or_none_rolls_back_and_limits(sandbox, sf):
    task = {"attributes": {"type": "Task"}, **TASK}
    results = _collection(sf, "POST", [task, {**task, "Priority": None}], all_or_none=True)
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "REQUIRED_FIELD_MISSING",
    ]
    assert sandbox.tasks() == []
    with pytest.raises(SalesforceMalformedRequest) as info:
        _collection(sf, "POST", [task] * 201)
    assert error_of(info)["errorCode"] == "EXCEEDED_ID_LIMIT" and sandbox.tasks() == []
    before = sandbox.api_used
    _collection(sf, "POST", [task] * 200)
    assert len(sandbox.tasks()) == 200 and sandbox.api_used == before + 1


# -- usage, auth, logins -------------------------------------------------------------------


def test_api_usage_header_and_limits(sandbox):
    session = requests.Session()
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    first = session.get(f"{sandbox.url}{V}/limits/", headers=headers)
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/1000"
    body = {
        "allOrNone": True,
        "compositeRequest": [{"method": "GET", "url": f"{V}/limits", "referenceId": f"r{n}"} for n in range(3)],
    }
    second = session.post(f"{sandbox.url}{V}/composite", json=body, headers=headers)
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/1000"  # a composite counts once
    assert second.json()["compositeResponse"][2]["body"]["DailyApiRequests"]["Max"] == 1000
    sandbox.api_used = 1000
    refused = session.get(f"{sandbox.url}{V}/limits/", headers=headers)
    assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    wrong = session.get(f"{sandbox.url}{V}/limits/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    session.close()


def test_refused_requests(sandbox, sf):
    sandbox.add_fault(
        match="GET .*/limits/",
        status=403,
        body=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
    )
    with pytest.raises(SalesforceRefusedRequest):
        sf.limits()
    sandbox.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()


@pytest.mark.parametrize("kind", ["soap", "oauth-password", "client-credentials"])
def test_logins_issue_sessions(kind, sandbox):
    c = sandbox.creds
    session = login_session(sandbox.url)
    kwargs = {
        "soap": {"username": c.username, "password": c.password, "security_token": c.security_token},
        "oauth-password": {
            "username": c.username,
            "password": c.password + c.security_token,
            "consumer_key": c.consumer_key,
            "consumer_secret": c.consumer_secret,
        },
        "client-credentials": {
            "consumer_key": c.consumer_key,
            "consumer_secret": c.consumer_secret,
            "domain": "acme.my",
        },
    }[kind]
    session_id, instance = SalesforceLogin(session=session, **kwargs)
    assert instance == sandbox.url.removeprefix("https://")
    sf = Salesforce(session_id=session_id, instance=instance, session=session)
    assert sf.limits()["DailyApiRequests"]["Max"] == 1000
    with pytest.raises(SalesforceAuthenticationFailed):
        SalesforceLogin(
            session=session,
            **{**kwargs, "password": "wrong", "consumer_secret": "wrong"}
            if kind != "client-credentials"
            else {**kwargs, "consumer_secret": "wrong"},
        )
    session.close()


def test_describe(sf):
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert fields["Interest_Level__c"]["type"] == "picklist"
    assert [v["value"] for v in fields["Renewal_Decision__c"]["picklistValues"]] == ["Renew", "Cancel", "Undecided"]
    assert {
        "OwnerId",
        "LastModifiedDate",
        "LeadSource",
        "Description",
        "Budget__c",
        "NPS__c",
        "Objections__c",
        "Last_AI_Call__c",
        "Follow_Up_Date__c",
        "Callback_Requested__c",
        "Preferred_Time__c",
    } <= set(fields)
    assert fields["LastModifiedDate"]["updateable"] is False
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Nope/describe")
