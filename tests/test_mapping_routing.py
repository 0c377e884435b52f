"""Several mapping files per CRM (SPEC §6): which file a call uses, what the worker records,
and what ``mappings check`` / ``preview`` say. The job runs in-process against a sandbox
HubSpot and a real Redis."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync import jobs
from crmsync.cli import main
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.mapping.routing import Routes, load_routes
from crmsync.metrics import render
from crmsync.record import call_status
from crmsync.settings import Settings
from tests.conftest import installed
from tests.hs_helpers import hubspot_env

SALES = "agent-9b21-sales"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def agent_file(agents: str, field: str, source: str) -> str:
    return f"""
        version: 1
        crm: hubspot
        agents: {agents}
        fields:
          - from: {source}
            to: {field}
        """


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "sales.yaml", agent_file(f"[{SALES}]", "budget", "outcome.budget"))
    write(tmp_path, "support.yaml", agent_file("[agent-support-1]", "lead_source", "outcome.lead_source"))
    return tmp_path


@pytest.fixture
def runtime(hubspot, redis, redis_url, folder):
    with installed(hubspot_env(hubspot, redis_url, folder), redis) as built:
        yield built


def receive(redis, fixture_path: Path, call_id: str, agent: str) -> str:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text()) | {"callId": call_id, "agentId": agent}
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    return event["call_id"]


def test_two_agents_calls_use_their_own_files(runtime, hubspot, redis, fixture_path):
    contact = hubspot.seed_contact({"phone": "+966501234567", "lastname": "Alharbi"})
    sales = receive(redis, fixture_path, "call-sales-1", SALES)
    support = receive(redis, fixture_path, "call-support-1", "agent-support-1")
    assert jobs.sync_call(sales, "call.ended") == "synced"
    assert jobs.sync_call(support, "call.ended") == "synced"
    first, second = call_status(redis, sales), call_status(redis, support)
    assert (first["mapping"], first["route"]) == ("sales.yaml", f"agent {SALES}")
    assert (second["mapping"], second["route"]) == ("support.yaml", "agent agent-support-1")
    assert set(first["fields"]["written"]) == {"budget"}
    assert set(second["fields"]["written"]) == {"lead_source"}
    assert hubspot.contact(contact)["budget"] == "80000"
    assert hubspot.contact(contact)["lead_source"] == "spring-campaign"
    text = render(redis)
    assert 'crmsync_calls_total{mapping="sales.yaml",state="synced"} 1' in text
    assert 'crmsync_calls_total{mapping="support.yaml",state="synced"} 1' in text


def test_a_call_no_file_serves_is_skipped_with_the_reason(runtime, hubspot, redis, fixture_path):
    hubspot.seed_contact({"phone": "+966501234567", "lastname": "Alharbi"})
    call_id = receive(redis, fixture_path, "call-other-1", "agent-renewals-3")
    assert jobs.sync_call(call_id, "call.ended") == "skipped"
    record = call_status(redis, call_id)
    assert record["mapping"] is None
    assert record["reason"].startswith("no mapping file serves this call (agent agent-renewals-3, project proj_41c2")
    assert "there is no default file" in record["reason"]
    assert hubspot.calls == {}  # nothing reached the CRM
    assert 'crmsync_calls_total{mapping="none",state="skipped"} 1' in render(redis)
    result = CliRunner().invoke(main, ["status", call_id], env={"REDIS_URL": runtime.settings.redis_url})
    assert "no mapping file serves this call" in result.output


def test_agent_then_project_then_provider_then_default(tmp_path):
    write(tmp_path, "hubspot.yaml", "version: 1\ncrm: hubspot\n")
    write(tmp_path, "p.yaml", "version: 1\ncrm: hubspot\nprojects: [proj-1]\n")
    write(tmp_path, "r.yaml", "version: 1\ncrm: hubspot\nproviders: [retell]\n")
    write(tmp_path, "a.yaml", "version: 1\ncrm: hubspot\nagents: [ag-1]\n")
    write(tmp_path, "sf.yaml", "version: 1\ncrm: salesforce\nagents: [ag-1]\n")  # another CRM: not part
    routes = load_routes(tmp_path, "hubspot")

    def chosen(**call: str) -> tuple[str | None, str]:
        mapping, why = routes.choose(call)
        return (mapping.path.name if mapping else None), why

    assert chosen(agent_id="ag-1", project_id="proj-1", provider="retell") == ("a.yaml", "agent ag-1")
    assert chosen(agent_id="ag-2", project_id="proj-1", provider="retell") == ("p.yaml", "project proj-1")
    assert chosen(agent_id="ag-2", project_id="proj-2", provider="retell") == ("r.yaml", "provider retell")
    assert chosen(agent_id="ag-2", project_id="proj-2") == ("hubspot.yaml", "default")
    assert [row["file"] for row in routes.table()] == ["a.yaml", "p.yaml", "r.yaml", "hubspot.yaml"]


def test_a_file_with_several_keys_serves_only_calls_matching_all(tmp_path):
    write(tmp_path, "a.yaml", "version: 1\ncrm: hubspot\nagents: [ag-1]\nproviders: [retell]\n")
    routes = load_routes(tmp_path, "hubspot")
    assert routes.choose({"agent_id": "ag-1", "provider": "retell"})[0] is not None
    mapping, why = routes.choose({"agent_id": "ag-1"})  # a Hamsa call of that agent
    assert mapping is None and "no default file" in why


def test_the_single_file_layout_is_one_default(tmp_path):
    write(tmp_path, "hubspot.yaml", "version: 1\ncrm: hubspot\n")
    routes = load_routes(tmp_path, "hubspot")
    assert isinstance(routes, Routes) and routes.default is not None
    assert routes.choose({"agent_id": "anything"}) == (routes.default, "default")


def check(folder: Path, *args: str):
    return CliRunner().invoke(main, ["mappings", "check", *args], env={"MAPPINGS_DIR": str(folder)})


def test_check_refuses_two_files_claiming_one_agent_with_file_and_line(folder):
    write(
        folder,
        "upsell.yaml",
        f"""
        version: 1
        crm: hubspot
        agents:
          - agent-upsell-4
          - {SALES}
        """,
    )
    result = check(folder)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert (
        f"{folder / 'upsell.yaml'}:5: agents[1]: agent '{SALES}' is already claimed by {folder / 'sales.yaml'}:3"
    ) in text
    report = json.loads(check(folder, "--json").output)
    assert not report["ok"]
    assert [f["ok"] for f in report["files"]] == [True, True, False]


def test_check_refuses_two_defaults(folder):
    write(folder, "a.yaml", "version: 1\ncrm: hubspot\n")
    write(folder, "b.yaml", "version: 1\ncrm: hubspot\n")
    result = check(folder)
    assert result.exit_code == 1
    assert "a second default hubspot mapping: a.yaml says nothing" in " ".join(result.output.split())


def test_check_shows_the_routing_table(folder):
    write(folder, "hubspot.yaml", "version: 1\ncrm: hubspot\n")
    result = check(folder)
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    start = lines.index("Routing for hubspot: the first file that serves a call")
    assert lines[start + 2 : start + 5] == [
        f"sales.yaml agents {SALES}",
        "support.yaml agents agent-support-1",
        "hubspot.yaml every other call (default)",
    ]
    routes = json.loads(check(folder, "--json").output)["routes"]["hubspot"]
    assert [r["file"] for r in routes] == ["sales.yaml", "support.yaml", "hubspot.yaml"]


def test_check_says_when_there_is_no_default(folder):
    result = check(folder)
    assert result.exit_code == 0  # a folder without a default is valid
    assert "every other call is skipped: no default file" in result.output


def test_preview_says_which_file_and_why(folder, fixture_path, tmp_path):
    env = {"MAPPINGS_DIR": str(folder), "CRM": "hubspot", "DEFAULT_REGION": "SA"}
    event = tmp_path / "event.json"
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    event.write_text(json.dumps(body))
    result = CliRunner().invoke(main, ["mappings", "preview", str(event), "--json"], env=env)
    report = json.loads(result.output)
    assert (report["mapping"], report["route"]) == (str(folder / "sales.yaml"), f"agent {SALES}")
    assert [f["to"] for f in report["plan"]["fields"]] == ["budget"]
    human = CliRunner().invoke(main, ["mappings", "preview", str(event)], env=env)
    shown = " ".join(human.output.split())
    assert "sales.yaml" in shown and f"(agent {SALES})" in shown
    event.write_text(json.dumps(body | {"agentId": "agent-x"}))
    skipped = CliRunner().invoke(main, ["mappings", "preview", str(event)], env=env)
    assert skipped.exit_code == 0
    assert "Skipped: no mapping file serves this call (agent agent-x" in " ".join(skipped.output.split())


def test_readyz_shows_the_routing_table(folder, redis_url):
    from crmsync.web import create_app

    settings = Settings.from_env(
        {"REDIS_URL": redis_url, "CRM": "hubspot", "MAPPINGS_DIR": str(folder), "WEBHOOK_AUTH": "none"}
    )
    body = create_app(settings).test_client().get("/readyz").get_json()
    assert body["mappings"] == [
        {"file": "sales.yaml", "serves": f"agents {SALES}"},
        {"file": "support.yaml", "serves": "agents agent-support-1"},
    ]
