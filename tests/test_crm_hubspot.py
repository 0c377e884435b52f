"""The HubSpot connector, with the real hubspot-api-client talking HTTP to the sandbox
and a real Redis holding the ledger and the shared rate limits."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from redis import Redis

from crmsync.crm.base import Person
from crmsync.crm.hubspot import HubSpotConnector
from crmsync.errors import CredentialsError, PermanentError, RateLimited, RetryableError
from crmsync.phones import national_digits, to_e164
from crmsync.sandbox.hubspot import HubSpotSandbox
from tests.conftest import ROOT, free_port
from tests.hs_helpers import CONNECTED, make_activity
from tests.phone_cases import PHONE_CASES

CALLS = r"POST /crm/v3/objects/calls$"
HUBSPOT_LIMITS: dict[str, object] = {}  # the portal's (conftest's ``hubspot``): HubSpot's own limits


def person(hubspot: HubSpotSandbox, cid: str, owner: str | None = "1002") -> Person:
    return Person("contact", cid, {"phone": hubspot.contact(cid).get("phone")}, owner_id=owner)


# -- finding people -----------------------------------------------------------------------
@pytest.mark.parametrize("field", ["phone", "mobilephone"])
@pytest.mark.parametrize("case", PHONE_CASES, ids=lambda c: c.why)
def test_phone_cases(hubspot: HubSpotSandbox, hconn: HubSpotConnector, case, field: str) -> None:
    cid = hubspot.seed_contact({"firstname": "Case", field: case.stored})
    hubspot.seed_contact({"firstname": "Other", "phone": "+1 212 555 0100"})
    e164 = to_e164(case.received, case.region)
    assert e164 is not None
    found = hconn.find_people(e164, ["contact"], ["firstname"])
    assert [p.id for p in found] == ([cid] if case.match else [])
    assert hubspot.count("/search") == 1


def test_all_candidates_returned_with_owner_and_values(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    ids = {
        hubspot.seed_contact({"firstname": "A", "phone": "+966 50 123 4567", "hubspot_owner_id": "1001"}),
        hubspot.seed_contact({"firstname": "B", "mobilephone": "0501234567"}),
        hubspot.seed_contact({"firstname": "C", "phone": "00966501234567", "budget": "5"}),
    }
    hubspot.seed_contact({"firstname": "UAE", "phone": "+971501234567"})
    found = hconn.find_people("+966501234567", ["contact"], ["firstname", "budget"])
    assert {p.id for p in found} == ids
    by_name = {p.values["firstname"]: p for p in found}
    assert by_name["A"].owner_id == "1001" and by_name["B"].owner_id is None
    assert by_name["C"].values["budget"] == "5" and by_name["A"].modified_at.endswith("Z")
    assert hubspot.count() == 1
    groups = hubspot.requests[0].json()["filterGroups"]
    assert len(groups) <= 5 and "+966501234567" in str(groups)


def test_unsupported_object_is_permanent(hconn: HubSpotConnector) -> None:
    with pytest.raises(PermanentError):
        hconn.find_people("+14155551212", ["Lead"], [])


def test_create_person(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    created = hconn.create_person(
        "contact", {"lastname": "Unknown caller", "phone": "+966501234567", "budget": 80000}, ["lastname", "budget"]
    )
    assert created.created and created.object == "contact"
    assert created.values == {"lastname": "Unknown caller", "budget": "80000"}
    assert hubspot.contact(created.id)["phone"] == "+966501234567"


def test_create_person_answer_lost_is_not_duplicated(hubspot: HubSpotSandbox, redis: Redis) -> None:
    hubspot.lag = 0.3
    conn = HubSpotConnector(hubspot.settings(), redis, timeout=(1, 3), index_lag=0.6)
    try:
        hubspot.add_fault(match=r"POST /crm/v3/objects/contacts$", drop=True)
        props = {"lastname": "Caller", "phone": "+14155551212"}
        with pytest.raises(RetryableError):
            conn.create_person("contact", props, [])
        with pytest.raises(RetryableError, match="search index"):  # too early to trust a search
            conn.create_person("contact", props, [])
        # The pipeline would search first: after the lag the contact is found there.
        time.sleep(0.35)
        assert [p.id for p in conn.find_people("+14155551212", ["contact"], [])] == list(hubspot.contacts)
    finally:
        conn.close()
    assert len(hubspot.contacts) == 1


# -- writing the call ----------------------------------------------------------------------
def test_synced_call_takes_three_requests(hubspot: HubSpotSandbox, hconn: HubSpotConnector, redis: Redis) -> None:
    cid = hubspot.seed_contact({"firstname": "Noura", "phone": "0501234567", "hubspot_owner_id": "1002"})
    [found] = hconn.find_people("+966501234567", ["contact"], ["budget"])
    result = hconn.write_call(
        found, make_activity(), {"budget": "80000", "interest_level": "high", "callback_requested": True}
    )
    assert hubspot.count() == 3
    assert result.activity_created and not result.rejected
    assert result.written == {"budget": "80000", "interest_level": "high", "callback_requested": "true"}
    [call] = hubspot.calls.values()
    assert call["_associations"] == [cid]
    assert call["hs_call_direction"] == "INBOUND" and call["hs_call_status"] == "COMPLETED"
    assert call["hs_call_duration"] == "187000" and call["hs_call_external_id"] == "call-1"
    assert call["hubspot_owner_id"] == "1002" and call["hs_call_disposition"] == CONNECTED
    assert call["hs_call_from_number"] == "+966501234567"
    assert hubspot.contact(cid)["interest_level"] == "high"
    assert int(redis.hget("crmsync:metrics:crm_requests_total", "crm=hubspot,status=201"))  # type: ignore[arg-type]


def test_call_properties_hubspot_would_refuse_are_left_out(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    activity = make_activity(
        recording_url="http://insecure.example.com/a.mp3",
        disposition="interested",
        direction="outbound",
        status="no_answer",
        owner_id="1003",
    )
    result = hconn.write_call(person(hubspot, cid), activity, {})
    call = hubspot.calls[result.activity_id]
    assert "hs_call_recording_url" not in call and "hs_call_disposition" not in call
    assert call["hs_call_direction"] == "OUTBOUND" and call["hs_call_status"] == "NO_ANSWER"
    assert call["hubspot_owner_id"] == "1003"
    assert hubspot.count(r"PATCH /crm/v3/objects/contacts") == 0  # nothing to write: no request


def test_upserted_three_times_exists_once(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    results = [hconn.write_call(person(hubspot, cid), make_activity(title=f"v{i}"), {}) for i in range(3)]
    assert [r.activity_created for r in results] == [True, False, False]
    assert len({r.activity_id for r in results}) == 1
    assert [c["hs_call_title"] for c in hubspot.calls_for("call-1")] == ["v2"]
    assert hubspot.count(CALLS) == 1 and hubspot.count(r"PATCH /crm/v3/objects/calls/") == 2


def test_dropped_create_answer_is_found_not_duplicated(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    hubspot.lag = 0.4  # connector index_lag is 1.0
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    hubspot.add_fault(match=CALLS, drop=True)
    with pytest.raises(RetryableError):
        hconn.write_call(person(hubspot, cid), make_activity(), {})
    assert len(hubspot.calls) == 1  # it was created; only the answer was lost
    with pytest.raises(RetryableError, match="search index"):  # the index hides it: wait, don't create
        hconn.write_call(person(hubspot, cid), make_activity(), {})
    time.sleep(0.45)
    results = [hconn.write_call(person(hubspot, cid), make_activity(), {"budget": "1"}) for _ in range(3)]
    assert not any(r.activity_created for r in results)
    assert len(hubspot.calls_for("call-1")) == 1 and hubspot.count(CALLS) == 1


def test_lost_create_that_never_landed_is_created_after_the_lag(hubspot: HubSpotSandbox, redis: Redis) -> None:
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    conn = HubSpotConnector(hubspot.settings(), redis, timeout=(1, 3), index_lag=0.3)
    try:
        hubspot.add_fault(
            match=CALLS, status=503, body={"status": "error", "message": "down", "category": "INTERNAL_ERROR"}
        )
        with pytest.raises(RetryableError):
            conn.write_call(person(hubspot, cid), make_activity(), {})
        with pytest.raises(RetryableError, match="search index"):
            conn.write_call(person(hubspot, cid), make_activity(), {})
        time.sleep(0.35)
        assert conn.write_call(person(hubspot, cid), make_activity(), {}).activity_created
    finally:
        conn.close()
    assert len(hubspot.calls) == 1


def test_refused_create_is_retried_without_a_search(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    hubspot.add_fault(
        match=CALLS, status=400, body={"status": "error", "message": "bad", "category": "VALIDATION_ERROR"}
    )
    with pytest.raises(PermanentError):
        hconn.write_call(person(hubspot, cid), make_activity(), {})
    assert hconn.write_call(person(hubspot, cid), make_activity(), {}).activity_created
    assert hubspot.count("/calls/search") == 0 and len(hubspot.calls) == 1


def test_refused_property_is_reported_and_call_written(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    result = hconn.write_call(
        person(hubspot, cid), make_activity(), {"budget": "80000", "interest_level": "huge", "no_such_field": "x"}
    )
    assert set(result.rejected) == {"interest_level", "no_such_field"}
    assert "allowed options" in result.rejected["interest_level"]
    assert "does not exist" in result.rejected["no_such_field"]
    assert result.written == {"budget": "80000"}
    assert hubspot.contact(cid)["budget"] == "80000" and hubspot.contact(cid).get("interest_level") is None
    assert len(hubspot.calls_for("call-1")) == 1


def test_validation_error_names_property(hconn: HubSpotConnector) -> None:
    with pytest.raises(PermanentError) as info:
        hconn.create_person("contact", {"lastname": "X", "nps": "ten"}, [])
    assert info.value.status == 400 and info.value.code == "VALIDATION_ERROR"
    assert info.value.fields == ["nps"] and "nps" in info.value.message


# -- errors --------------------------------------------------------------------------------
ERRORS = [
    (400, {"status": "error", "message": "Invalid input", "category": "VALIDATION_ERROR"}, {}, PermanentError),
    (
        401,
        {"status": "error", "message": "Authentication credentials not found", "category": "INVALID_AUTHENTICATION"},
        {},
        CredentialsError,
    ),
    (403, {"status": "error", "message": "missing scopes", "category": "MISSING_SCOPES"}, {}, CredentialsError),
    (404, {"status": "error", "message": "Object not found", "category": "OBJECT_NOT_FOUND"}, {}, PermanentError),
    (
        429,
        {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        {"Retry-After": "7"},
        RateLimited,
    ),
    (
        500,
        {"status": "error", "message": "internal error +966501234567", "category": "INTERNAL_ERROR"},
        {},
        RetryableError,
    ),
    (502, "<html>bad gateway</html>", {}, RetryableError),
    (503, {"status": "error", "message": "unavailable"}, {}, RetryableError),
]


@pytest.mark.parametrize(("status", "body", "headers", "expected"), ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_error_statuses(hubspot: HubSpotSandbox, hconn: HubSpotConnector, status, body, headers, expected) -> None:
    hubspot.add_fault(match="/search", status=status, body=body, headers=headers)
    with pytest.raises(expected) as info:
        hconn.find_people("+966501234567", ["contact"], [])
    text = str(info.value)
    assert national_digits("+966501234567") not in text and hubspot.token not in text
    if expected is RateLimited:
        assert info.value.retry_after == 7
    if expected is not CredentialsError:
        assert info.value.status == status


def test_429_on_a_get_is_not_slept_in_the_client(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    hubspot.add_fault(
        match="GET /crm/v3/properties",
        status=429,
        headers={"Retry-After": "30"},
        body={
            "status": "error",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
            "message": "You have reached your ten_secondly_rolling limit.",
        },
    )
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        hconn.check_credentials()
    assert info.value.retry_after == 30 and time.monotonic() - started < 2
    assert hubspot.count() == 1


def test_timeout_is_retryable(hubspot: HubSpotSandbox, redis: Redis) -> None:
    conn = HubSpotConnector(hubspot.settings(), redis, timeout=(1, 0.3))
    hubspot.add_fault(match=CALLS, delay=0.8)
    cid = hubspot.seed_contact({"phone": "+14155551212"})
    try:
        with pytest.raises(RetryableError, match="did not answer"):
            conn.write_call(person(hubspot, cid), make_activity(), {})
    finally:
        conn.close()


def test_connection_refused_is_retryable(redis: Redis, hubspot: HubSpotSandbox) -> None:
    conn = HubSpotConnector(hubspot.settings(base_url=f"http://127.0.0.1:{free_port()}"), redis, timeout=(1, 1))
    try:
        with pytest.raises(RetryableError) as info:
            conn.find_people("+14155551212", ["contact"], [])
        assert info.value.status == 0 and "4155551212" not in str(info.value)
    finally:
        conn.close()


def test_wrong_token(hubspot: HubSpotSandbox, redis: Redis) -> None:
    conn = HubSpotConnector(hubspot.settings(access_token="pat-na1-wrong"), redis)
    try:
        with pytest.raises(CredentialsError, match="INVALID_AUTHENTICATION") as info:
            conn.check_credentials()
        assert "pat-na1-wrong" not in str(info.value)
    finally:
        conn.close()
    assert redis.hget("crmsync:metrics:credential_errors_total", "crm=hubspot") == b"1"


# -- metadata ------------------------------------------------------------------------------
def test_describe_contact(hconn: HubSpotConnector) -> None:
    fields = hconn.describe("contact")
    assert fields["hs_lead_status"].type == "enumeration" and "OPEN_DEAL" in (fields["hs_lead_status"].options or [])
    assert fields["interest_level"].options == ["high", "medium", "low"]
    assert fields["budget"].type == "number" and fields["budget"].updateable
    assert not fields["lastmodifieddate"].updateable and not fields["createdate"].updateable
    assert fields["callback_requested"].options == ["true", "false"]


def test_check_credentials_is_one_request(hubspot: HubSpotSandbox, hconn: HubSpotConnector) -> None:
    hconn.check_credentials()
    assert hubspot.count() == 1


# -- shared rate limits --------------------------------------------------------------------
def test_rate_limit_shared_by_two_processes(redis: Redis, redis_url: str) -> None:
    with HubSpotSandbox(rate_limit=(10, 2.0), search_rate_limit=(5, 1.0)) as hs:
        hs.seed_contact({"phone": "+14155551212"})
        rounds = 6
        cmd = [sys.executable, "-m", "tests.hs_helpers", hs.url, redis_url, str(rounds), "10/2s", "4/s"]
        procs = [subprocess.Popen(cmd, cwd=ROOT) for _ in range(2)]
        for proc in procs:
            assert proc.wait(60) == 0
        assert hs.count() == 2 * rounds * 2
        assert 429 not in hs.statuses()
        assert hs.max_per_window(2.0) <= 10
        assert hs.max_per_window(1.0, "/search", exclude_search=False) <= 5
        assert redis.hgetall("crmsync:metrics:rate_limit_waits_total")  # the processes did wait


def test_a_slot_taken_as_it_frees_arrives_outside_hubspot_window(
    hubspot: HubSpotSandbox, hconn: HubSpotConnector
) -> None:
    # HubSpot counts a search when it arrives. The first of four arrives 25 ms late (a delay
    # within the limiter's guard); a fifth sent the moment the first's slot frees in our
    # window (without waiting) must still arrive a full second after it, not be its 5th.
    hubspot.add_fault(match="/search$", delay=0.025)
    started = time.time()
    for _ in range(4):
        hconn.find_people("+14155551212", ["contact"], [])
    time.sleep(max(0.0, started + 1.005 - time.time()))
    hconn.find_people("+14155551212", ["contact"], [])
    assert hubspot.statuses("/search$") == [200] * 5


def test_a_host_that_cannot_be_resolved_is_a_configuration_problem():
    import socket

    from urllib3.exceptions import MaxRetryError, NameResolutionError

    from crmsync.crm.hubspot_errors import translate

    unresolved = NameResolutionError("api.hubapi.example", None, socket.gaierror(-2, "Name or service not known"))
    error = translate(MaxRetryError(None, "/crm/v3/objects/contacts/search", reason=unresolved))
    assert isinstance(error, CredentialsError)
    assert "HUBSPOT_BASE_URL" in str(error) and "cannot be resolved" in str(error)
    assert not isinstance(translate(MaxRetryError(None, "/x", reason=ConnectionRefusedError())), CredentialsError)
