"""No secret at rest: after a full run — real gunicorn and RQ worker, a sandbox CRM, a sandbox
Hamsa API with reconciliation sweeps, webhooks accepted, refused and quarantined, a console
login, /metrics, history and a rollback — every key and every value in Redis is searched for
each configured secret (tokens, API keys, passwords), and none is found."""

from __future__ import annotations

import json
import re

import pytest
import requests

from crmsync.sandbox.hamsa import HamsaSandbox
from tests.conftest import ROOT, free_port
from tests.processes import Process, crmsync_env, run_cli, start_sandbox, wait_for, wait_http
from tests.redis_scan import everything, holding

pytestmark = pytest.mark.e2e
TOKEN = "whk_e2e_secret_token_5f1c9a"
SECRETS = {
    "METRICS_TOKEN": "mtk_e2e_secret_7d2b",
    "CONSOLE_PASSWORD": "console-e2e-password-91",
    "SECRET_KEY": "console-e2e-signing-key-0c4f8e2a",
    "RETELL_API_KEY": "key_retell_e2e_secret_31",
    "VAPI_WEBHOOK_SECRET": "vapi-e2e-secret-88",
    "ELEVENLABS_WEBHOOK_SECRET": "wsec_elevenlabs_e2e_77",
    "BLAND_WEBHOOK_SECRET": "bland-e2e-secret-42",
}


@pytest.fixture(scope="module", params=["hubspot", "salesforce"])
def run(request, redis_url, tmp_path_factory):
    """One full run against one CRM; yields the settings it ran with and the Redis URL."""
    crm = request.param
    tmp = tmp_path_factory.mktemp(f"secrets-{crm}")
    sandbox, hamsa = start_sandbox(crm), HamsaSandbox().start()
    port = free_port()
    env = crmsync_env(
        crm,
        sandbox,
        redis_url,
        TOKEN,
        ROOT / "mappings",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        HAMSA_API_KEY=hamsa.api_key,
        HAMSA_BASE_URL=hamsa.url,
        HAMSA_RECONCILE_INTERVAL="2",
        HAMSA_RECONCILE_GRACE="1",
        **SECRETS,
    )
    processes = [Process("web", env, tmp), Process("worker", env, tmp)]
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        exercise(f"http://127.0.0.1:{port}", env)
        yield env, crm, sandbox, hamsa
    finally:
        for process in processes:
            process.stop()
        sandbox.stop()
        hamsa.stop()


def exercise(base: str, env: dict[str, str]) -> None:
    body = json.loads((ROOT / "crmsync" / "demo" / "call_ended_documented.json").read_text())
    call_id = body["callId"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(f"{base}/webhooks/hamsa", json=body, headers=auth, timeout=5).status_code == 200
    refused = requests.post(f"{base}/webhooks/hamsa", json=body, headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert refused.status_code == 401
    assert (
        requests.post(f"{base}/webhooks/hamsa", json={"eventType": "call.ended"}, headers=auth, timeout=5).status_code
        == 422
    )
    assert (
        requests.post(
            f"{base}/webhooks/retell", data=b"{}", timeout=5, headers={"X-Retell-Signature": "v=1,d=0"}
        ).status_code
        == 401
    )
    metrics = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {SECRETS['METRICS_TOKEN']}"}, timeout=5
    )
    assert metrics.status_code == 200
    with requests.Session() as console:
        page = console.get(f"{base}/console/login", timeout=5)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        login = console.post(
            f"{base}/console/login", data={"csrf": csrf, "password": SECRETS["CONSOLE_PASSWORD"]}, timeout=5
        )
        assert login.status_code == 200 and "Log out" in login.text
    wait_for(
        lambda: json.loads(run_cli(env, "status", call_id, "--json").stdout or "{}").get("state") == "synced",
        60,
        interval=0.5,
        what="the call synced",
    )
    assert run_cli(env, "history", "--call", call_id).returncode == 0
    assert run_cli(env, "rollback", call_id, "--dry-run").returncode == 0


def test_no_configured_secret_is_anywhere_in_redis(run, redis_url):
    env, crm, sandbox, hamsa = run
    from redis import Redis

    redis = Redis.from_url(redis_url)
    wait_for(lambda: redis.exists("crmsync:reconcile:last"), 30, what="a reconciliation sweep ran")
    secrets = {**SECRETS, "WEBHOOK_TOKENS": TOKEN, "HAMSA_API_KEY": hamsa.api_key}
    secrets["HUBSPOT_ACCESS_TOKEN" if crm == "hubspot" else "SALESFORCE_ACCESS_TOKEN"] = sandbox.token
    assert all(env[name] == value for name, value in secrets.items())  # each one was configured
    keys = everything(redis)
    assert any(k.startswith("crmsync:audit:") for k in keys) and any(k.startswith("rq:job:") for k in keys)
    assert any(k.startswith("crmsync:quarantine:") for k in keys)  # the scan covers what the run left
    found = holding(redis, *secrets.values())
    named = {key: [n for n, v in secrets.items() if v in hits] for key, hits in found.items()}
    assert named == {}, f"secrets at rest: {named}"
