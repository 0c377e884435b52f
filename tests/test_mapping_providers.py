"""``providers:`` in a mapping and ``call.provider`` in paths: which platforms' calls a file
serves, checked at load and applied by the sync job (real Redis, the HubSpot sandbox)."""

from __future__ import annotations

import json
import shutil

import pytest

from crmsync import jobs
from crmsync.errors import MappingError
from crmsync.events import dedupe_key
from crmsync.ingest import Ingest
from crmsync.mapping import load_mapping
from crmsync.providers.registry import PLATFORMS
from crmsync.record import SyncRecord
from tests.conftest import ROOT, installed
from tests.hs_helpers import hubspot_env
from tests.provider_signing import FINAL, call_id, fixture


def mapping_with(tmp_path, extra: str):
    folder = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", folder)
    path = folder / "hubspot.yaml"
    path.write_text(path.read_text().replace("match:", f"{extra}\nmatch:", 1))
    return folder


def test_providers_are_read_and_default_to_every_platform(tmp_path):
    assert load_mapping(ROOT / "mappings" / "hubspot.yaml").providers is None
    mapping = load_mapping(mapping_with(tmp_path, "providers: [retell, vapi]") / "hubspot.yaml")
    assert mapping.providers == ["retell", "vapi"]
    assert mapping.refuses_provider({"provider": "vapi"}) is None
    assert mapping.refuses_provider({"provider": "bland"}) == (
        "the call comes from bland: the mapping serves retell, vapi (providers:)"
    )
    assert "comes from hamsa" in mapping.refuses_provider({})  # a Hamsa event names no provider


def test_an_unknown_provider_is_refused_with_its_line_and_a_suggestion(tmp_path):
    folder = mapping_with(tmp_path, "providers: [hamsa, retel]")
    with pytest.raises(MappingError) as info:
        load_mapping(folder / "hubspot.yaml")
    [problem] = info.value.problems
    line = next(i for i, text in enumerate((folder / "hubspot.yaml").read_text().splitlines(), 1) if "retel]" in text)
    assert problem == (
        f'{folder / "hubspot.yaml"}:{line}: providers[1]: "retel" is not one of hamsa, retell, vapi, elevenlabs, '
        'bland (did you mean "retell"?)'
    )


@pytest.fixture
def runtime(hubspot, redis, redis_url, tmp_path):
    folder = mapping_with(tmp_path, "providers: [retell, hamsa]")
    mapping = folder / "hubspot.yaml"
    mapping.write_text(mapping.read_text() + "  - from: call.provider\n    to: lead_source\n")
    with installed(hubspot_env(hubspot, redis_url, folder), redis) as built:
        yield built


def receive(redis, platform: str) -> str:
    event = PLATFORMS[platform].normalise(json.loads(fixture(FINAL[platform])), "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    return event["call_id"]


def test_a_call_from_a_platform_the_mapping_does_not_serve_is_skipped(runtime, hubspot, redis):
    hubspot.seed_contact({"phone": "+966503334455", "lastname": "Vapi caller"})
    assert jobs.sync_call(receive(redis, "vapi"), "call.ended") == "skipped"
    record = SyncRecord.load(redis, call_id("vapi"))
    # the only file serves retell and hamsa (providers:), and there is no default file
    assert record.reason.startswith("no mapping file serves this call (")
    assert "provider vapi)" in record.reason and "no default file" in record.reason
    assert hubspot.calls_for(call_id("vapi")) == []


def test_a_served_platform_syncs_and_call_provider_is_a_path(runtime, hubspot, redis):
    known = hubspot.seed_contact({"phone": "+966502223344", "lastname": "Retell caller"})
    assert jobs.sync_call(receive(redis, "retell"), "call.ended") == "synced"
    assert hubspot.contact(known)["lead_source"] == "retell"
    assert float(hubspot.contact(known)["budget"]) == 95000


def test_mappings_preview_reads_a_platform_body_with_provider():
    from click.testing import CliRunner

    from crmsync.cli.mappings import mappings
    from tests.provider_signing import FIXTURES

    env = {"MAPPINGS_DIR": str(ROOT / "mappings"), "CRM": "hubspot", "DEFAULT_REGION": "SA", "REDIS_URL": None}
    body = str(FIXTURES / "vapi_end_of_call_report.json")
    result = CliRunner().invoke(mappings, ["preview", body, "--provider", "vapi", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["call_id"] == call_id("vapi")
    assert report["number"] == "+9665*****455"
    assert report["plan"]["updates"]["budget"] == "70000"
    as_hamsa = CliRunner().invoke(mappings, ["preview", body], env=env)
    assert as_hamsa.exit_code == 1
    assert "No event type" in as_hamsa.output
