"""Retention: RAW_BODY_TTL keeps raw bodies (transcripts) apart, for less time than the events;
the settings refuse a raw-body window longer than the dedupe window."""

from __future__ import annotations

import pytest

from crmsync import store
from crmsync.errors import SettingsError
from crmsync.settings import Settings
from crmsync.web import create_app

TOKEN = "retention-token-0001"


def post(redis, redis_url, fixture_path, **env) -> str:
    settings = Settings.from_env({"REDIS_URL": redis_url, "WEBHOOK_TOKENS": TOKEN, **env})
    client = create_app(settings, redis).test_client()
    answer = client.post(
        "/webhooks/hamsa",
        data=(fixture_path / "call_ended_documented.json").read_bytes(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    return answer.json["call_id"]


def test_by_default_the_raw_body_travels_with_the_event(redis, redis_url, fixture_path):
    call_id = post(redis, redis_url, fixture_path)
    [event] = store.load_events(redis, call_id)
    assert event["raw"]["callId"] == call_id and not redis.exists(store.raw_key(call_id))
    assert redis.lindex(store.events_key(call_id), 0)[:1] == b"\x78"  # kept compressed


def test_a_shorter_raw_body_ttl_keeps_the_body_apart_and_expires_it_first(redis, redis_url, fixture_path):
    call_id = post(redis, redis_url, fixture_path, DEDUPE_TTL="7200", RAW_BODY_TTL="600")
    [event] = store.load_events(redis, call_id)
    assert "raw" not in event and event["transcript"]  # the job still has the call, transcript included
    [raw] = store.load_raw(redis, call_id)
    assert raw["callId"] == call_id
    assert 590 <= redis.ttl(store.raw_key(call_id)) <= 600 and redis.ttl(store.events_key(call_id)) > 7000


def test_raw_body_ttl_is_at_most_dedupe_ttl():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DEDUPE_TTL": "7200", "RAW_BODY_TTL": "9000"})
    assert "RAW_BODY_TTL" in str(caught.value) and "must not exceed DEDUPE_TTL (7200 s)" in str(caught.value)
    assert Settings.from_env({"DEDUPE_TTL": "7200"}).raw_body_ttl == 7200
