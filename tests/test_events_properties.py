"""Property-based tests of the webhook body reading (hypothesis).

Bodies are generated over every path of the alias table, with ids of every JSON type (ints
of any size, nulls, empty text, "null", JSON inside strings, unicode, deep nesting) and
every event spelling. The id paths checked below are SPEC §5's, written out here, not read
from crmsync's table. Example counts are bounded so the file runs in seconds.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crmsync import store
from crmsync.events import InvalidEvent, aliases, dedupe_key, normalise
from crmsync.events.normalise import KNOWN_EVENTS
from crmsync.settings import Settings
from crmsync.web import create_app

TOKEN = "sk_live_property_tests_token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
RECEIVED = "2026-03-02T10:00:00.000Z"
# SPEC §5, Identity: where a call id may be taken from, in order.
SPEC_ID_PATHS = [
    ("callId",),
    ("call_id",),
    ("caller_info", "call_id"),
    ("data", "data", "conversationId"),
    ("data", "conversationId"),
    ("caller_info", "conversationId"),
]
EVENTS = [
    *KNOWN_EVENTS,
    "call_end",
    "call_ended",
    "Call.Ended",
    "transcription_update",
    "tool_executed",
    "call.analyzed",
    " call.started ",
    "",
]
ALL_PATHS = sorted({path for alias in aliases.TABLE for path in alias.paths})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.text(st.characters(exclude_categories=["Cn"]), max_size=6),  # lone surrogates too ("\\ud800")
    st.sampled_from(["", " ", "null", "None", "undefined", "0", "1705329300000", "2026-03-02T09:14:52Z", "é☎️𝄞"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=6), inner, max_size=3),
        inner.map(lambda v: json.dumps(v)),  # JSON inside a string
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any) -> Any:
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


deep_values = st.builds(nested, st.integers(min_value=1, max_value=150), scalars)
json_values = st.one_of(json_values, deep_values)
good_ids = st.one_of(
    st.text(min_size=1, max_size=24).filter(
        lambda t: t.strip() and t.strip().lower() not in ("null", "none", "undefined", "nil")
    ),
    st.integers(min_value=-(10**40), max_value=10**40),
)
id_values = st.one_of(good_ids, json_values)


def put(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``path``, making objects on the way; a non-object on the way wins."""
    node = body
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return
        node = child
    node[path[-1]] = value


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for path in draw(st.lists(st.sampled_from(ALL_PATHS), max_size=8, unique=True)):
        put(body, path, draw(json_values))
    for path in draw(st.lists(st.sampled_from(SPEC_ID_PATHS), max_size=3, unique=True)):
        put(body, path, draw(id_values))
    where = draw(st.sampled_from(["eventType", "event_type", None]))
    if where:
        body[where] = draw(st.one_of(st.sampled_from(EVENTS), json_values))
    return body


def texts_at_id_paths(body: dict[str, Any]) -> set[str]:
    found = set()
    for path in SPEC_ID_PATHS:
        value = aliases.at(body, path)
        if isinstance(value, str | int) and not isinstance(value, bool):
            found.add(str(value).strip())
    return found


@pytest.fixture(scope="module")
def receiver(redis_url):
    settings_ = Settings.from_env({"REDIS_URL": redis_url, "WEBHOOK_TOKENS": TOKEN})
    app = create_app(settings_)
    yield app.test_client(), app.extensions["crmsync"].redis
    app.extensions["crmsync"].redis.flushdb()
    app.extensions["crmsync"].redis.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(body=bodies())
def test_the_receiver_answers_200_400_413_or_422_and_stores_under_an_id_from_the_body(receiver, body):
    client, redis = receiver
    answer = client.post("/webhooks/hamsa", data=json.dumps(body), headers=AUTH)
    assert answer.status_code in (200, 400, 413, 422), answer.get_data(as_text=True)
    if answer.status_code == 200:
        call_id = answer.json["call_id"]
        assert call_id in texts_at_id_paths(body)
        assert call_id and call_id.lower() not in ("none", "null", "undefined", "nil")
        assert redis.exists(store.events_key(call_id))
    elif answer.status_code == 422:
        details = answer.json["details"]
        assert details and all(isinstance(m, str) and m for msgs in details.values() for m in msgs)
        assert redis.exists(store.quarantine_key(answer.json["quarantine_id"]))


@settings(max_examples=300, deadline=None)
@given(body=bodies())
def test_normalising_is_deterministic_and_the_call_id_comes_from_the_body(body):
    try:
        event = normalise(body, "US", received_at=RECEIVED)
    except InvalidEvent as invalid:
        assert invalid.details
        with pytest.raises(InvalidEvent) as again:
            normalise(copy.deepcopy(body), "US", received_at=RECEIVED)
        assert again.value.details == invalid.details
        return
    assert event["call_id"] in texts_at_id_paths(body)
    assert event["call"]["id"] == event["call_id"]
    twin = normalise(copy.deepcopy(body), "US", received_at=RECEIVED)
    assert twin == event and dedupe_key(twin) == dedupe_key(event)
    assert json.loads(json.dumps(event)) == event  # what the store keeps is what the job reads


@settings(max_examples=300, deadline=None)
@given(
    one=good_ids,
    other=good_ids,
    event=st.sampled_from(EVENTS[:-1]),
    path=st.sampled_from(SPEC_ID_PATHS),
    rest=st.dictionaries(st.sampled_from(["timestamp", "projectId", "agentId", "agentName"]), scalars),
)
def test_distinct_ids_give_distinct_dedupe_keys(one, other, event, path, rest):
    assume(str(one).strip() != str(other).strip())
    keys = []
    for call_id in (one, other):
        body = dict(rest)
        body["data"] = {"data": {}}
        body["eventType"] = event
        put(body, path, call_id)
        keys.append(dedupe_key(normalise(body, "US", received_at=RECEIVED)))
    assert keys[0] != keys[1]
