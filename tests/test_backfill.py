"""``crmsync backfill`` against the sandbox Hamsa API and a real Redis: the answer a person
sees, ``--json``, ``--dry-run``, repeating it, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from rq import Queue
from rq.serializers import JSONSerializer

from crmsync import store
from crmsync.cli import main
from crmsync.sandbox.hamsa import HamsaSandbox
from tests.conftest import ROOT


def run(hamsa: HamsaSandbox, redis_url: str, *args: str, key: str | None = None) -> tuple[int, str]:
    env = {
        "REDIS_URL": redis_url,
        "CRM": "hubspot",
        "MAPPINGS_DIR": str(ROOT / "mappings"),
        "HAMSA_API_KEY": key or hamsa.api_key,
        "HAMSA_BASE_URL": hamsa.url,
        "DEFAULT_REGION": "SA",
    }
    result = CliRunner().invoke(main, ["backfill", *args], env=env)
    return result.exit_code, result.output


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def queued(redis) -> int:
    return Queue(store.QUEUE_NAME, connection=redis, serializer=JSONSerializer).count


def seed(hamsa: HamsaSandbox) -> list[str]:
    ids = [hamsa.add_call(ended_ago=86400 * 3 + i * 60) for i in range(5)]
    ids.append(hamsa.add_call(ended_ago=86400 * 3, status="NO_ANSWER", duration=0))
    ids.append(hamsa.add_call(ended_ago=86400 * 20))  # before the period
    return ids


def test_backfill_queues_the_period_and_a_second_run_queues_nothing_new(hamsa, redis, redis_url) -> None:
    ids = seed(hamsa)
    code, out = run(hamsa, redis_url, "--since", days_ago(7), "--json")
    assert code == 0, out
    summary = json.loads(out)  # only JSON on stdout
    assert (summary["listed"], summary["queued"], summary["already_in_crmsync"]) == (6, 5, 0)
    assert summary["skipped"] == {"status no_answer not in the mapping's statuses": 1}
    assert summary["hamsa_requests"] == 1 + 5
    assert queued(redis) == 5
    event = store.load_events(redis, ids[0])[0]
    assert event["source"] == "backfill" and event["call"]["source"] == "backfill"
    code, out = run(hamsa, redis_url, "--since", days_ago(7), "--json")
    again = json.loads(out)
    assert (again["queued"], again["already_in_crmsync"], queued(redis)) == (0, 5, 5)


def test_a_dry_run_writes_nothing(hamsa, redis, redis_url) -> None:
    seed(hamsa)
    code, out = run(hamsa, redis_url, "--since", days_ago(7), "--dry-run")
    assert code == 0, out
    assert "backfill (dry run)" in out and "would be queued" in out and "5" in out
    assert "skipped: status no_answer not in the mapping's statuses" in out
    assert redis.keys("*") == [] and hamsa.count("GET /v1/voice-agents/conversation/") == 0


def test_the_summary_table_a_person_reads(hamsa, redis, redis_url) -> None:
    seed(hamsa)
    code, out = run(hamsa, redis_url, "--since", days_ago(7), "--until", days_ago(1))
    assert code == 0, out
    for line in ("listed in Hamsa's history", "already in crmsync", "queued", "6 Hamsa API requests"):
        assert line in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday' is not an ISO 8601 time, e.g. 2026-11-01T00:00:00Z"),
        (
            ["--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"],
            "--since 2026-11-02T00:00:00Z is not before --until 2026-11-01T00:00:00Z",
        ),
    ],
)
def test_a_bad_period_is_refused_with_a_clear_line(hamsa, redis, redis_url, args, message) -> None:
    code, out = run(hamsa, redis_url, *args)
    assert code == 1 and f"Error: {message}" in out and hamsa.count() == 0


def test_a_refused_key_says_which_setting(hamsa, redis, redis_url) -> None:
    code, out = run(hamsa, redis_url, "--since", days_ago(7), key="not-the-key")
    assert code == 1
    assert "Error: Hamsa refused HAMSA_API_KEY (401): set a valid API key from the Hamsa dashboard" in out
    assert "not-the-key" not in out


def test_hamsa_down_loses_nothing_and_says_to_run_it_again(hamsa, redis, redis_url) -> None:
    seed(hamsa)
    hamsa.add_fault(match="GET /v1/voice-agents/conversation/", status=503, times=None)
    code, out = run(hamsa, redis_url, "--since", days_ago(7))
    assert code == 1 and "run the same backfill again" in out
    hamsa.clear_faults()
    code, out = run(hamsa, redis_url, "--since", days_ago(7), "--json")
    assert json.loads(out)["queued"] == 5 and queued(redis) == 5


def test_agent_limits_the_backfill_to_that_agents_calls(hamsa, redis, redis_url) -> None:
    theirs = hamsa.add_call(ended_ago=86400, agent_id="agent-x")
    hamsa.add_call(ended_ago=86400, agent_id="agent-y")
    code, out = run(hamsa, redis_url, "--since", days_ago(2), "--agent", "agent-x", "--json")
    assert code == 0, out
    assert json.loads(out)["agents"] == ["agent-x"] and json.loads(out)["queued"] == 1
    assert store.load_events(redis, theirs)[0]["call"]["agent_id"] == "agent-x"


def test_a_backfill_older_than_dedupe_ttl_adds_nothing_for_calls_a_webhook_brought(
    hamsa, redis, redis_url, fixture_path
) -> None:
    from crmsync import events
    from crmsync.ingest import Ingest

    conversation = hamsa.add_call(ended_ago=86400 * 3)
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["callId"], body["data"]["data"]["conversationId"] = "call_by-webhook", conversation
    event = events.normalise(body, "SA")
    dedupe_ttl = 3600
    assert Ingest(redis, dedupe_ttl).store(event, events.dedupe_key(event), enqueue=True)
    for key in redis.keys("crmsync:*"):  # DEDUPE_TTL has passed: what it keeps is gone
        if 0 < redis.ttl(key) <= dedupe_ttl:
            redis.delete(key)
    code, out = run(hamsa, redis_url, "--since", days_ago(7), "--json")
    assert code == 0, out
    assert (json.loads(out)["queued"], json.loads(out)["already_in_crmsync"]) == (0, 1)
    assert redis.ttl(store.conversation_key(conversation)) > store.LEDGER_TTLS["activity"] - 60


def test_a_since_older_than_crmsync_remembers_is_refused_with_a_clear_line(hamsa, redis, redis_url) -> None:
    code, out = run(hamsa, redis_url, "--since", days_ago(91))
    assert code == 1 and hamsa.count() == 0
    [line] = [text for text in out.splitlines() if text.strip()]
    assert line.startswith(f"Error: --since {days_ago(91)[:10]}")
    assert "crmsync remembers which calls it received for 90 days" in line
