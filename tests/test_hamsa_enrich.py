"""Filling a webhook call's missing number and duration from Hamsa's conversation API, through
``HamsaClient`` (retries, metrics, a refused key shown in /readyz, the id quoted in the path),
against the sandbox Hamsa API and a real Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsync import events
from crmsync.hamsa import enrich
from crmsync.metrics import credential_problems, snapshot
from crmsync.sandbox.hamsa import HamsaSandbox
from crmsync.settings import Settings

CONVERSATION = "GET /v1/voice-agents/conversation/"


def context_for(fixture_path: Path, conversation_id: str) -> Any:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    del body["data"]["data"]["callParams"], body["data"]["data"]["callDuration"]
    body["data"]["data"]["conversationId"] = conversation_id
    return events.call_context([events.normalise(body, "SA")])


def settings_for(hamsa: HamsaSandbox, key: str | None = None) -> Settings:
    return Settings.from_env(
        {"HAMSA_API_KEY": key or hamsa.api_key, "HAMSA_BASE_URL": hamsa.url, "DEFAULT_REGION": "SA"}
    )


def test_a_missing_number_and_duration_come_from_the_conversation_with_its_id_quoted(
    hamsa, redis, fixture_path
) -> None:
    hamsa.add_call(call_id="conv#7 x", ended_ago=60, duration=125, user_number="+966501234567")
    hamsa.add_fault(match=CONVERSATION, status=503, times=1)  # retried, as the sweep's requests are
    context = context_for(fixture_path, "conv#7 x")
    assert enrich(context, settings_for(hamsa), redis)
    assert (context["call"]["customer_number"], context["call"]["duration_seconds"]) == ("+966501234567", 125)
    assert [r.path for r in hamsa.requests] == ["/v1/voice-agents/conversation/conv#7 x"] * 2
    assert snapshot(redis)["hamsa_requests_total"] == {"status=503": 1, "status=200": 1}


def test_a_refused_key_is_named_in_readyz_and_the_call_goes_on(hamsa, redis, fixture_path) -> None:
    hamsa.add_call(call_id="conv-8", ended_ago=60)
    context = context_for(fixture_path, "conv-8")
    assert enrich(context, settings_for(hamsa, key="revoked-key"), redis)
    assert context["call"]["customer_number"] is None  # the call syncs with what it has
    [problem] = credential_problems(redis)
    assert "Hamsa refused HAMSA_API_KEY (401)" in problem and "revoked-key" not in problem
