"""The Salesforce connector: real simple-salesforce over HTTPS to the sandbox org, real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crmsync import phones
from crmsync.crm.salesforce import SalesforceConnector
from crmsync.crm.salesforce_task import TRUNCATED
from crmsync.errors import CredentialsError, PermanentError, RateLimited, RetryableError
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.sub_settings import SalesforceSettings
from tests.phone_cases import PHONE_CASES
from tests.sf_helpers import activity, login_session

CALLER = "+14155551212"
FIELDS = {"Contact": ["Interest_Level__c", "NPS__c"], "Lead": ["Interest_Level__c", "Company"]}
INVALID_SESSION = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceSandbox]:
    org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_path))
    yield org
    org.reset()


def token_settings(sandbox: SalesforceSandbox, **kw) -> SalesforceSettings:
    return SalesforceSettings(instance_url=sandbox.url, access_token=sandbox.token, **kw)


@pytest.fixture
def connector(sandbox, redis) -> Iterator[SalesforceConnector]:
    with SalesforceConnector(token_settings(sandbox), redis, timeout=(1, 2)) as conn:
        yield conn


# -- lookup ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", PHONE_CASES, ids=lambda c: f"{c.stored}~{c.received}")
def test_phone_cases(case, sandbox, connector):
    field = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")[PHONE_CASES.index(case) % 4]
    contact_id = sandbox.seed("Contact", {field: case.stored})
    caller = phones.to_e164(case.received, case.region)
    assert caller is not None
    people = connector.find_people(caller, ["Contact"], [])
    assert [p.id for p in people] == ([contact_id] if case.match else []), case.why
    if case.match:
        assert people[0].phones[field] == case.stored


@pytest.mark.parametrize("objects", [["Contact", "Lead"], ["Lead", "Contact"]])
def test_every_candidate_is_returned_in_objects_order(objects, sandbox, connector):
    contact_id = sandbox.seed(
        "Contact",
        {
            "Phone": "(415) 555-1212",
            "OwnerId": "005000000000042AAA",
            "LastModifiedDate": "2026-01-01T00:00:00.000+0000",
        },
    )
    lead_id = sandbox.seed(
        "Lead", {"MobilePhone": "+1 415 555 1212", "LastModifiedDate": "2026-03-01T00:00:00.000+0000"}
    )
    sandbox.seed("Contact", {"Phone": "+44 415 555 1212"})  # same digits, another country
    people = connector.find_people(CALLER, objects, FIELDS)
    ids = {"Contact": contact_id, "Lead": lead_id}
    assert [(p.object, p.id) for p in people] == [(o, ids[o]) for o in objects]
    contact = next(p for p in people if p.object == "Contact")
    assert contact.owner_id == "005000000000042AAA"
    assert contact.modified_at == "2026-01-01T00:00:00.000+0000"


def test_fields_of_one_object_do_not_break_the_other(sandbox, connector):
    sandbox.seed("Contact", {"Phone": CALLER, "NPS__c": 9, "Interest_Level__c": "High"})
    sandbox.seed("Lead", {"Phone": CALLER, "Company": "Acme"})
    people = connector.find_people(CALLER, ["Contact", "Lead"], ["NPS__c", "Interest_Level__c", "Company"])
    assert people[0].values == {"NPS__c": 9, "Interest_Level__c": "High"}
    assert people[1].values == {"Interest_Level__c": None, "Company": "Acme"}
    describes = sandbox.count(r"/describe$")
    assert describes == 2
    before = sandbox.api_requests()
    connector.find_people(CALLER, ["Contact", "Lead"], ["NPS__c", "Interest_Level__c", "Company"])
    assert sandbox.api_requests() - before == 1  # describe is cached


def test_one_sosl_search_with_digits_only_national_or_international(sandbox, connector):
    assert connector.find_people(CALLER, ["Contact", "Lead"], FIELDS) == []
    [query] = [unquote_plus(r.query) for r in sandbox.requests if r.path.endswith("/search/")]
    assert query.startswith("q=FIND {4155551212 OR 14155551212} IN PHONE FIELDS")
    assert "+1" not in query


# -- writing the call ----------------------------------------------------------------------


def test_synced_call_costs_two_requests_and_writes_the_task(sandbox, connector):
    contact_id = sandbox.seed("Contact", {"Phone": "(415) 555-1212", "OwnerId": "005000000000042AAA"})
    person = connector.find_people(CALLER, ["Contact", "Lead"], FIELDS)[0]
    result = connector.write_call(person, activity(), {"Interest_Level__c": "High", "NPS__c": 8})
    assert sandbox.api_requests() == 2
    assert result.activity_created and result.written == {"Interest_Level__c": "High", "NPS__c": 8}
    (task,) = sandbox.tasks()
    assert task["Id"] == result.activity_id
    assert {
        k: task[k]
        for k in (
            "TaskSubtype",
            "Status",
            "Priority",
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
            "CallObject",
            "WhoId",
            "ActivityDate",
            "OwnerId",
        )
    } == {
        "TaskSubtype": "Call",
        "Status": "Completed",
        "Priority": "Normal",
        "CallType": "Inbound",
        "CallDurationInSeconds": 95,
        "CallDisposition": "interested",
        "CallObject": "call-1",
        "WhoId": contact_id,
        "ActivityDate": "2026-05-01",
        "OwnerId": "005000000000042AAA",
    }
    assert sandbox.get("Contact", contact_id)["Interest_Level__c"] == "High"


def test_activity_written_three_times_exists_once(sandbox, connector):
    sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    results = [connector.write_call(person, activity(title=f"try {n}"), {"NPS__c": n}) for n in range(3)]
    assert [r.activity_created for r in results] == [True, False, False]
    assert len({r.activity_id for r in results}) == 1
    (task,) = sandbox.tasks()
    assert task["Subject"] == "try 2" and task["TaskSubtype"] == "Call"


def test_dropped_answer_to_a_created_task_is_not_duplicated(sandbox, connector):
    sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    sandbox.add_fault(match="POST .*/composite", drop=True)
    with pytest.raises(RetryableError):
        connector.write_call(person, activity(), {"NPS__c": 7})
    assert len(sandbox.tasks()) == 1  # created, but the answer never arrived
    result = connector.write_call(person, activity(), {"NPS__c": 7})
    assert result.activity_created is False
    assert [t["Id"] for t in sandbox.tasks()] == [result.activity_id]
    assert sandbox.count(r"GET .*/query/$") == 1
    connector.write_call(person, activity(), {"NPS__c": 7})
    assert len(sandbox.tasks()) == 1 and sandbox.count(r"GET .*/query/$") == 1


def test_refused_fields_are_reported_and_the_task_is_written(sandbox, connector):
    contact_id = sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    result = connector.write_call(
        person, activity(), {"Interest_Level__c": "Extreme", "Preferred_Time__c": "9am", "No_Such__c": 1}
    )
    assert set(result.rejected) == {"Interest_Level__c", "No_Such__c"}
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in result.rejected["Interest_Level__c"]
    assert "bad value for restricted picklist" in result.rejected["Interest_Level__c"]
    assert "INVALID_FIELD" in result.rejected["No_Such__c"]
    assert result.written == {"Preferred_Time__c": "9am"}
    assert len(sandbox.tasks()) == 1
    assert sandbox.get("Contact", contact_id)["Preferred_Time__c"] == "9am"


def test_long_texts_are_cut_to_salesforce_limits(sandbox, connector):
    sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    connector.write_call(person, activity(title="t" * 300, body="b" * 40000, disposition="d" * 300), {})
    (task,) = sandbox.tasks()
    assert len(task["Subject"]) == 255 and len(task["CallDisposition"]) == 255
    assert len(task["Description"]) == 32000 and task["Description"].endswith(TRUNCATED)


def test_missing_person_is_permanent_and_nothing_is_written(sandbox, connector):
    sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    sandbox.org.delete("Contact", person.id)
    with pytest.raises(PermanentError) as info:
        connector.write_call(person, activity(), {"NPS__c": 1})
    assert info.value.code in ("NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY")
    assert sandbox.tasks() == []


def test_create_person(sandbox, connector):
    person = connector.create_person(
        "Lead", {"LastName": "Unknown caller", "Company": "-", "Phone": CALLER}, ["Company"]
    )
    assert person.created and person.object == "Lead" and person.values == {"Company": "-"}
    assert sandbox.get("Lead", person.id)["Phone"] == CALLER
    with pytest.raises(PermanentError) as info:
        connector.create_person("Lead", {"LastName": "No company"}, [])
    assert info.value.code == "REQUIRED_FIELD_MISSING" and info.value.fields == ["Company"]


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, expected, code",
    [
        (
            400,
            [
                {
                    "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "message": "Phone +14155551212 is blocked",
                    "fields": ["Phone"],
                }
            ],
            PermanentError,
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        ),
        (
            400,
            [
                {
                    "errorCode": "REQUIRED_FIELD_MISSING",
                    "message": "Required fields are missing: [LastName]",
                    "fields": ["LastName"],
                }
            ],
            PermanentError,
            "REQUIRED_FIELD_MISSING",
        ),
        (
            403,
            [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
            RateLimited,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (403, [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}], PermanentError, "INSUFFICIENT_ACCESS"),
        (
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            PermanentError,
            "NOT_FOUND",
        ),
        (429, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}], RateLimited, None),
        (500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}], RetryableError, "UNKNOWN_EXCEPTION"),
        (503, "<html>Service Unavailable</html>", RetryableError, None),
    ],
)
def test_errors_by_status(status, body, expected, code, sandbox, connector):
    sandbox.add_fault(match="GET .*/search/", status=status, body=body)
    with pytest.raises(expected) as info:
        connector.find_people(CALLER, ["Contact"], FIELDS)
    error = info.value
    assert type(error) is expected or expected is RetryableError and not isinstance(error, PermanentError)
    assert error.status == status
    if code:
        assert error.code == code
    if isinstance(error, RateLimited):
        assert error.retry_after > 0
    if isinstance(body, list) and body[0].get("fields"):
        assert error.fields == body[0]["fields"]
    for text in (str(error), error.message):
        assert "4155551212" not in text and "search/?q" not in text


def test_timeout_is_retryable(sandbox, redis):
    sandbox.add_fault(match="GET .*/search/", delay=1.0)
    with SalesforceConnector(token_settings(sandbox), redis, timeout=(1, 0.3)) as conn:
        with pytest.raises(RetryableError, match="did not answer in time"):
            conn.find_people(CALLER, ["Contact"], FIELDS)


def test_unreachable_salesforce_is_retryable(redis, sandbox):
    settings = SalesforceSettings(instance_url="https://127.0.0.1:9", access_token="x")
    with SalesforceConnector(settings, redis, timeout=(1, 1)) as conn:
        with pytest.raises(RetryableError) as info:
            conn.check_credentials()
    assert not isinstance(info.value, PermanentError)


def test_refused_access_token_is_a_credentials_error(sandbox, connector):
    sandbox.expire_sessions()
    with pytest.raises(CredentialsError):
        connector.check_credentials()
    assert sandbox.api_requests() == 1


# -- refreshable logins --------------------------------------------------------------------


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def login_settings(sandbox: SalesforceSandbox, mode: str) -> SalesforceSettings:
    c = sandbox.creds
    if mode == "soap":
        return SalesforceSettings(username=c.username, password=c.password, security_token=c.security_token)
    if mode == "oauth-password":
        return SalesforceSettings(
            username=c.username,
            password=c.password,
            security_token=c.security_token,
            consumer_key=c.consumer_key,
            consumer_secret=c.consumer_secret,
        )
    if mode == "client-credentials":
        return SalesforceSettings(consumer_key=c.consumer_key, consumer_secret=c.consumer_secret, domain="acme.my")
    private, public = _rsa_pair()
    c.jwt_public_key = public
    return SalesforceSettings(
        username=c.username, consumer_key=c.consumer_key, private_key=private.replace("\n", "\\n")
    )  # as a one-line config var


@pytest.fixture
def restore_creds(sandbox):
    saved = dict(vars(sandbox.creds))
    yield
    vars(sandbox.creds).update(saved)


@pytest.mark.parametrize("mode", ["soap", "oauth-password", "client-credentials", "jwt"])
def test_login_modes_renew_an_expired_session_once(mode, sandbox, redis, restore_creds):
    session = login_session(sandbox.url)
    with SalesforceConnector(login_settings(sandbox, mode), redis, session=session) as conn:
        conn.check_credentials()
        assert sandbox.logins == 1
        sandbox.expire_sessions()
        conn.check_credentials()
        assert sandbox.logins == 2
        assert sandbox.count(r"/limits/$") == 3
    session.close()


@pytest.mark.parametrize("mode", ["soap", "client-credentials"])
def test_a_401_that_keeps_coming_never_loops(mode, sandbox, redis, restore_creds):
    session = login_session(sandbox.url)
    sandbox.add_fault(match="GET .*/limits/", status=401, body=INVALID_SESSION, times=None)
    with SalesforceConnector(login_settings(sandbox, mode), redis, session=session) as conn:
        with pytest.raises(CredentialsError):
            conn.check_credentials()
    session.close()
    assert sandbox.count(r"/limits/$") == 2
    assert sandbox.logins == 2


@pytest.mark.parametrize("mode", ["soap", "oauth-password", "client-credentials", "jwt"])
def test_refused_login_is_a_credentials_error(mode, sandbox, redis, restore_creds):
    settings = login_settings(sandbox, mode)
    sandbox.creds.password = "changed"
    sandbox.creds.consumer_secret = "rotated"
    if mode == "jwt":
        sandbox.creds.jwt_public_key = _rsa_pair()[1]
    session = login_session(sandbox.url)
    with SalesforceConnector(settings, redis, session=session) as conn:
        with pytest.raises(CredentialsError) as info:
            conn.check_credentials()
    session.close()
    assert "changed" not in str(info.value) and "rotated" not in str(info.value)
    assert sandbox.api_requests() == 0


# -- budget, metrics, describe -------------------------------------------------------------


def test_daily_budget_is_shared_and_enforced(sandbox, redis):
    settings = token_settings(sandbox, daily_budget=3)
    with SalesforceConnector(settings, redis) as one, SalesforceConnector(settings, redis) as two:
        one.check_credentials()
        two.check_credentials()
        one.check_credentials()
        with pytest.raises(RateLimited):
            two.check_credentials()
    assert sandbox.api_requests() == 3


def test_stops_short_of_the_orgs_allowance(sandbox, connector):
    sandbox.api_used = 15000 - 100
    connector.check_credentials()
    with pytest.raises(RateLimited) as info:
        connector.check_credentials()
    assert info.value.retry_after > 0
    assert sandbox.api_requests() == 1


def test_requests_are_counted_in_metrics(sandbox, connector, redis):
    connector.check_credentials()
    sandbox.add_fault(match="GET .*/limits/", status=503, body=[])
    with pytest.raises(RetryableError):
        connector.check_credentials()
    counts = {k.decode(): int(v) for k, v in redis.hgetall("crmsync:metrics:crm_requests_total").items()}
    assert counts == {"crm=salesforce,status=200": 1, "crm=salesforce,status=503": 1}


def test_describe_reports_types_and_picklists(sandbox, connector):
    fields = connector.describe("Contact")
    assert fields["Interest_Level__c"].options == ["High", "Medium", "Low"]
    assert fields["Budget__c"].type == "currency"
    assert fields["LastModifiedDate"].updateable is False
    assert "NPS__c" not in connector.describe("Lead")
    connector.describe("Contact")
    assert sandbox.count(r"/describe$") == 2


def test_create_person_is_not_duplicated_by_a_lost_answer(sandbox, connector):
    properties = {"LastName": "Unknown caller", "Company": "-", "Phone": CALLER}
    sandbox.add_fault(match="POST .*/sobjects/Lead/$", drop=True)
    with pytest.raises(RetryableError):
        connector.create_person("Lead", properties, [])
    again = connector.create_person("Lead", properties, [])
    assert [r["Id"] for r in sandbox.records("Lead")] == [again.id] and again.created
    requests_before = sandbox.api_requests()
    assert connector.create_person("Lead", properties, []).id == again.id  # search index may lag: no duplicate
    assert sandbox.api_requests() == requests_before


def test_a_number_that_is_not_e164_is_permanent(connector):
    with pytest.raises(PermanentError):
        connector.find_people("not a number", ["Contact"], [])


def test_a_value_too_long_is_not_repeated_in_the_reason(sandbox, connector):
    # Salesforce's STRING_TOO_LONG repeats the value, which may be a call summary
    sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    summary = "The customer said her card ends 4242 and she moves house in May. " * 5
    result = connector.write_call(person, activity(), {"Preferred_Time__c": summary, "NPS__c": 7})
    reason = result.rejected["Preferred_Time__c"]
    assert "STRING_TOO_LONG" in reason and "max length=255" in reason, reason
    assert "moves house" not in reason and "4242" not in reason
    assert result.written == {"NPS__c": 7}


def test_a_refusal_without_field_names_still_writes_the_task(sandbox, connector):
    sandbox.seed("Contact", {"Phone": CALLER})
    person = connector.find_people(CALLER, ["Contact"], FIELDS)[0]
    sandbox.add_fault(
        match="POST .*/composite",
        status=200,
        body={
            "compositeResponse": [
                {
                    "body": [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": "task",
                },
                {
                    "body": [
                        {"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Closed accounts are locked"}
                    ],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": "person",
                },
            ]
        },
    )
    result = connector.write_call(person, activity(), {"NPS__c": 3, "Preferred_Time__c": "9am"})
    assert set(result.rejected) == {"NPS__c", "Preferred_Time__c"} and result.written == {}
    assert "Closed accounts are locked" in result.rejected["NPS__c"]
    assert len(sandbox.tasks()) == 1 and sandbox.count(r"/composite$") == 2


def test_an_instance_whose_certificate_does_not_verify_is_a_configuration_problem(sandbox, redis, monkeypatch):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs only: the sandbox's CA is unknown
    with SalesforceConnector(token_settings(sandbox), redis, timeout=(1, 2)) as conn:
        with pytest.raises(CredentialsError) as info:
            conn.find_people(CALLER, ["Contact"], [])
    assert "TLS certificate could not be verified" in str(info.value)
    assert "SALESFORCE_INSTANCE_URL" in str(info.value)


# -- a new caller and their call in one request ---------------------------------------------

NEW_LEAD = {
    "LastName": "Unknown caller",
    "Company": "Unknown",
    "MobilePhone": "+14155551212",
    "Interest_Level__c": "High",
}


def test_a_new_caller_and_the_call_cost_one_request(sandbox, connector):
    before = sandbox.api_requests()
    person, result = connector.create_with_call("Lead", NEW_LEAD, ["Interest_Level__c"], activity("call-new"))
    assert sandbox.api_requests() - before == 1
    [lead] = sandbox.records("Lead")
    [task] = sandbox.tasks()
    assert (person.id, person.created, person.values) == (lead["Id"], True, {"Interest_Level__c": "High"})
    assert task["WhoId"] == lead["Id"] and task["CallObject"] == "call-new" and result.activity_id == task["Id"]
    # the same call again: the connector knows both now and says "use the normal path"
    assert connector.create_with_call("Lead", NEW_LEAD, [], activity("call-new")) is None


def test_a_lost_answer_never_duplicates_the_caller_or_the_call(sandbox, connector):
    sandbox.add_fault(match="POST .*/composite$", drop=True, times=1)
    with pytest.raises(RetryableError):
        connector.create_with_call("Lead", NEW_LEAD, [], activity("call-lost"))
    # the retry: the one-request path steps aside, the careful path finds what was created
    assert connector.create_with_call("Lead", NEW_LEAD, [], activity("call-lost")) is None
    person = connector.create_person("Lead", NEW_LEAD, [])
    connector.write_call(person, activity("call-lost"), {})
    assert len(sandbox.records("Lead")) == 1 and len(sandbox.tasks()) == 1
    assert sandbox.tasks()[0]["WhoId"] == person.id


def test_a_refused_create_leaves_nothing_and_names_the_field(sandbox, connector, redis):
    refused = {**NEW_LEAD, "Interest_Level__c": "Lukewarm"}
    with pytest.raises(PermanentError) as info:
        connector.create_with_call("Lead", refused, [], activity("call-refused"))
    assert "Interest_Level__c" in info.value.fields
    assert sandbox.records("Lead") == [] and sandbox.tasks() == []
    # nothing is marked in flight, so the next attempt takes the one-request path again
    person, _ = connector.create_with_call("Lead", NEW_LEAD, [], activity("call-refused"))
    assert person.created and len(sandbox.tasks()) == 1


def test_a_task_deleted_in_salesforce_is_logged_again(sandbox, connector):
    contact_id = sandbox.seed("Contact", {"Phone": "(415) 555-1212"})
    person = connector.find_people(CALLER, ["Contact"], [])[0]
    first = connector.write_call(person, activity("call-deleted"), {})
    sandbox.org.delete("Task", first.activity_id)
    again = connector.write_call(person, activity("call-deleted"), {})
    [task] = sandbox.tasks()
    assert task["Id"] == again.activity_id != first.activity_id
    assert again.activity_created and task["WhoId"] == contact_id
    assert connector.write_call(person, activity("call-deleted"), {}).activity_id == again.activity_id
