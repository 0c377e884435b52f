"""Every Hamsa fixture still normalises to the canonical event main produced before the alias
table (issue 9), recorded in tests/golden/hamsa_events.json.

A deliberate change of the canonical event re-records the file (review the diff like code):

    .venv/bin/python -m tests.test_events_golden > tests/golden/hamsa_events.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsync.events import call_context, dedupe_key, normalise
from tests.conftest import FIXTURES

GOLDEN = Path(__file__).parent / "golden" / "hamsa_events.json"
RECEIVED = "2026-03-02T09:20:00.000Z"
REGIONS = ("US", "SA")
WHOLE_CALL = [
    "call_started.json",
    "call_answered.json",
    "transcription_update.json",
    "tool_executed.json",
    "call_ended_documented.json",
]


def _body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def record() -> dict[str, Any]:
    """What normalising gives today, in the golden file's layout (JSON round trip included)."""
    out: dict[str, Any] = {"received_at": RECEIVED, "events": {}, "dedupe_keys": {}, "context": {}}
    for path in sorted(FIXTURES.glob("*.json")):
        for region in REGIONS:
            event = normalise(_body(path.name), region, received_at=RECEIVED)
            out["events"][f"{path.name}|{region}"] = event
            out["dedupe_keys"][f"{path.name}|{region}"] = dedupe_key(event)
    for region in REGIONS:
        events = [normalise(_body(name), region, received_at=RECEIVED) for name in WHOLE_CALL]
        out["context"][region] = call_context(events)
    return json.loads(json.dumps(out))


GOLDEN_DATA = json.loads(GOLDEN.read_text())


def test_golden_covers_every_fixture():
    names = {key.split("|")[0] for key in GOLDEN_DATA["events"]}
    assert names == {path.name for path in FIXTURES.glob("*.json")} and len(names) >= 6


@pytest.mark.parametrize("key", sorted(GOLDEN_DATA["events"]))
def test_fixture_normalises_to_its_golden_event(key):
    name, region = key.split("|")
    event = json.loads(json.dumps(normalise(_body(name), region, received_at=RECEIVED)))
    assert event == GOLDEN_DATA["events"][key]
    assert dedupe_key(normalise(_body(name), region)) == GOLDEN_DATA["dedupe_keys"][key]


@pytest.mark.parametrize("region", REGIONS)
def test_the_whole_call_gives_its_golden_context(region):
    assert record()["context"][region] == GOLDEN_DATA["context"][region]


if __name__ == "__main__":
    print(json.dumps(record(), indent=1, sort_keys=True, ensure_ascii=False))
