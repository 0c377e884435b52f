"""The sandbox HubSpot behaves like the documented API, as seen by the real hubspot-api-client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.objects.calls import ApiException as CallsApiException
from urllib3.util.retry import Retry

from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.hubspot_portal import searchable_digits


@pytest.fixture(scope="module")
def running() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(search_rate_limit=None) as hs:  # limits: test_headers_and_rate_limits
        yield hs


@pytest.fixture
def sandbox(running: HubSpotSandbox) -> HubSpotSandbox:
    running.reset()
    return running


@pytest.fixture
def client(sandbox: HubSpotSandbox) -> Iterator[Any]:
    """The API objects of one real client, closed afterwards."""
    hs = HubSpot(access_token=sandbox.token, host=sandbox.url)
    apis = {
        "search": hs.crm.contacts.search_api,
        "contacts": hs.crm.contacts.basic_api,
        "batch": hs.crm.contacts.batch_api,
        "calls": hs.crm.objects.calls.basic_api,
        "calls_search": hs.crm.objects.calls.search_api,
        "properties": hs.crm.properties.core_api,
        "calls_batch": hs.crm.objects.calls.batch_api,
    }
    yield apis
    for api in apis.values():
        api.api_client.rest_client.pool_manager.clear()


def search(client: Any, *groups: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"filterGroups": [{"filters": filters} for filters in groups], **extra}
    return client["search"].do_search(public_object_search_request=body)


def f(prop: str, op: str, value: str) -> dict[str, Any]:
    return {"propertyName": prop, "operator": op, "value": value}


def error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    return json.loads(exc.value.body)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("+966 50 123 4567", "501234567"),
        ("0501234567", "501234567"),
        ("00966501234567", "501234567"),
        ("(415) 555-1212", "4155551212"),
        ("+44 (0)20 7946 0018", "2079460018"),
        ("00004", "4"),
        ("", None),
    ],
)
def test_searchable_number_is_national_digits(stored: str, expected: str | None) -> None:
    assert searchable_digits(stored) == expected


def test_eq_is_exact_and_contains_token_uses_wildcards(sandbox: HubSpotSandbox, client: Any) -> None:
    cid = sandbox.seed_contact({"phone": "(415) 555-1212", "firstname": "Ada"})
    assert search(client, [f("phone", "EQ", "+14155551212")]).total == 0
    assert search(client, [f("phone", "EQ", "(415) 555-1212")]).total == 1
    assert search(client, [f("firstname", "EQ", "ADA")]).total == 1  # case-insensitive
    hits = search(
        client, [f("hs_searchable_calculated_phone_number", "CONTAINS_TOKEN", "*5551212")], properties=["phone"]
    )
    assert [r.id for r in hits.results] == [cid] and hits.results[0].properties == {"phone": "(415) 555-1212"}
    assert search(client, [f("phone", "CONTAINS_TOKEN", "415")]).total == 1  # a token of "(415) 555-1212"
    assert search(client, [f("phone", "CONTAINS_TOKEN", "41")]).total == 0


def test_groups_or_filters_and(sandbox: HubSpotSandbox, client: Any) -> None:
    sandbox.seed_contact({"firstname": "A", "lastname": "X"})
    sandbox.seed_contact({"firstname": "B", "lastname": "Y"})
    sandbox.seed_contact({"firstname": "C"})
    assert search(client, [f("firstname", "EQ", "A")], [f("firstname", "EQ", "B")]).total == 2
    assert search(client, [f("firstname", "EQ", "A"), f("lastname", "EQ", "Y")]).total == 0
    assert search(client, [f("lastname", "HAS_PROPERTY", "")]).total == 2
    assert search(client, [f("firstname", "NEQ", "A")]).total == 2
    both = search(client, [{"propertyName": "firstname", "operator": "IN", "values": ["a", "c"]}])
    assert both.total == 2


def test_paging(sandbox: HubSpotSandbox, client: Any) -> None:
    for i in range(5):
        sandbox.seed_contact({"lastname": f"L{i}"})
    first = search(client, limit=2)
    assert first.total == 5 and len(first.results) == 2 and first.paging.next.after == "2"
    last = search(client, limit=2, after="4")
    assert len(last.results) == 1 and last.paging is None


@pytest.mark.parametrize(
    ("groups", "extra"),
    [
        ([[f("firstname", "EQ", "x")]] * 6, {}),
        ([[f("firstname", "EQ", "x")] * 11], {}),
        ([[f("firstname", "EQ", "x")] * 6] * 4 + [[f("firstname", "EQ", "x")] * 2], {}),
        ([], {"limit": 201}),
        ([[f("no_such_property", "EQ", "x")]], {}),
    ],
    ids=["6 groups", "11 filters", "26 filters", "limit 201", "unknown property"],
)
def test_search_limits(client: Any, groups: list[Any], extra: dict[str, Any]) -> None:
    with pytest.raises(ContactsApiException) as info:
        search(client, *groups, **extra)
    assert info.value.status == 400 and error(info)["category"] == "VALIDATION_ERROR"


def test_index_lag_hides_fresh_writes(sandbox: HubSpotSandbox, client: Any) -> None:
    sandbox.lag = 0.3
    client["contacts"].create(simple_public_object_input_for_create={"properties": {"firstname": "New"}})
    assert search(client, [f("firstname", "EQ", "New")]).total == 0
    time.sleep(0.35)
    assert search(client, [f("firstname", "EQ", "New")]).total == 1


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"no_such": "x"}, "PROPERTY_DOESNT_EXIST"),
        ({"lastmodifieddate": "2024-01-01T00:00:00Z"}, "READ_ONLY_VALUE"),
        ({"interest_level": "huge"}, "INVALID_OPTION"),
        ({"hs_lead_status": "open"}, "INVALID_OPTION"),
        ({"budget": "lots"}, "INVALID_INTEGER"),
        ({"callback_requested": "maybe"}, "INVALID_BOOLEAN"),
        ({"follow_up_date": "tomorrow"}, "INVALID_DATE"),
    ],
)
def test_patch_validation(sandbox: HubSpotSandbox, client: Any, properties: dict[str, str], code: str) -> None:
    cid = sandbox.seed_contact({"firstname": "A"})
    with pytest.raises(ContactsApiException) as info:
        client["contacts"].update(cid, simple_public_object_input={"properties": properties})
    body = error(info)
    assert info.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["context"]["propertyName"] == list(properties)
    assert list(properties)[0] in body["message"]


def test_patch_writes_strings_and_empty_clears(sandbox: HubSpotSandbox, client: Any) -> None:
    cid = sandbox.seed_contact({"firstname": "A", "budget": "5"})
    updated = client["contacts"].update(
        cid,
        simple_public_object_input={
            "properties": {
                "budget": "80000",
                "firstname": "",
                "callback_requested": "TRUE",
                "last_ai_call_at": "1772442801000",
                "follow_up_date": "2026-04-01",
            }
        },
    )
    assert updated.properties["budget"] == "80000" and updated.properties["firstname"] is None
    assert updated.properties["callback_requested"] == "true"
    assert updated.properties["last_ai_call_at"] == "2026-03-02T09:13:21.000Z"
    assert all(v is None or isinstance(v, str) for v in updated.properties.values())
    got = client["contacts"].get_by_id(cid, properties=["budget", "hubspot_owner_id"])
    assert got.properties["budget"] == "80000" and "hs_object_id" in got.properties


def test_missing_contact_is_404(client: Any) -> None:
    with pytest.raises(ContactsApiException) as info:
        client["contacts"].update("999999", simple_public_object_input={"properties": {"firstname": "x"}})
    assert info.value.status == 404 and error(info)["category"] == "OBJECT_NOT_FOUND"


def test_create_conflict_on_email(sandbox: HubSpotSandbox, client: Any) -> None:
    cid = sandbox.seed_contact({"email": "a@example.com"})
    with pytest.raises(ContactsApiException) as info:
        client["contacts"].create(simple_public_object_input_for_create={"properties": {"email": "A@example.com"}})
    assert info.value.status == 409 and f"Existing ID: {cid}" in error(info)["message"]


def call_body(cid: str, **props: str) -> dict[str, Any]:
    properties = {"hs_timestamp": "2026-03-02T09:14:52.318Z", "hs_call_title": "AI call", **props}
    types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]
    return {"properties": properties, "associations": [{"to": {"id": cid}, "types": types}]}


@pytest.mark.parametrize(
    "change",
    [
        {"hs_timestamp": ""},
        {"hs_call_recording_url": "http://example.com/a.mp3"},
        {"hs_call_disposition": "Connected"},
        {"hs_call_direction": "SIDEWAYS"},
        {"to": "999999"},
        {"type": 193},
    ],
    ids=[
        "no timestamp",
        "http recording",
        "disposition not a guid",
        "bad direction",
        "unknown contact",
        "contact-to-call type",
    ],
)
def test_call_create_validation(sandbox: HubSpotSandbox, client: Any, change: dict[str, Any]) -> None:
    cid = sandbox.seed_contact({"firstname": "A"})
    body = call_body(change.get("to", cid), **{k: v for k, v in change.items() if k.startswith("hs_")})
    if "type" in change:
        body["associations"][0]["types"][0]["associationTypeId"] = change["type"]
    with pytest.raises(Exception) as info:
        client["calls"].create(simple_public_object_input_for_create=body)
    assert info.value.status == 400 and error(info)["category"] == "VALIDATION_ERROR"
    assert sandbox.calls == {}


def test_call_create_search_and_update(sandbox: HubSpotSandbox, client: Any) -> None:
    cid = sandbox.seed_contact({"firstname": "A"})
    created = client["calls"].create(
        simple_public_object_input_for_create=call_body(
            cid,
            hs_call_external_id="ext-1",
            hs_call_duration="187000",
            hs_call_disposition="f240bbac-87c9-4f6e-bf70-924b57d47db7",
        )
    )
    assert created.properties["hs_timestamp"] == "2026-03-02T09:14:52.318Z"
    assert sandbox.last_status() == 201 and sandbox.calls[created.id]["_associations"] == [cid]
    found = client["calls_search"].do_search(
        public_object_search_request={"filterGroups": [{"filters": [f("hs_call_external_id", "EQ", "ext-1")]}]}
    )
    assert [r.id for r in found.results] == [created.id]
    client["calls"].update(created.id, simple_public_object_input={"properties": {"hs_call_title": "v2"}})
    assert sandbox.calls[created.id]["hs_call_title"] == "v2"


def test_batch_read_and_update(sandbox: HubSpotSandbox, client: Any) -> None:
    a = sandbox.seed_contact({"firstname": "A"})
    read = client["batch"].read(
        batch_read_input_simple_public_object_id={
            "inputs": [{"id": a}, {"id": "999999"}],
            "properties": ["firstname"],
            "propertiesWithHistory": [],
        }
    )
    assert sandbox.last_status() == 207 and [r.id for r in read.results] == [a]
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    client["batch"].update(
        batch_input_simple_public_object_batch_input={"inputs": [{"id": a, "properties": {"budget": "7"}}]}
    )
    assert sandbox.contact(a)["budget"] == "7"
    with pytest.raises(ContactsApiException) as info:
        client["batch"].read(
            batch_read_input_simple_public_object_id={
                "inputs": [{"id": str(i)} for i in range(101)],
                "properties": [],
                "propertiesWithHistory": [],
            }
        )
    assert info.value.status == 400


def test_in_filter_values_are_limited(sandbox: HubSpotSandbox, client: Any) -> None:
    sandbox.seed_contact({"firstname": "A"})
    found = search(client, [{"propertyName": "firstname", "operator": "IN", "values": ["a", *map(str, range(99))]}])
    assert found.total == 1
    with pytest.raises(ContactsApiException) as info:
        search(client, [{"propertyName": "firstname", "operator": "IN", "values": list(map(str, range(101)))}])
    assert info.value.status == 400 and "101 values; the maximum is 100" in info.value.body


def test_batch_create_and_update_calls(sandbox: HubSpotSandbox, client: Any) -> None:
    cid = sandbox.seed_contact({"firstname": "A"})
    batch = client["calls_batch"]
    assoc = [{"to": {"id": cid}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}]
    call = {
        "properties": {"hs_timestamp": "2026-03-02T09:14:52.318Z", "hs_call_external_id": "e1"},
        "associations": assoc,
    }
    with pytest.raises(CallsApiException) as info:  # one invalid input: nothing is created
        batch.create(
            batch_input_simple_public_object_batch_input_for_create={
                "inputs": [call, {"properties": {"hs_call_external_id": "e2"}, "associations": assoc}]
            }
        )
    assert info.value.status == 400 and sandbox.calls == {}
    created = batch.create(
        batch_input_simple_public_object_batch_input_for_create={
            "inputs": [call, {**call, "properties": {**call["properties"], "hs_call_external_id": "e2"}}]
        }
    )
    assert sandbox.last_status() == 201 and len(created.results) == 2
    assert sorted(c["hs_call_external_id"] for c in sandbox.calls.values()) == ["e1", "e2"]
    first = created.results[0].id
    updated = batch.update(
        batch_input_simple_public_object_batch_input={
            "inputs": [
                {"id": first, "properties": {"hs_call_title": "v2"}},
                {"id": "999999", "properties": {"hs_call_title": "x"}},
            ]
        }
    )
    assert sandbox.last_status() == 207 and updated.errors[0].context == {"ids": ["999999"]}
    assert sandbox.calls[first]["hs_call_title"] == "v2"
    with pytest.raises(CallsApiException) as info:
        batch.update(
            batch_input_simple_public_object_batch_input={
                "inputs": [{"id": first, "properties": {}}, {"id": first, "properties": {}}]
            }
        )
    assert info.value.status == 400 and "Duplicate IDs" in info.value.body


def test_properties_api(client: Any) -> None:
    everything = {p.name: p for p in client["properties"].get_all("contacts").results}
    status = everything["hs_lead_status"]
    assert status.type == "enumeration" and "OPEN_DEAL" in [o.value for o in status.options]
    assert everything["createdate"].modification_metadata.read_only_value
    assert everything["budget"].type == "number" and everything["budget"].group_name
    assert client["properties"].get_by_name("contacts", "interest_level").field_type == "select"
    with pytest.raises(Exception) as info:
        client["properties"].get_by_name("contacts", "no_such")
    assert info.value.status == 404


def test_wrong_token_is_401(sandbox: HubSpotSandbox) -> None:
    api = HubSpot(access_token="pat-na1-wrong", host=sandbox.url).crm.contacts.basic_api
    try:
        with pytest.raises(ContactsApiException) as info:
            api.get_by_id("1")
    finally:
        api.api_client.rest_client.pool_manager.clear()
    assert info.value.status == 401 and error(info)["category"] == "INVALID_AUTHENTICATION"


def test_headers_and_rate_limits(client: Any) -> None:
    with HubSpotSandbox(rate_limit=(3, 10.0), search_rate_limit=(2, 1.0)) as hs:
        api = HubSpot(access_token=hs.token, host=hs.url, retry=Retry(0, raise_on_status=False))
        props, searches = api.crm.properties.core_api, api.crm.contacts.search_api
        try:
            for _ in range(3):
                props.get_by_name("contacts", "phone")
            headers = props.api_client.last_response.getheaders()
            assert headers["X-HubSpot-RateLimit-Max"] == "3" and headers["X-HubSpot-RateLimit-Remaining"] == "0"
            assert headers["X-HubSpot-Correlation-Id"]
            with pytest.raises(Exception) as info:
                props.get_by_name("contacts", "phone")
            assert info.value.status == 429 and int(info.value.headers["Retry-After"]) >= 1
            assert error(info)["policyName"] == "TEN_SECONDLY_ROLLING" and error(info)["errorType"] == "RATE_LIMIT"
            # search has its own per-second limit, exempt from the ten-second one
            for _ in range(2):
                searches.do_search(public_object_search_request={})
            assert "X-HubSpot-RateLimit-Max" not in searches.api_client.last_response.getheaders()
            with pytest.raises(Exception) as info:
                searches.do_search(public_object_search_request={})
            assert info.value.status == 429 and error(info)["policyName"] == "SECONDLY"
        finally:
            for one in (props, searches):
                one.api_client.rest_client.pool_manager.clear()
        assert hs.statuses().count(429) == 2
