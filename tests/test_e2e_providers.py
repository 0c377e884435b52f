"""Each platform's call lands in the CRM: real gunicorn (Procfile web), a real RQ worker,
real Redis and the real HubSpot client talking to the sandbox. One stack for the module."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import requests
from redis import Redis

from crmsync.sandbox.hubspot import HubSpotSandbox
from tests.conftest import ROOT
from tests.provider_signing import ENV_VAPI_HMAC, FINAL, SECRETS, STALE, call_id, fixture, signed
from tests.test_e2e_sync import Stack

pytestmark = pytest.mark.e2e
PLATFORMS = ("retell", "vapi", "elevenlabs", "bland")
# The number each fixture's customer has, and the budget its extracted data holds.
CUSTOMER = {"retell": "+966502223344", "vapi": "+966503334455", "elevenlabs": "+966504445566", "bland": "+966506667788"}
BUDGET = {"retell": 95000, "vapi": 70000, "elevenlabs": 60000, "bland": 120000}


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("providers")
    mappings = tmp / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    Redis.from_url(redis_url).flushdb()
    sandbox = HubSpotSandbox().start()
    running = Stack("hubspot", sandbox, redis_url, tmp, mappings, **ENV_VAPI_HMAC)
    try:
        yield running
    finally:
        running.stop()
        sandbox.stop()
        Redis.from_url(redis_url).flushdb()


def sign(platform: str, body: bytes, **kwargs) -> dict[str, str]:
    return signed(platform, body, vapi_hmac=True, **kwargs)  # this stack runs Vapi in HMAC mode


def send(stack: Stack, platform: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{stack.port}/webhooks/{platform}",
        data=body,
        timeout=5,
        headers={"Content-Type": "application/json", **headers},
    )


def stored(redis_url: str) -> tuple[set[bytes], dict[bytes, dict]]:
    """Every crmsync key, and every counter's fields with their counts."""
    client = Redis.from_url(redis_url)
    try:
        keys = set(client.scan_iter("crmsync:*"))
        return keys, {key: client.hgetall(key) for key in keys if key.startswith(b"crmsync:metrics:")}
    finally:
        client.close()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_signed_call_lands_once_with_its_outcome_mapped(stack, redis_url, platform):
    sandbox = stack.sandbox
    known = sandbox.seed_contact({"phone": CUSTOMER[platform], "lastname": platform.title()})
    if platform == "retell":  # call_ended first: recorded, then call_analyzed syncs the same call
        ended = fixture("retell_call_ended")
        assert send(stack, platform, ended, sign(platform, ended)).json()["event"] == "retell.call_ended"
    body = fixture(FINAL[platform])
    answer = send(stack, platform, body, sign(platform, body))
    assert answer.status_code == 200
    assert answer.json() == {"status": "accepted", "call_id": call_id(platform), "event": "call.ended"}

    record = stack.wait_state(call_id(platform), ("synced", "partial"))
    assert record["person"]["id"] == known
    assert len(sandbox.calls_for(call_id(platform))) == 1
    assert float(sandbox.contact(known)["budget"]) == BUDGET[platform]

    again = send(stack, platform, body, sign(platform, body))
    assert again.json()["status"] == "duplicate"
    assert len(sandbox.calls_for(call_id(platform))) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_refused_and_unrecognisable_bodies_over_the_real_server(stack, redis_url, platform):
    body = fixture(FINAL[platform])
    keys_before, counts_before = stored(redis_url)
    refusals = [
        send(stack, platform, body, sign(platform, body, secret="someone-else")),  # wrong secret
        send(stack, platform, body.replace(b"0000", b"0009", 1), sign(platform, body)),  # tampered body
    ]
    if platform in STALE:  # Bland signs no timestamp: its replays are duplicates, not refusals
        refusals.append(send(stack, platform, body, sign(platform, body, at=time.time() - STALE[platform])))
    for answer in refusals:
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"]
    keys_after, counts_after = stored(redis_url)
    # Nothing stored, not even a count. (A key may go: the worker's rate-limit windows expire.)
    assert keys_after <= keys_before
    assert counts_after == counts_before

    junk = json.dumps({"hello": platform}).encode()
    refused = send(stack, platform, junk, sign(platform, junk))
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_event"
    listed = json.loads(stack.cli("quarantine", "list", "--json").stdout)
    [kept] = [row for row in listed if row["id"] == refused.json()["quarantine_id"]]
    assert kept["provider"] == platform


def test_logs_hold_no_secret_number_or_transcript(stack):
    logs = stack.web.output() + stack.workers[0].output()
    assert "webhook refused" in logs and "webhook accepted" in logs
    for secret in [
        *SECRETS.values(),
        *CUSTOMER.values(),
        *(n[4:] for n in CUSTOMER.values()),
        "Around 95,000 riyals",
        "About 60,000.",
        "My budget is 120,000",
    ]:
        assert secret not in logs, secret
