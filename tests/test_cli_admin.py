"""crmsync quarantine, status, replay and stats, against a real Redis."""

import json

import pytest
from click.testing import CliRunner
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.cli import main
from crmsync.settings import Settings
from crmsync.web import create_app

TOKEN = "cli-token"


@pytest.fixture
def env(redis, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WEBHOOK_TOKENS", TOKEN)
    monkeypatch.delenv("CRM", raising=False)
    return Settings.from_env()


def post(settings, redis, body):
    client = create_app(settings, redis).test_client()
    return client.post("/webhooks/hamsa", data=body, headers={"Authorization": f"Bearer {TOKEN}"})


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_quarantine_list_show_replay_and_drop(env, redis):
    # Hamsa sends the call id under a key the receiver does not know: refused, kept
    body = json.dumps(
        {"eventType": "call.ended", "call": {"id": "q-1"}, "data": {"callParams": {"userNumber": "+966501234567"}}}
    ).encode()
    answer = post(env, redis, body)
    assert answer.status_code == 422
    qid = answer.json["quarantine_id"]

    listed = run("quarantine", "list", "--json")
    assert [row["id"] for row in json.loads(listed.output)] == [qid]
    shown = run("quarantine", "show", qid)
    assert "callId" in shown.output and '"call"' in shown.output

    still_bad = run("quarantine", "replay", qid)
    assert still_bad.exit_code == 1
    assert "still not a recognisable event" in still_bad.output
    assert redis.exists(store.quarantine_key(qid))  # nothing lost when replay fails

    # an admin fixes the body's shape (here: the stored body) and replays it
    fixed = json.loads(redis.hget(store.quarantine_key(qid), "body"))
    fixed["callId"] = fixed.pop("call")["id"]
    redis.hset(store.quarantine_key(qid), "body", json.dumps(fixed))
    replayed = run("quarantine", "replay", qid)
    assert replayed.exit_code == 0, replayed.output
    assert "accepted as call.ended of call q-1" in replayed.output
    assert Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).count == 1
    assert not redis.exists(store.quarantine_key(qid))

    post(env, redis, b'{"nothing": 1}')
    [row] = json.loads(run("quarantine", "list", "--json").output)
    assert run("quarantine", "drop", row["id"]).exit_code == 0
    assert json.loads(run("quarantine", "list", "--json").output) == []
    assert run("quarantine", "show", "nope").exit_code == 1


def test_status_of_a_queued_call_and_unknown_call(env, redis, fixture_path):
    post(env, redis, (fixture_path / "call_ended_documented.json").read_bytes())
    result = run("status", "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37", "--json")
    data = json.loads(result.output)
    assert data["state"] == "queued" and data["events"][0]["event"] == "call.ended"
    human = run("status", "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37")
    assert "queued" in human.output
    unknown = run("status", "no-such-call")
    assert unknown.exit_code == 1 and "no call no-such-call is known" in unknown.output


def test_replay_needs_ids_and_skips_expired_calls(env, redis):
    assert run("replay").exit_code == 1
    result = run("replay", "gone-call")
    assert "no events recorded" in result.output


def test_stats_show_the_counters(env, redis, fixture_path):
    body = (fixture_path / "call_ended_documented.json").read_bytes()
    post(env, redis, body)
    post(env, redis, body)
    figures = json.loads(run("stats", "--json").output)
    assert figures["events_received_total"]["answer=accepted,event=call.ended"] == 1
    assert figures["duplicates_total"]["answer=duplicate,event=call.ended"] == 1
    assert figures["queue_depth"]["state=queued"] == 1
    assert "events received total" in run("stats").output


def test_redis_unreachable_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    result = run("status", "x")
    assert result.exit_code == 1
    assert "Redis at REDIS_URL is unreachable" in result.output
