"""Reconciliation against the sandbox Hamsa API and a real Redis: what is fetched, what is
queued, the join with webhooks, grace, statuses, dry runs, the lock and the watermark."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from crmsync import events, store
from crmsync.errors import CredentialsError, SettingsError
from crmsync.hamsa import schedule
from crmsync.hamsa import sweep as sweeps
from crmsync.hamsa.client import HamsaClient, HamsaUnavailable
from crmsync.hamsa.reconcile import Reconciler, Rules
from crmsync.ingest import Ingest
from crmsync.metrics import CREDENTIALS_KEY, Metrics, snapshot
from crmsync.record import SyncRecord
from crmsync.sandbox.hamsa import LIST_PATH, HamsaSandbox
from crmsync.settings import Settings
from crmsync.sub_settings import ReconcileSettings
from crmsync.web import create_app
from tests.conftest import ROOT

CONVERSATION = "GET /v1/voice-agents/conversation/"
LIST = f"GET {LIST_PATH}"


def webhook(fixture_path: Path, conversation_id: str | None, call_id: str) -> dict[str, Any]:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body = copy.deepcopy(body)
    body["callId"] = call_id
    if conversation_id is None:
        del body["data"]["data"]["conversationId"]
    else:
        body["data"]["data"]["conversationId"] = conversation_id
    return body


def deliver(redis: Redis, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """What the web process does with an accepted body."""
    event = events.normalise(body, "SA")
    accepted = Ingest(redis, 3600).store(event, events.dedupe_key(event), enqueue=True)
    return accepted, event


def reconciler(redis: Redis, hamsa: HamsaSandbox, **rules: Any) -> tuple[Reconciler, HamsaClient]:
    run, client = builder(redis, hamsa, **rules)
    return run(), client


def builder(redis: Redis, hamsa: HamsaSandbox, key: str | None = None, **rules: Any) -> tuple[Any, HamsaClient]:
    """What the sweep job does: a Reconciler with the sweep's hooks."""
    client = HamsaClient(key or hamsa.api_key, hamsa.url, sleep=lambda s: None, attempts=2)
    values: dict[str, Any] = {"grace": 300, "region": "SA", **rules}
    return (lambda **hooks: Reconciler(redis, client, Ingest(redis, 3600), Rules(**values), **hooks)), client


def window(hours: float = 2) -> tuple[int, int]:
    now = datetime.now(UTC)
    return int((now - timedelta(hours=hours)).timestamp() * 1000), int(now.timestamp() * 1000)


def queued_calls(redis: Redis) -> list[str]:
    queue = Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    return [job.args[0] for job in queue.get_jobs()]


def test_only_calls_without_a_webhook_are_fetched_and_queued(hamsa, redis, fixture_path) -> None:
    ids = [
        hamsa.add_call(ended_ago=900 + i, outcome={"budget": str(i)}, transcript=[{"Agent": "Hi"}, {"User": "Yo"}])
        for i in range(10)
    ]
    for i, cid in enumerate(ids[:7]):
        deliver(redis, webhook(fixture_path, cid, f"call_{i}"))
    before = set(queued_calls(redis))
    run, client = reconciler(redis, hamsa)
    summary = run.run(*window())
    assert (summary.listed, summary.received, summary.queued, summary.fetched) == (10, 7, 3, 3)
    assert hamsa.count(LIST) == 1 and hamsa.count(CONVERSATION) == 3
    assert set(queued_calls(redis)) - before == set(ids[7:])
    event = store.load_events(redis, ids[8])[0]
    assert (event["call_id"], event["source"], event["call"]["source"]) == (ids[8], "reconcile", "reconcile")
    assert event["call"]["conversation_id"] == ids[8] and event["outcome"] == {"budget": "8"}
    assert event["transcript"] == [{"speaker": "Agent", "text": "Hi"}, {"speaker": "User", "text": "Yo"}]
    assert event["call"]["customer_number"] == "+201095987769" and event["unavailable"] == []
    assert SyncRecord.load(redis, ids[8]).source == "reconcile"
    again = reconciler(redis, hamsa)[0].run(*window())
    assert (again.received, again.queued, hamsa.count(CONVERSATION)) == (10, 0, 3)
    client.close()


def test_a_webhook_after_the_sweep_is_recorded_for_the_same_call(hamsa, redis, fixture_path) -> None:
    cid = hamsa.add_call(ended_ago=900)
    reconciler(redis, hamsa)[0].run(*window())
    accepted, event = deliver(redis, webhook(fixture_path, cid, "call_late-different-id"))
    assert accepted and event["call_id"] == cid and event["joined_from"] == "call_late-different-id"
    assert [e["source"] if "source" in e else "webhook" for e in store.load_events(redis, cid)] == [
        "reconcile",
        "webhook",
    ]
    assert store.load_events(redis, "call_late-different-id") == []
    again, _ = deliver(redis, webhook(fixture_path, cid, "call_late-different-id"))
    assert again is False  # the same delivery twice is a duplicate


def test_a_webhook_first_makes_the_sweep_take_nothing(hamsa, redis, fixture_path) -> None:
    cid = hamsa.add_call(ended_ago=900)
    deliver(redis, webhook(fixture_path, cid, "call_first"))
    summary = reconciler(redis, hamsa)[0].run(*window())
    assert (summary.received, summary.queued, hamsa.count(CONVERSATION)) == (1, 0, 0)
    assert redis.get(store.conversation_key(cid)) == b"call_first"


def test_a_webhook_without_a_conversation_id_joins_by_its_call_id(hamsa, redis, fixture_path) -> None:
    same = hamsa.add_call(ended_ago=900)
    other = hamsa.add_call(ended_ago=900)
    deliver(redis, webhook(fixture_path, None, same))  # its callId is Hamsa's conversation id
    deliver(redis, webhook(fixture_path, None, "call_not-a-conversation-id"))
    summary = reconciler(redis, hamsa)[0].run(*window())
    assert summary.received == 1 and summary.queued == 1
    assert queued_calls(redis).count(same) == 1  # the webhook's job, none from the sweep
    assert other in queued_calls(redis)  # no link to the other webhook: Hamsa's call is taken


def test_grace_and_running_calls_wait_and_hold_the_watermark(hamsa, redis) -> None:
    recent = hamsa.add_call(ended_ago=30)
    running = hamsa.add_call(ended_ago=1200, status="IN_PROGRESS")
    done = hamsa.add_call(ended_ago=1200)
    summary = reconciler(redis, hamsa)[0].run(*window())
    assert summary.queued == 1 and queued_calls(redis) == [done]
    assert summary.skipped == {"ended within HAMSA_RECONCILE_GRACE": 1, "in progress": 1}
    created = {c: int(hamsa.calls[c].created_at.timestamp() * 1000) for c in (recent, running)}
    assert summary.hold_ms == min(created.values())


def test_statuses_decide_which_unanswered_calls_are_logged(hamsa, redis) -> None:
    missed = hamsa.add_call(ended_ago=900, status="NO_ANSWER", duration=0)
    failed = hamsa.add_call(ended_ago=900, status="FAILED", duration=0)
    default = reconciler(redis, hamsa)[0].run(*window())
    assert default.queued == 0 and hamsa.count(CONVERSATION) == 0
    assert default.skipped == {
        "status no_answer not in the mapping's statuses": 1,
        "status failed not in the mapping's statuses": 1,
    }
    wider = reconciler(redis, hamsa, statuses=frozenset({"completed", "no_answer"}))[0].run(*window())
    assert wider.queued == 1 and queued_calls(redis) == [missed]
    assert store.load_events(redis, missed)[0]["call"]["status"] == "no_answer"
    assert store.load_events(redis, failed) == []


def test_missing_outcome_is_logged_with_what_was_unavailable(hamsa, redis) -> None:
    cid = hamsa.add_call(ended_ago=900, outcome=None, user_number=None)
    reconciler(redis, hamsa)[0].run(*window())
    event = store.load_events(redis, cid)[0]
    assert event["unavailable"] == ["outcome", "transcript", "customer_number"]
    assert SyncRecord.load(redis, cid).unavailable == ["outcome", "transcript", "customer_number"]


def test_a_dry_run_writes_nothing_and_fetches_nothing(hamsa, redis) -> None:
    for i in range(4):
        hamsa.add_call(ended_ago=900 + i)
    keys_before = set(redis.keys("*"))
    summary = reconciler(redis, hamsa, dry_run=True)[0].run(*window())
    assert summary.queued == 4 and summary.fetched == 0 and hamsa.count(CONVERSATION) == 0
    assert set(redis.keys("*")) == keys_before


def config(**values: Any) -> ReconcileSettings:
    return ReconcileSettings(**{"interval": 300, "lookback": 7200, "grace": 300, **values})


def test_a_sweep_that_hamsa_stops_resumes_from_the_watermark(hamsa, redis) -> None:
    old = hamsa.add_call(ended_ago=3 * 3600)  # older than the look-back
    run = builder(redis, hamsa)[0]
    first = sweeps.sweep(redis, run, config(), 7 * 24 * 3600)
    assert first is not None and first.queued == 0  # the first window is the look-back only
    mark = int(redis.hget(sweeps.WATERMARK_KEY, sweeps.PROJECT))
    new = hamsa.add_call(ended_ago=900)
    hamsa.add_fault(match=CONVERSATION, status=503, times=None)
    with pytest.raises(HamsaUnavailable):
        sweeps.sweep(redis, run, config(), 7 * 24 * 3600)
    assert int(redis.hget(sweeps.WATERMARK_KEY, sweeps.PROJECT)) == mark  # not moved past the failure
    redis.hset(sweeps.WATERMARK_KEY, sweeps.PROJECT, mark - 4 * 3600 * 1000)  # as if sweeps had failed for hours
    hamsa.clear_faults()
    caught_up = sweeps.sweep(redis, run, config(), 7 * 24 * 3600)
    assert caught_up is not None and caught_up.queued == 2 and set(queued_calls(redis)) == {old, new}
    figures = snapshot(redis)
    assert figures["reconcile_sweeps_total"] == {"result=done": 2, "result=failed": 1}
    assert figures["webhooks_missed_total"] == {"": 2}
    assert sweeps.missed_recently(redis) == 2


def test_one_sweep_at_a_time(hamsa, redis) -> None:
    hamsa.add_call(ended_ago=900)
    held = redis.lock(sweeps.LOCK_KEY, timeout=30)
    assert held.acquire(blocking=False)
    run = builder(redis, hamsa)[0]
    assert sweeps.sweep(redis, run, config(), 7 * 24 * 3600) is None
    assert hamsa.count() == 0 and snapshot(redis)["reconcile_sweeps_total"] == {"result=locked": 1}
    held.release()
    assert sweeps.sweep(redis, run, config(), 7 * 24 * 3600) is not None


def test_a_refused_key_is_shown_as_a_configuration_problem(hamsa, redis) -> None:
    run = builder(redis, hamsa, key="wrong")[0]
    with pytest.raises(CredentialsError):
        sweeps.sweep(redis, run, config(), 7 * 24 * 3600)
    assert b"Hamsa refused HAMSA_API_KEY (401)" in redis.hget(CREDENTIALS_KEY, "hamsa")


def test_one_scheduled_sweep_per_slot_however_many_workers_ask(redis) -> None:
    now = 1_000_000.0
    first = schedule.schedule_next(redis, 300, now=now)
    second = schedule.schedule_next(redis, 300, now=now + 10)
    assert first == f"reconcile-{int(now // 300) + 1}" and second is None
    registry = ScheduledJobRegistry(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    assert registry.get_job_ids() == [first]
    assert schedule.schedule_next(redis, 0) is None


def test_settings_read_the_reconcile_variables() -> None:
    settings = Settings.from_env(
        {
            "HAMSA_API_KEY": "k",
            "HAMSA_RECONCILE_INTERVAL": "60",
            "HAMSA_RECONCILE_LOOKBACK": "3600",
            "HAMSA_RECONCILE_GRACE": "120",
            "HAMSA_AGENT_IDS": "a-1, a-2,",
        }
    )
    assert settings.reconcile == ReconcileSettings(interval=60, lookback=3600, grace=120, agent_ids=("a-1", "a-2"))
    assert settings.sweeps_on
    assert not Settings.from_env({"HAMSA_API_KEY": "k", "HAMSA_RECONCILE_INTERVAL": "0"}).sweeps_on
    assert not Settings.from_env({}).sweeps_on  # no key, no sweeps


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HAMSA_RECONCILE_GRACE": "7200"},
            "HAMSA_RECONCILE_GRACE (7200 s) must be shorter than HAMSA_RECONCILE_LOOKBACK",
        ),
        ({"HAMSA_RECONCILE_LOOKBACK": "900000"}, "HAMSA_RECONCILE_LOOKBACK (900000 s) must not exceed DEDUPE_TTL"),
        ({"HAMSA_RECONCILE_INTERVAL": "-1"}, "HAMSA_RECONCILE_INTERVAL must be at least 0"),
        ({"HAMSA_RECONCILE_LOOKBACK": "two hours"}, "HAMSA_RECONCILE_LOOKBACK 'two hours' is not a whole number"),
    ],
)
def test_contradictory_reconcile_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value).startswith(message)


def web_client(redis, redis_url: str, hamsa: HamsaSandbox):
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "WEBHOOK_TOKENS": "t0ken",
            "CRM": "hubspot",
            "MAPPINGS_DIR": str(ROOT / "mappings"),
            "HAMSA_API_KEY": hamsa.api_key,
            "HAMSA_BASE_URL": hamsa.url,
        }
    )
    return create_app(settings, redis).test_client()


def test_the_webhook_answer_names_the_call_it_joined(hamsa, redis, redis_url, fixture_path) -> None:
    cid = hamsa.add_call(ended_ago=900)
    reconciler(redis, hamsa)[0].run(*window())
    body = webhook(fixture_path, cid, "call_late")
    answer = web_client(redis, redis_url, hamsa).post(
        "/webhooks/hamsa", json=body, headers={"Authorization": "Bearer t0ken"}
    )
    assert answer.status_code == 200
    assert answer.json == {"status": "accepted", "call_id": cid, "event": "call.ended"}
    receipts = store.load_receipts(redis, cid)
    assert [(r["source"], r.get("call_id")) for r in receipts] == [("reconcile", None), ("webhook", "call_late")]


def test_readyz_names_a_refused_key_and_warns_of_missed_webhooks(hamsa, redis, redis_url) -> None:
    client = web_client(redis, redis_url, hamsa)
    assert client.get("/readyz").json["warnings"] == []
    hamsa.add_call(ended_ago=900)
    assert sweeps.sweep(redis, builder(redis, hamsa)[0], config(), 7 * 24 * 3600).queued == 1
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["warnings"] == [
        "1 call in the last hour reached crmsync only through Hamsa's call history: "
        "Hamsa's webhook deliveries are failing (check the agent's webhook URL and token)"
    ]
    with pytest.raises(CredentialsError):
        sweeps.sweep(redis, builder(redis, hamsa, key="revoked")[0], config(), 7 * 24 * 3600)
    refused = client.get("/readyz")
    assert refused.status_code == 503
    assert refused.json["problems"] == [
        "hamsa refuses crmsync's credentials: hamsa: Hamsa refused HAMSA_API_KEY "
        "(401): set a valid API key from the Hamsa dashboard"
    ]
    assert refused.json["warnings"][1].startswith("the last reconciliation sweep stopped at ")
    assert "revoked" not in refused.get_data(as_text=True)


def test_two_webhooks_with_one_conversation_id_stay_two_calls(redis, fixture_path) -> None:
    # Only a call whose id is the conversation id (a reconciled one) takes in other call ids.
    first, _ = deliver(redis, webhook(fixture_path, "conv-shared", "call_a"))
    second, event = deliver(redis, webhook(fixture_path, "conv-shared", "call_b"))
    assert first and second and event["call_id"] == "call_b" and "joined_from" not in event
    assert len(store.load_events(redis, "call_a")) == len(store.load_events(redis, "call_b")) == 1


def test_hamsa_agent_ids_sweep_each_agent_with_its_own_watermark(hamsa, redis) -> None:
    mine = [hamsa.add_call(ended_ago=900, agent_id=agent) for agent in ("agent-a", "agent-b", "agent-c")]
    summary = sweeps.sweep(redis, builder(redis, hamsa)[0], config(agent_ids=("agent-a", "agent-b")), 7 * 24 * 3600)
    assert summary is not None and summary.queued == 2 and set(queued_calls(redis)) == set(mine[:2])
    asked = [r.query for r in hamsa.requests if r.path == LIST_PATH]
    assert [("voiceAgentId=agent-a" in q, "voiceAgentId=agent-b" in q) for q in asked] == [(True, False), (False, True)]
    assert set(redis.hkeys(sweeps.WATERMARK_KEY)) == {b"agent-a", b"agent-b"}


def test_call_source_tells_mappings_how_the_call_came(hamsa, redis, fixture_path) -> None:
    reconciled = hamsa.add_call(ended_ago=900)
    reconciler(redis, hamsa)[0].run(*window())
    deliver(redis, webhook(fixture_path, reconciled, "call_late"))
    deliver(redis, webhook(fixture_path, "conv-webhook-only", "call_by-webhook"))
    assert events.call_context(store.load_events(redis, reconciled))["call"]["source"] == "reconcile"
    assert events.call_context(store.load_events(redis, "call_by-webhook"))["call"]["source"] == "webhook"


def early_event(fixture_path: Path, name: str, call_id: str, conversation_id: str | None) -> dict[str, Any]:
    body = json.loads((fixture_path / f"{name}.json").read_text())
    body["callId"] = call_id
    if conversation_id is not None:
        body["data"]["conversationId"] = conversation_id
    return body


@pytest.mark.parametrize(
    ("name", "own_id"),
    [("call_started", None), ("transcription_update", None), ("call_started", "call_own-id")],
)
def test_a_lost_call_ended_is_reconciled_although_an_earlier_event_came(
    hamsa, redis, fixture_path, name: str, own_id: str | None
) -> None:
    # Only events that sync (those the mapping subscribes to, so enqueued) make a call "received".
    cid = hamsa.add_call(ended_ago=900)
    event = events.normalise(early_event(fixture_path, name, own_id or cid, cid if own_id else None), "SA")
    assert Ingest(redis, 3600).store(event, events.dedupe_key(event), enqueue=False)
    summary = reconciler(redis, hamsa)[0].run(*window())
    assert (summary.received, summary.queued, summary.fetched) == (0, 1, 1)
    assert queued_calls(redis) == [cid]
    accepted, late = deliver(redis, webhook(fixture_path, cid, own_id or cid))  # the call.ended after all
    assert accepted and late["call_id"] == cid
    assert queued_calls(redis) == [cid, cid]  # the same call again: its activity is updated, not doubled
    assert reconciler(redis, hamsa)[0].run(*window()).received == 1


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "Hamsa refused: 400"), (422, "Hamsa refused: 422"), (404, "not found by Hamsa's conversation API")],
)
def test_a_conversation_hamsa_refuses_is_skipped_and_the_sweep_goes_on(hamsa, redis, status, reason) -> None:
    poison = hamsa.add_call(ended_ago=1000)
    good = [hamsa.add_call(ended_ago=900 + i) for i in range(2)]
    hamsa.add_fault(match=CONVERSATION + poison, status=status, body={"message": "bad conversation"}, times=None)
    client = HamsaClient(hamsa.api_key, hamsa.url, metrics=Metrics(redis), sleep=lambda s: None, attempts=2)
    rules = Rules(grace=300, region="SA")
    run = lambda **hooks: Reconciler(redis, client, Ingest(redis, 3600), rules, **hooks)  # noqa: E731
    first = sweeps.sweep(redis, run, config(), 7 * 24 * 3600)
    client.close()
    assert first is not None and first.queued == 2 and first.skipped == {reason: 1}
    assert set(queued_calls(redis)) == set(good)
    assert redis.hget(sweeps.LAST_KEY, "result") == b"done"
    mark = int(redis.hget(sweeps.WATERMARK_KEY, sweeps.PROJECT))
    assert mark > int(hamsa.calls[poison].created_at.timestamp() * 1000)  # the watermark moved past it
    figures = snapshot(redis)
    assert figures["reconcile_calls_total"]["outcome=skipped,source=reconcile"] == 1
    assert figures["hamsa_requests_total"][f"status={status}"] == 1


def test_a_webhook_arriving_while_the_sweep_fetches_makes_the_sweep_queue_nothing(hamsa, redis, fixture_path) -> None:
    # The page check finds the call unreceived; its webhook comes while Hamsa's conversation
    # answer is on its way; store_reconciled must then store and queue nothing.
    cid = hamsa.add_call(ended_ago=900)
    hamsa.add_fault(match=CONVERSATION + cid, delay=1.5)
    delivered: list[bool] = []

    def webhook_meanwhile() -> None:
        deadline = time.monotonic() + 10
        while hamsa.count(CONVERSATION) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        delivered.append(deliver(redis, webhook(fixture_path, cid, "call_meanwhile"))[0])

    thread = threading.Thread(target=webhook_meanwhile)
    thread.start()
    summary = reconciler(redis, hamsa)[0].run(*window())
    thread.join()
    assert delivered == [True] and hamsa.count(CONVERSATION) == 1
    assert (summary.fetched, summary.received, summary.queued) == (1, 1, 0)
    assert queued_calls(redis) == ["call_meanwhile"]  # the webhook's job only
    assert store.load_events(redis, cid) == [] and SyncRecord.load(redis, cid) is None
    assert redis.get(store.conversation_key(cid)) == b"call_meanwhile"


def test_the_sweep_heartbeat_runs_around_every_wait_between_retries(hamsa, redis) -> None:
    # One request may retry for minutes (5 tries, waits up to MAX_WAIT): the lock is renewed
    # around each wait, not only between calls, so it cannot expire mid-request.
    from crmsync.hamsa.client import MAX_WAIT, TIMEOUT

    hamsa.add_call(ended_ago=900)
    hamsa.add_fault(match=LIST, status=503, times=2)
    seen: list[str] = []
    client = HamsaClient(hamsa.api_key, hamsa.url, sleep=lambda s: seen.append("wait"), attempts=3)
    run = Reconciler(redis, client, Ingest(redis, 3600), Rules(region="SA"), heartbeat=lambda: seen.append("beat"))
    assert run.run(*window()).queued == 1
    client.close()
    assert seen[:6] == ["beat", "wait", "beat", "beat", "wait", "beat"]
    assert sum(TIMEOUT) + MAX_WAIT < sweeps.LOCK_TTL  # the longest gap between two renewals


def test_a_sweep_stopped_by_a_foreign_error_keeps_only_its_type(hamsa, redis, caplog) -> None:
    def broken(**hooks: Any) -> Reconciler:
        raise ValueError("redis://:hunter2@cache:6379 said +966501234567")

    with pytest.raises(ValueError):
        sweeps.sweep(redis, broken, config(), 7 * 24 * 3600)
    assert redis.hget(sweeps.LAST_KEY, "problem") == b"ValueError"
    assert "hunter2" not in caplog.text and "966501234567" not in caplog.text
    assert all(b"hunter2" not in raw and b"966501234567" not in raw for raw in redis.lrange(sweeps.RUNS_KEY, 0, -1))
    hamsa.add_call(ended_ago=900)
    hamsa.add_fault(match=CONVERSATION, status=503, times=None)
    with pytest.raises(HamsaUnavailable):
        sweeps.sweep(redis, builder(redis, hamsa)[0], config(), 7 * 24 * 3600)
    assert redis.hget(sweeps.LAST_KEY, "problem").decode() == (
        "HamsaUnavailable: Hamsa's API stayed unavailable after 2 tries (conversation, last answer: 503)"
    )
