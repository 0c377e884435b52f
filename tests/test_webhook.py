"""POST /webhooks/hamsa: every answer of SPEC §4, against a real Redis."""

import json
import shutil
import tempfile
import threading

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import metrics, store
from crmsync.record import SyncRecord
from crmsync.settings import Settings
from crmsync.web import create_app
from tests.conftest import ROOT, free_port, start_redis_server

TOKEN = "sk_live_abc123xyz789"
OLD_TOKEN = "sk_live_old000rotating"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def make_client():
    """Test clients of apps built from settings; each app's own Redis client is closed after."""
    apps = []

    def make(redis_url, redis=None, **env):
        settings = Settings.from_env({"REDIS_URL": redis_url, "WEBHOOK_TOKENS": f"{TOKEN},{OLD_TOKEN}", **env})
        app = create_app(settings, redis)
        apps.append((app, redis))
        return app.test_client()

    yield make
    for app, given in apps:
        if given is None:
            app.extensions["crmsync"].redis.close()


@pytest.fixture
def client(redis, redis_url, make_client):
    return make_client(redis_url, redis)


@pytest.fixture
def ended(fixture_path):
    return (fixture_path / "call_ended_documented.json").read_bytes()


def jobs(redis):
    return Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).jobs


def test_accepted_event_is_stored_and_queued(client, redis, ended):
    answer = client.post("/webhooks/hamsa", data=ended, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json == {
        "status": "accepted",
        "call_id": "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37",
        "event": "call.ended",
    }
    call_id = answer.json["call_id"]
    [event] = store.load_events(redis, call_id)
    assert event["raw"] == json.loads(ended)
    [job] = jobs(redis)
    assert job.func_name == "crmsync.jobs.sync_call"
    assert job.args == [call_id, "call.ended"]
    assert job.retries_left == 5  # a job whose worker dies is handed back
    assert SyncRecord.load(redis, call_id).state == "queued"
    assert store.load_receipts(redis, call_id)[0]["answer"] == "accepted"


def test_both_rotation_tokens_work_and_scheme_is_case_insensitive(client, fixture_path):
    body = (fixture_path / "call_started.json").read_bytes()
    old = {"Authorization": f"Bearer {OLD_TOKEN}"}
    assert client.post("/webhooks/hamsa", data=body, headers=old).status_code == 200
    assert (
        client.post("/webhooks/hamsa", data=body, headers={"Authorization": f"bearer {TOKEN}"}).json["status"]
        == "duplicate"
    )


def test_events_the_mapping_does_not_subscribe_are_recorded_not_queued(client, redis, fixture_path):
    for name in ("call_started.json", "call_answered.json", "transcription_update.json", "tool_executed.json"):
        answer = client.post("/webhooks/hamsa", data=(fixture_path / name).read_bytes(), headers=AUTH)
        assert answer.json["status"] == "accepted"
    assert jobs(redis) == []
    assert len(store.load_events(redis, "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37")) == 4


def test_unknown_event_type_is_accepted_and_not_queued(client, redis):
    body = {"eventType": "call.analyzed", "callId": "c-9", "data": {}}
    assert client.post("/webhooks/hamsa", json=body, headers=AUTH).json["status"] == "accepted"
    assert jobs(redis) == []
    assert store.load_events(redis, "c-9")[0]["event"] == "call.analyzed"


def test_three_sequential_deliveries_make_one_job(client, redis, ended):
    answers = [client.post("/webhooks/hamsa", data=ended, headers=AUTH).json["status"] for _ in range(3)]
    assert answers == ["accepted", "duplicate", "duplicate"]
    assert len(jobs(redis)) == 1
    assert len(store.load_events(redis, "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37")) == 1
    receipts = store.load_receipts(redis, "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37")
    assert [r["answer"] for r in receipts] == ["accepted", "duplicate", "duplicate"]


def test_three_concurrent_deliveries_make_one_job(redis, redis_url, ended, make_client):
    barrier = threading.Barrier(3)
    answers = []

    def deliver():
        local = make_client(redis_url)  # its own app and Redis connection, like separate processes
        barrier.wait()
        answers.append(local.post("/webhooks/hamsa", data=ended, headers=AUTH).json["status"])

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == ["accepted", "duplicate", "duplicate"]
    assert len(jobs(redis)) == 1


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "The Authorization header is missing"),
        ({"Authorization": "Bearer wrong-token"}, "The bearer token is not accepted."),
        ({"Authorization": TOKEN}, "must use the Bearer scheme"),
        ({"Authorization": f"Token {TOKEN}"}, "must use the Bearer scheme"),
        ({"Authorization": "Bearer"}, "no token after"),
        ({"Authorization": f"Bearer Bearer {TOKEN}"}, 'starts with "Bearer" twice: in Hamsa set authKey'),
        ({"Authorization": f"bearer Bearer {TOKEN}"}, 'starts with "Bearer" twice'),
    ],
)
def test_refused_tokens_store_nothing(client, redis, ended, headers, message):
    answer = client.post("/webhooks/hamsa", data=ended, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json["error"] == "unauthorized"
    assert message in answer.json["message"]
    assert TOKEN not in answer.get_data(as_text=True)
    assert redis.keys("crmsync:call:*") == [] and redis.keys("crmsync:seen:*") == [] and jobs(redis) == []
    assert redis.keys("crmsync:quarantine*") == []


def test_unauthenticated_invalid_body_is_not_quarantined(client, redis):
    answer = client.post("/webhooks/hamsa", data=b'{"hello": 1}', headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert redis.dbsize() == 0


def test_plain_http_is_refused_before_reading(client, redis, ended):
    answer = client.post("/webhooks/hamsa", data=ended, headers={**AUTH, "X-Forwarded-Proto": "http"})
    assert answer.status_code == 403
    assert answer.json["error"] == "https_required"
    assert redis.dbsize() == 0
    assert client.post("/webhooks/hamsa", data=ended, headers={**AUTH, "X-Forwarded-Proto": "https"}).status_code == 200


@pytest.mark.parametrize("body", [b"not json", b"", b"[1, 2]", b'"text"', b"{bad"])
def test_not_a_json_object_is_400(client, redis, body):
    answer = client.post("/webhooks/hamsa", data=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_json" and answer.json["message"]
    assert redis.keys("crmsync:call:*") == []


def test_over_two_mebibytes_is_413(client, redis):
    big = json.dumps({"eventType": "call.ended", "callId": "c", "pad": "x" * (2 * 1024 * 1024)})
    answer = client.post("/webhooks/hamsa", data=big, headers=AUTH)
    assert answer.status_code == 413
    assert answer.json["error"] == "too_large"
    assert redis.keys("crmsync:call:*") == []


def test_unrecognisable_event_is_422_and_quarantined(client, redis):
    raw = b'{"event": "something", "payload": {"x": 1}}'
    answer = client.post("/webhooks/hamsa", data=raw, headers=AUTH)
    assert answer.status_code == 422
    body = answer.json
    assert body["error"] == "invalid_event"
    assert set(body["details"]) == {"eventType", "callId"}
    kept = redis.hgetall(store.quarantine_key(body["quarantine_id"]))
    assert kept[b"body"] == raw
    assert json.loads(kept[b"details"]) == body["details"]
    assert redis.zscore(store.QUARANTINE_INDEX, body["quarantine_id"]) is not None


def test_unknown_route_and_method_answer_json(client):
    assert client.get("/nowhere").json["error"] == "not_found"
    answer = client.get("/webhooks/hamsa")
    assert answer.status_code == 405 and answer.json["error"] == "method_not_allowed"


def test_health_and_readiness(client, redis, redis_url, tmp_path):
    assert client.get("/healthz").status_code == 200
    answer = client.get("/readyz")
    assert answer.status_code == 503  # no CRM, so no active mapping
    assert "CRM is not set" in answer.json["problems"][0]


def test_metrics_count_answers_and_need_the_token(redis, redis_url, ended, make_client):
    client = make_client(redis_url, redis, METRICS_TOKEN="m-secret")
    client.post("/webhooks/hamsa", data=ended, headers=AUTH)
    client.post("/webhooks/hamsa", data=ended, headers=AUTH)
    client.post("/webhooks/hamsa", data=b"{", headers=AUTH)
    client.post("/webhooks/hamsa", data=b'{"x": 1}', headers=AUTH)
    client.post("/webhooks/hamsa", data=ended, headers={"Authorization": "Bearer wrong"})  # counts nothing
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers={"Authorization": "Bearer m-secret"}).get_data(as_text=True)
    assert 'crmsync_events_received_total{answer="accepted",event="call.ended"} 1' in text
    assert 'crmsync_events_received_total{answer="duplicate",event="call.ended"} 1' in text
    assert 'crmsync_queue_depth{state="queued"} 1' in text
    assert 'crmsync_events_received_total{answer="invalid_json",event="unknown"} 1' in text
    assert 'crmsync_events_received_total{answer="invalid_event",event="unknown"} 1' in text
    assert "unauthorized" not in text


def test_web_refuses_to_start_without_tokens(redis_url):
    with pytest.raises(SystemExit) as info:
        create_app(Settings.from_env({"REDIS_URL": redis_url}))
    assert "WEBHOOK_TOKENS is not set" in str(info.value)
    assert "WEBHOOK_AUTH=none" in str(info.value)


def test_webhook_auth_none_accepts_without_token(redis, redis_url, ended):
    settings = Settings.from_env({"REDIS_URL": redis_url, "WEBHOOK_AUTH": "none"})
    client = create_app(settings, redis).test_client()
    assert client.post("/webhooks/hamsa", data=ended).status_code == 200


def test_redis_down_is_503_and_back_is_accepted(ended, make_client):
    """A Redis of its own, stopped and started again under the running app."""
    port = free_port()
    workdir = tempfile.mkdtemp()
    server = start_redis_server(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = make_client(url)
        server.terminate()
        server.wait(10)
        answer = client.post("/webhooks/hamsa", data=ended, headers=AUTH)
        assert answer.status_code == 503
        assert answer.json["error"] == "unavailable"
        assert answer.headers["Retry-After"] == "5"
        server = start_redis_server(port, workdir)
        probe = Redis.from_url(url)
        answer = client.post("/webhooks/hamsa", data=ended, headers=AUTH)
        assert answer.status_code == 200 and answer.json["status"] == "accepted"
        assert probe.llen("rq:queue:crmsync") == 1
        probe.close()
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_redis_that_refuses_writes_gets_503_and_keeps_nothing(redis, redis_url, ended, make_client):
    """Redis up but refusing (here: it now wants a password): 503, and nothing half-stored."""
    client = make_client(redis_url)
    redis.config_set("requirepass", "locked")
    try:
        answer = client.post("/webhooks/hamsa", data=ended, headers=AUTH)
    finally:
        admin = Redis.from_url(redis_url, password="locked")
        admin.config_set("requirepass", "")
        admin.close()
    assert answer.status_code == 503 and answer.json["error"] == "unavailable"
    assert redis.dbsize() == 0
    answer = client.post("/webhooks/hamsa", data=ended, headers=AUTH)
    assert answer.json["status"] == "accepted"


def test_readyz_says_loudly_when_the_crm_refuses_the_credentials(redis, redis_url, make_client, tmp_path):
    client = make_client(redis_url, redis, CRM="hubspot", MAPPINGS_DIR=str(ROOT / "mappings"))
    assert client.get("/readyz").status_code == 200
    redis.hset(metrics.CREDENTIALS_KEY, "hubspot", "hubspot: HubSpot refused the access token (401)")
    redis.expire(metrics.CREDENTIALS_KEY, 900)  # as the worker keeps it
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json["problems"] == [
        "hubspot refuses crmsync's credentials: hubspot: HubSpot refused the access token (401)"
    ]
