"""``crmsync mappings check`` and ``preview``, locally and against the sandbox CRMs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmsync.cli.mappings import mappings
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from tests.hs_helpers import hubspot_env
from tests.sf_helpers import salesforce_env

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "mappings"
# Variables a developer's shell may have set that these commands must not depend on.
CLEAN = {
    name: None
    for name in (
        "REDIS_URL",
        "HUBSPOT_ACCESS_TOKEN",
        "HUBSPOT_BASE_URL",
        "SALESFORCE_INSTANCE_URL",
        "SALESFORCE_ACCESS_TOKEN",
        "WEBHOOK_TOKENS",
        "WEBHOOK_AUTH",
    )
}


def run(args: list[str], **env: Any) -> Result:
    return CliRunner().invoke(mappings, args, env={**CLEAN, "COLUMNS": "160", **env}, catch_exceptions=False)


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    for name in ("hubspot.yaml", "salesforce.yaml"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path


# -- check, locally ------------------------------------------------------------------------


def test_check_the_shipped_mappings_needs_no_redis_and_no_crm() -> None:
    result = run(["check"], MAPPINGS_DIR=str(SHIPPED), CRM=None, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.exit_code == 0, result.output
    assert f"✓ {SHIPPED}/hubspot.yaml  hubspot · events call.ended · 13 fields" in result.output
    assert f"✓ {SHIPPED}/salesforce.yaml  salesforce · events call.ended · 11 fields" in result.output
    assert "All mappings are valid." in result.output


def test_check_reports_every_problem_and_exits_1(mdir: Path) -> None:
    text = (mdir / "hubspot.yaml").read_text().replace("type: number ", "type: nummber ", 1)
    (mdir / "hubspot.yaml").write_text(text.replace("on_multiple:", "on_multple:"))
    result = run(["check"], MAPPINGS_DIR=str(mdir))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"✗ {mdir}/hubspot.yaml  2 problems" in lines
    assert any(line.strip().startswith(f"{mdir}/hubspot.yaml:20: match.on_multple: unknown key") for line in lines)
    assert any(
        line.strip().startswith(f'{mdir}/hubspot.yaml:47: fields[0].type: "nummber" is not one of') for line in lines
    )
    assert f"✓ {mdir}/salesforce.yaml  salesforce · events call.ended · 11 fields" in lines
    assert "Fix the problems above, then check again." in lines


def test_check_json(mdir: Path) -> None:
    (mdir / "salesforce.yaml").write_text("version: 1\ncrm: hubspot\n")
    result = run(["check", "--json"], MAPPINGS_DIR=str(mdir))
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["remote"] is None
    hubspot, salesforce = report["files"]
    assert hubspot == {
        "path": f"{mdir}/hubspot.yaml",
        "ok": True,
        "problems": [],
        "crm": "hubspot",
        "events": ["call.ended"],
        "fields": 13,
    }
    assert salesforce["problems"] == [
        f'{mdir}/salesforce.yaml:2: crm: "hubspot" does not match the file name '
        "salesforce.yaml: write crm: salesforce, or rename the file"
    ]


def test_check_an_empty_folder(tmp_path: Path) -> None:
    result = run(["check"], MAPPINGS_DIR=str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "no mapping files (*.yaml) found" in result.output


# -- preview, locally -----------------------------------------------------------------------


def fields_by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["to"]: f for f in report["plan"]["fields"]}


def test_preview_documented_call_in_hubspot(fixture_path: Path) -> None:
    event = fixture_path / "call_ended_documented.json"
    result = run(["preview", str(event)], MAPPINGS_DIR=str(SHIPPED), CRM="hubspot", DEFAULT_REGION="SA")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "+9665*****567" in out and "+966501234567" not in out.split("fields")[0]  # the number, masked
    assert "not looked up: assuming a contact with empty fields (--remote looks)" in out
    assert "AI call with Noura (Sales)" in out
    assert "f240bbac-87c9-4f6e-bf70-924b57d47db7" in out
    for row in (
        ["budget", "outcome.budget", "∅ → 80000", "write"],
        ["hs_lead_status", "∅ → OPEN_DEAL"],
        ["last_ai_call_at", "∅ → 2026-03-02T09:14:52.318Z"],
        ["renewal_decision", "outcome.renewal_decision", "skip", "source is empty"],
    ):
        assert any(all(cell in line for cell in row) for line in out.splitlines()), row
    assert "9 fields would be written" in out

    report = json.loads(
        run(["preview", str(event), "--json"], MAPPINGS_DIR=str(SHIPPED), CRM="hubspot", DEFAULT_REGION="SA").output
    )
    assert report["number"] == "+9665*****567" and report["syncs"] is True
    fields = fields_by_name(report)
    assert fields["budget"]["new"] == "80000"
    assert fields["callback_requested"]["new"] == "true"
    assert fields["interest_level"]["new"] == "high"
    assert fields["last_ai_call_at"]["new"] == "1772442892318"
    assert report["plan"]["updates"]["phone"] == "+966501234567"
    assert report["plan"]["activity"]["body"].startswith("<h3>Outcome</h3>")


def test_preview_flat_call_in_salesforce(fixture_path: Path) -> None:
    event = fixture_path / "call_ended_flat.json"
    result = run(["preview", str(event)], MAPPINGS_DIR=str(SHIPPED), CRM="salesforce", DEFAULT_REGION="SA")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "AI call with the AI agent" in out
    for row in (
        ["Follow_Up_Date__c", "∅ → 2026-04-01"],
        ["Objections__c", "∅ → price, timing"],
        ["Renewal_Decision__c (Contact)", "∅ → Undecided"],
        ["NPS__c (Contact)", "source is empty"],
    ):
        assert any(all(cell in line for cell in row) for line in out.splitlines()), row

    report = json.loads(
        run(["preview", str(event), "--json"], MAPPINGS_DIR=str(SHIPPED), CRM="salesforce", DEFAULT_REGION="SA").output
    )
    assert report["match"]["object"] == "Contact"
    assert report["plan"]["updates"] == {
        "Follow_Up_Date__c": "2026-04-01",
        "Objections__c": "price, timing",
        "Renewal_Decision__c": "Undecided",
        "Last_AI_Call__c": "2026-03-02T09:13:21.000Z",
        "Phone": "+966551234567",
    }
    body = report["plan"]["activity"]["body"]
    assert "- Objections: price, timing" in body and "Agent: Good afternoon, am I speaking with Omar?" in body
    assert report["plan"]["activity"]["properties"] == {"Priority": "Normal"}


NARROW = [("hubspot", "call_ended_documented.json"), ("salesforce", "call_ended_flat.json")]


def preview_piped(event: Path, **env: str) -> str:
    """The installed command, its output through a real pipe, with no COLUMNS set."""
    environ = {k: v for k, v in os.environ.items() if k not in CLEAN and k != "COLUMNS"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "crmsync"), "mappings", "preview", str(event)],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("how", ["80 columns", "piped"])
@pytest.mark.parametrize("crm, name", NARROW)
def test_preview_keeps_every_field_name_whole_at_80_columns_and_piped(
    fixture_path: Path, crm: str, name: str, how: str
) -> None:
    event = fixture_path / name
    env = {"MAPPINGS_DIR": str(SHIPPED), "CRM": crm, "DEFAULT_REGION": "SA"}
    report = json.loads(run(["preview", str(event), "--json"], **env).output)
    if how == "piped":
        out = preview_piped(event, **env)
    else:
        result = run(["preview", str(event)], **{**env, "COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        out = result.output
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    fields = "\n".join(lines[lines.index("fields") :])
    assert "…" not in fields  # nothing cut, values included
    for entry in report["plan"]["fields"]:
        for whole in entry["to"] + (f" ({entry['object']})" if entry["object"] else ""), entry["source"]:
            assert re.search(rf"(?<![\w.]){re.escape(whole)}(?![\w.])", fields), whole
    assert len(re.findall(r"^\S.*  (write|skip)", fields, re.M)) == len(report["plan"]["fields"])  # a block each


@pytest.mark.parametrize("how", ["80 columns", "160 columns"])
def test_preview_shows_dates_as_dates_not_the_crms_wire_form(fixture_path: Path, how: str) -> None:
    event = fixture_path / "call_ended_flat.json"
    env = {"MAPPINGS_DIR": str(SHIPPED), "CRM": "hubspot", "DEFAULT_REGION": "SA", "COLUMNS": how.split()[0]}
    fields = fields_by_name(json.loads(run(["preview", str(event), "--json"], **env).output))
    # HubSpot's wire form is epoch milliseconds; the plan also holds the value itself
    assert (fields["follow_up_date"]["new"], fields["follow_up_date"]["value"]) == ("1775001600000", "2026-04-01")
    assert fields["last_ai_call_at"]["new"] == "1772442801000"
    out = run(["preview", str(event)], **env).output
    assert "1775001600000" not in out and "1772442801000" not in out
    for name, shown in ("follow_up_date", "∅ → 2026-04-01"), ("last_ai_call_at", "∅ → 2026-03-02T09:13:21.000Z"):
        lines = out.splitlines()
        at = next(i for i, line in enumerate(lines) if re.search(rf"(?<![\w.]){name}(?![\w.])", line))
        assert shown in "\n".join(lines[at : at + 3]), name  # on the field's row, or in its block


def test_preview_an_event_the_mapping_does_not_sync(fixture_path: Path) -> None:
    result = run(["preview", str(fixture_path / "call_started.json")], MAPPINGS_DIR=str(SHIPPED), CRM="hubspot")
    assert result.exit_code == 0
    assert "This mapping does not sync call.started events (see events:): nothing would be written." in result.output


def test_preview_needs_crm_and_a_valid_event(tmp_path: Path, fixture_path: Path) -> None:
    event = fixture_path / "call_ended_flat.json"
    result = run(["preview", str(event)], MAPPINGS_DIR=str(SHIPPED), CRM=None)
    assert result.exit_code == 1 and "CRM is not set: set it to salesforce or hubspot" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    result = run(["preview", str(bad), "--json"], MAPPINGS_DIR=str(SHIPPED), CRM="hubspot")
    assert result.exit_code == 1 and json.loads(result.output)["ok"] is False
    bad.write_text("not json")
    result = run(["preview", str(bad)], MAPPINGS_DIR=str(SHIPPED), CRM="hubspot")
    assert result.exit_code == 1 and f"{bad}: not a JSON file: JSONDecodeError" in result.output


# -- against the sandboxes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def salesforce() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox() as sf:
        yield sf


def test_check_remote_hubspot(hubspot: HubSpotSandbox, redis: Any, redis_url: str, mdir: Path) -> None:
    env = hubspot_env(hubspot, redis_url, mdir)
    result = run(["check", "--remote"], **env)
    assert result.exit_code == 0, result.output
    assert f"✓ {mdir}/hubspot.yaml matches hubspot's fields and picklists" in result.output

    text = (mdir / "hubspot.yaml").read_text()
    text = text.replace("to: preferred_call_time", "to: prefered_call_time")
    text = text.replace("{high: high, medium: medium, low: low}", "{high: High, medium: medium, low: low}")
    text = text.replace("    to: customer_id\n", "    to: hs_object_id\n")
    (mdir / "hubspot.yaml").write_text(text)
    result = run(["check", "--remote", "--json"], **env)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["files"][0]["ok"] is True  # valid locally: only the CRM knows
    assert report["remote"]["problems"] == [
        f'{mdir}/hubspot.yaml:51: fields[1].values.high: "High" is not an allowed value of interest_level on '
        'contact: high, medium, low (did you mean "high"?)',
        f'{mdir}/hubspot.yaml:61: fields[4].to: "prefered_call_time" does not exist on contact '
        '(did you mean "preferred_call_time"?)',
        f'{mdir}/hubspot.yaml:63: fields[5].to: "hs_object_id" on contact is read-only: choose a field that can be '
        "written",
    ]


def test_check_remote_salesforce(salesforce: SalesforceSandbox, redis: Any, redis_url: str, mdir: Path) -> None:
    env = salesforce_env(salesforce, redis_url, mdir)
    result = run(["check", "--remote"], **env)
    assert result.exit_code == 0, result.output
    text = (mdir / "salesforce.yaml").read_text()
    text = text.replace("{high: High, medium: Medium, low: Low}", "{high: Hot, medium: Medium, low: Low}")
    text = text.replace("to: Budget__c", "to: Budjet__c")
    text = text.replace("    Priority: Normal", "    Priority: Normal\n    Mood__c: x")
    (mdir / "salesforce.yaml").write_text(text)
    result = run(["check", "--remote"], **env)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert (
        f'{mdir}/salesforce.yaml:44: fields[0].to: "Budjet__c" does not exist on Contact (did you mean '
        '"Budget__c"?)' in out
    )
    assert f'{mdir}/salesforce.yaml:44: fields[0].to: "Budjet__c" does not exist on Lead' in out
    assert (
        f'{mdir}/salesforce.yaml:49: fields[1].values.high: "Hot" is not an allowed value of Interest_Level__c on '
        "Contact: High, Medium, Low" in out
    )
    assert f'{mdir}/salesforce.yaml:40: activity.properties.Mood__c: "Mood__c" does not exist on Task' in out


def test_preview_remote_hubspot_shows_current_values(
    hubspot: HubSpotSandbox, redis: Any, redis_url: str, mdir: Path, fixture_path: Path
) -> None:
    cid = hubspot.seed_contact(
        {
            "firstname": "Sara",
            "phone": "050 123 4567",
            "budget": "80000",
            "hs_lead_status": "NEW",
            "hubspot_owner_id": "1002",
        }
    )
    env = hubspot_env(hubspot, redis_url, mdir)
    result = run(["preview", str(fixture_path / "call_ended_documented.json"), "--remote", "--json"], **env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["match"]["person"]["id"] == cid and report["match"]["how"] == "one match"
    fields = fields_by_name(report)
    assert (fields["budget"]["action"], fields["budget"]["reason"]) == ("skip", "unchanged")
    assert (fields["hs_lead_status"]["old"], fields["hs_lead_status"]["reason"]) == (
        "NEW",
        "if_empty: the field has a value",
    )
    assert fields["interest_level"]["action"] == "write"
    assert [r.method for r in hubspot.requests if r.method in ("PATCH", "PUT")] == []  # nothing written
    assert not any(r.method == "POST" and "/search" not in r.path for r in hubspot.requests)


def test_preview_remote_nobody_matches_shows_the_record_to_create(
    salesforce: SalesforceSandbox, redis: Any, redis_url: str, mdir: Path, fixture_path: Path
) -> None:
    env = salesforce_env(salesforce, redis_url, mdir)
    result = run(["preview", str(fixture_path / "call_ended_flat.json"), "--remote"], **env)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "nobody matches: a Lead would be created" in out
    assert "LastName=Unknown caller, Company=Unknown, Phone=+966551234567, LeadSource=Phone Inquiry" in out
    assert "Renewal_Decision__c" not in out  # a Contact-only field: not for the new Lead
