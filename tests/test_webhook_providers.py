"""POST /webhooks/retell, /vapi, /elevenlabs, /bland: SPEC §4's answers for each platform,
through the web app against a real Redis. Signatures are made in ``provider_signing``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.record import SyncRecord
from crmsync.settings import Settings
from crmsync.web import create_app
from tests.provider_signing import ENV, FINAL, SECRETS, STALE, call_id, fixture, signed

HAMSA_TOKEN = "sk_live_hamsa_token_123"
PLATFORMS = ("retell", "vapi", "elevenlabs", "bland")
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def make_client(redis_url):
    apps = []

    def make(redis, **env):
        settings = Settings.from_env({"REDIS_URL": redis_url, "WEBHOOK_TOKENS": HAMSA_TOKEN, **env})
        app = create_app(settings, redis)
        apps.append(app)
        return app.test_client()

    return make


@pytest.fixture
def client(redis, make_client):
    return make_client(redis, **ENV)


def post(client, platform: str, body: bytes, headers: dict[str, str]):
    return client.post(f"/webhooks/{platform}", data=body, headers={**JSON, **headers})


def stored_values(redis, key) -> list[bytes]:
    """Every value held at ``key``, whatever its Redis type."""
    kind = redis.type(key).decode()
    if kind == "string":
        return [redis.get(key)]
    if kind == "list":
        return redis.lrange(key, 0, -1)
    if kind == "hash":
        return list(redis.hgetall(key).values())
    if kind == "zset":
        return redis.zrange(key, 0, -1)
    return list(redis.smembers(key))


def jobs(redis):
    return Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).jobs


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_signed_final_event_is_accepted_stored_and_queued(client, redis, platform):
    body = fixture(FINAL[platform])
    answer = post(client, platform, body, signed(platform, body))
    assert answer.status_code == 200
    assert answer.json == {"status": "accepted", "call_id": call_id(platform), "event": "call.ended"}
    [event] = store.load_events(redis, call_id(platform))
    assert event["call"]["provider"] == platform
    assert event["raw"] == json.loads(body)
    [job] = jobs(redis)
    assert job.args == [call_id(platform), "call.ended"]
    assert SyncRecord.load(redis, call_id(platform)).state == "queued"
    again = post(client, platform, body, signed(platform, body))
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert len(jobs(redis)) == 1
    assert [r["answer"] for r in store.load_receipts(redis, call_id(platform))] == ["accepted", "duplicate"]


def test_retell_call_ended_is_recorded_and_call_analyzed_syncs_the_same_call(client, redis):
    ended, analyzed = fixture("retell_call_ended"), fixture("retell_call_analyzed")
    first = post(client, "retell", ended, signed("retell", ended))
    assert first.json == {"status": "accepted", "call_id": call_id("retell"), "event": "retell.call_ended"}
    assert jobs(redis) == []  # recorded, not synced
    second = post(client, "retell", analyzed, signed("retell", analyzed))
    assert second.json["event"] == "call.ended"
    assert [e["event_as_sent"] for e in store.load_events(redis, call_id("retell"))] == ["call_ended", "call_analyzed"]
    assert len(jobs(redis)) == 1


def refused(answer, redis, *, says: str):
    assert answer.status_code == 401
    assert answer.json["error"] == "unauthorized"
    assert says in answer.json["message"]
    assert redis.dbsize() == 0  # nothing stored: no event, no receipt, no count


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_wrong_secret_is_401_and_stores_nothing(client, redis, platform):
    body = fixture(FINAL[platform])
    refused(
        post(client, platform, body, signed(platform, body, secret="not-the-secret")),
        redis,
        says="not" if platform == "vapi" else "does not match",
    )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_tampered_body_is_401_and_stores_nothing(client, redis, platform):
    body = fixture(FINAL[platform])
    headers = signed(platform, body)
    tampered = body.replace(b"0000", b"0001", 1) if platform != "vapi" else body  # a budget changed
    if platform == "vapi":  # the legacy secret signs nothing: a tampered secret instead
        headers = {"X-Vapi-Secret": SECRETS["vapi"][:-1]}
    assert tampered != body or platform == "vapi"
    refused(post(client, platform, tampered, headers), redis, says="not" if platform == "vapi" else "does not match")


@pytest.mark.parametrize("platform", ["retell", "elevenlabs"])
def test_a_stale_signature_is_401_and_stores_nothing(client, redis, platform):
    body = fixture(FINAL[platform])
    headers = signed(platform, body, at=time.time() - STALE[platform])
    refused(post(client, platform, body, headers), redis, says="minutes from this server's clock")


@pytest.mark.parametrize(
    "platform, headers",
    [
        ("retell", {"X-Retell-Signature": "sha256=" + "0" * 64}),
        ("elevenlabs", {"ElevenLabs-Signature": "v0=" + "0" * 64}),
        ("bland", {"X-Webhook-Signature": "sha256=" + "0" * 64}),
    ],
)
def test_a_header_in_the_wrong_form_is_401(client, redis, platform, headers):
    refused(post(client, platform, fixture(FINAL[platform]), headers), redis, says="expected form")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_hamsa_bearer_token_does_not_open_another_platform(client, redis, platform):
    headers = {"Authorization": f"Bearer {HAMSA_TOKEN}"}
    refused(post(client, platform, fixture(FINAL[platform]), headers), redis, says="missing")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_platform_without_its_setting_is_404(redis, make_client, platform):
    others = {k: v for k, v in ENV.items() if not k.startswith(platform.upper())}
    client = make_client(redis, **others)
    body = fixture(FINAL[platform])
    answer = post(client, platform, body, signed(platform, body))
    assert answer.status_code == 404
    assert answer.json["error"] == "not_found"
    assert redis.dbsize() == 0


def test_refusals_are_logged_with_reason_and_source_never_the_secret(client, redis, caplog):
    body = fixture(FINAL["retell"])
    with caplog.at_level(logging.WARNING, logger="crmsync.web"):
        post(client, "retell", body, signed("retell", body, secret="key_guess"))
        post(client, "vapi", body, {"X-Vapi-Secret": "vapi-guess-" + SECRETS["vapi"][:6]})
    records = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert [r.reason for r in records] == ["unauthorized", "unauthorized"]
    assert all(r.source for r in records)
    text = caplog.text + json.dumps([r.__dict__ for r in records], default=str)
    for secret in [*SECRETS.values(), "key_guess", "vapi-guess-"]:
        assert secret not in text


@pytest.mark.parametrize(
    "platform, body, path",
    [
        ("retell", b'{"event": "call_analyzed", "call": {"agent_id": "a"}}', "call.call_id"),
        ("vapi", b'{"message": {"type": "end-of-call-report"}}', "message.call"),
        ("elevenlabs", b'{"type": "post_call_transcription", "data": []}', "data"),
        ("bland", b'{"to": "+966500000000", "call_length": 1.2}', "call_id"),
    ],
)
def test_an_authentic_unrecognisable_body_is_422_and_quarantined(client, redis, platform, body, path):
    answer = post(client, platform, body, signed(platform, body))
    assert answer.status_code == 422
    assert answer.json["error"] == "invalid_event"
    assert path in answer.json["details"]
    qid = answer.json["quarantine_id"]
    kept = redis.hgetall(store.quarantine_key(qid))
    assert kept[b"body"] == body
    assert kept[b"provider"] == platform.encode()
    assert jobs(redis) == []


def test_invalid_json_from_a_platform_is_400(client, redis):
    body = b'{"call_id": '
    answer = post(client, "bland", body, signed("bland", body))
    assert (answer.status_code, answer.json["error"]) == (400, "invalid_json")


def test_a_configured_secret_inside_a_body_is_not_stored(client, redis):
    report = json.loads(fixture(FINAL["vapi"]))
    report["message"]["assistant"]["server"] = {"url": "https://example.com/webhooks/vapi", "secret": SECRETS["vapi"]}
    body = json.dumps(report).encode()
    assert post(client, "vapi", body, signed("vapi", body)).status_code == 200
    for key in redis.scan_iter("*"):
        values = stored_values(redis, key)
        assert not any(SECRETS["vapi"].encode() in v for v in values), key


def test_vapi_hmac_mode_checks_signature_and_timestamp(redis, make_client):
    client = make_client(redis, VAPI_WEBHOOK_SECRET="vapi-hmac-key-1", VAPI_AUTH="hmac", VAPI_HMAC_ENCODING="base64")
    body = fixture(FINAL["vapi"])

    def headers(at: float, key: str = "vapi-hmac-key-1") -> dict[str, str]:
        stamp = str(int(at))
        digest = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).digest()
        return {"x-signature": base64.b64encode(digest).decode(), "x-timestamp": stamp}

    refused(post(client, "vapi", body, headers(time.time() - 400)), redis, says="5 minutes")
    refused(post(client, "vapi", body, headers(time.time(), key="other")), redis, says="does not match")
    refused(post(client, "vapi", body, {"X-Vapi-Secret": "vapi-hmac-key-1"}), redis, says="x-signature")
    assert post(client, "vapi", body, headers(time.time())).json["status"] == "accepted"


def test_a_quarantined_platform_body_is_replayed_with_its_own_normaliser(redis, redis_url):
    from crmsync import quarantine
    from crmsync.ingest import Ingest

    body = fixture(FINAL["elevenlabs"])
    qid = quarantine.keep(redis, body, {"data": ["example"]}, "127.0.0.1", "elevenlabs")
    assert [q.provider for q in quarantine.newest(redis)] == ["elevenlabs"]
    done = quarantine.replay(redis, qid, Ingest(redis, 3600), lambda event: event == "call.ended", "SA")
    assert (done.accepted, done.event, done.call_id) == (True, "call.ended", call_id("elevenlabs"))
    [event] = store.load_events(redis, call_id("elevenlabs"))
    assert event["call"]["provider"] == "elevenlabs"
