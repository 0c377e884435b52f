"""``crmsync demo`` runs the whole pipeline and reports what it did."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("crm, created", [("hubspot", "created contact"), ("salesforce", "created Lead")])
def test_demo_syncs_every_sample_call(redis, redis_url, crm, created):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "crmsync"), "demo", "--crm", crm],
        cwd=ROOT,
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count(" synced ") + out.count(" partial ") == 5, out  # 4 by webhook, 1 only through the sweep
    # the callbacks agent's call: on Lena, her company and her open deal, with a follow-up task
    line = next(line for line in out.splitlines() if "also on" in line)
    assert ("company" in line or crm == "salesforce") and "deal" in line and "-callbacks.yaml, agent" in line, out
    assert "follow-up task" in out
    assert "no webhook came: found by the reconciliation sweep in Hamsa's call history" in out
    assert "200 duplicate" in out
    assert created in out and "matched" in out
    assert "Point a real Hamsa agent at it" in out
    assert "966501234567" not in out + result.stderr  # the demo shows no full numbers
    assert "2026-04-01" in out and "1775001600000" not in out  # a date as a person reads it, not epoch ms


def test_the_installed_demo_ships_the_same_mappings():
    names = sorted(path.name for path in (ROOT / "mappings").glob("*.yaml"))
    assert "hubspot-callbacks.yaml" in names
    assert names == sorted(path.name for path in (ROOT / "crmsync" / "demo" / "mappings").glob("*.yaml"))
    for name in names:
        shipped = (ROOT / "crmsync" / "demo" / "mappings" / name).read_text()
        assert shipped == (ROOT / "mappings" / name).read_text(), f"copy mappings/{name} to crmsync/demo/mappings/"
