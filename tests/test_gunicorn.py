"""The web process as deployed: gunicorn from the Procfile, real Redis, real HTTP."""

import json

import pytest
import requests

from tests.conftest import free_port
from tests.processes import Process, wait_http

TOKEN = "sk_live_Tok3nThatMustNeverBeLogged"
pytestmark = pytest.mark.e2e


@pytest.fixture
def web(redis, redis_url, tmp_path):
    port = free_port()
    process = Process(
        "web",
        {
            "PORT": str(port),
            "REDIS_URL": redis_url,
            "WEBHOOK_TOKENS": TOKEN,
            "WEB_CONCURRENCY": "2",
            "DEFAULT_REGION": "SA",
        },
        tmp_path,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.stop()


def test_gunicorn_serves_the_webhook_and_logs_nothing_secret(web, redis, fixture_path):
    url, process = web
    ended = (fixture_path / "call_ended_documented.json").read_bytes()
    flat = (fixture_path / "call_ended_flat.json").read_bytes()
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with requests.Session() as http:
        first = http.post(f"{url}/webhooks/hamsa", data=ended, headers=auth, timeout=5)
        again = http.post(f"{url}/webhooks/hamsa", data=ended, headers=auth, timeout=5)
        assert (first.status_code, first.json()["status"]) == (200, "accepted")
        assert again.json()["status"] == "duplicate"
        assert http.post(f"{url}/webhooks/hamsa", data=flat, headers=auth, timeout=5).status_code == 200
        wrong = http.post(
            f"{url}/webhooks/hamsa", data=ended, headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"}, timeout=5
        )
        doubled = http.post(
            f"{url}/webhooks/hamsa", data=ended, headers={"Authorization": f"Bearer Bearer {TOKEN}"}, timeout=5
        )
        invalid = http.post(f"{url}/webhooks/hamsa", data=b'{"nothing": "+966501234567"}', headers=auth, timeout=5)
        broken = http.post(f"{url}/webhooks/hamsa", data=b"{", headers=auth, timeout=5)
        plain = http.post(f"{url}/webhooks/hamsa", data=ended, headers={**auth, "X-Forwarded-Proto": "http"}, timeout=5)
    assert [wrong.status_code, doubled.status_code, invalid.status_code, broken.status_code, plain.status_code] == [
        401,
        401,
        422,
        400,
        403,
    ]
    for answer in (wrong, doubled, invalid, broken, plain):
        assert answer.headers["Content-Type"] == "application/json"
        assert set(answer.json()) >= {"error", "message"}
    assert redis.llen("rq:queue:crmsync") == 2

    process.stop()
    logs = process.output()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line.get("reason") == "unauthorized" and line.get("source") == "127.0.0.1" for line in lines)
    assert any(line.get("call_id") == "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37" for line in lines)
    for secret in (
        TOKEN,
        TOKEN[:-1],
        "966501234567",
        "0551234567",
        "966551234567",
        "Around 80,000 riyals",
        "Not now, maybe next month",
        "Is this a good time",
    ):
        assert secret not in logs, secret


@pytest.mark.parametrize(
    "kind, env, line",
    [
        ("web", {"PORT": "0"}, "crmsync web: WEBHOOK_TOKENS is not set: set it to one or more comma-separated tokens"),
        ("web", {"PORT": "0", "WEBHOOK_TOKENS": "t", "DEFAULT_REGION": "XX"}, "DEFAULT_REGION 'XX' is not an ISO 3166"),
        ("worker", {}, "crmsync worker: CRM is not set: set it to salesforce or hubspot"),
        ("worker", {"CRM": "hubspot"}, "crmsync worker: HUBSPOT_ACCESS_TOKEN is not set"),
        ("release", {"MAPPINGS_DIR": "/nonexistent"}, "/nonexistent"),
    ],
)
def test_a_bad_setting_stops_the_process_with_one_line(tmp_path, redis_url, kind, env, line):
    process = Process(kind, {"REDIS_URL": redis_url, **env}, tmp_path)
    try:
        process.proc.wait(30)
    finally:
        process.stop()
    assert process.proc.returncode != 0
    assert line in process.output()
    assert "Traceback" not in process.output()
