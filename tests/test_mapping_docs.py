"""docs/mappings.md documents every mapping key: those of SPEC §6 and those the loader accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from crmsync.mapping import sections
from crmsync.mapping.coerce import TYPES
from crmsync.mapping.context import CALL_KEYS
from crmsync.mapping.model import EVENTS, ON_MISSING, ON_MULTIPLE, WRITE_MODES

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "mappings.md").read_text(encoding="utf-8")
SPEC = ROOT.parent / "shared" / "SPEC.md"
FREE_FORM = ("values", "properties")  # their keys are the admin's (source values, CRM fields), not format keys


def documented(key: str) -> bool:
    """A key counts as documented when it appears in backticks, e.g. `match.on_missing`."""
    return f"`{key}`" in DOC or f"`{key}:" in DOC


def key_paths(node: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            if key not in FREE_FORM:
                out.extend(key_paths(value, path + "."))
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict):
                out.extend(key_paths(item, prefix[:-1] + "[]."))
    return out


def spec_keys() -> list[str]:
    text = SPEC.read_text(encoding="utf-8")
    section = text.split("## 6.", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "SPEC §6 has no yaml example"
    return sorted(set(key_paths(yaml.safe_load(block.group(1)))))


@pytest.mark.skipif(not SPEC.exists(), reason="no ../shared/SPEC.md in this checkout")
def test_every_key_of_the_spec_format_is_documented() -> None:
    keys = spec_keys()
    assert "match.create.object" in keys and "fields[].when" in keys  # the walk found the nested ones
    missing = [key for key in keys if not documented(key)]
    assert missing == [], f"document these keys in docs/mappings.md: {missing}"


def test_every_key_the_loader_accepts_is_documented() -> None:
    keys = [
        *sections.TOP_KEYS,
        *(f"match.{k}" for k in sections.MATCH_KEYS),
        *(f"match.create.{k}" for k in sections.CREATE_KEYS),
        *(f"activity.{k}" for k in sections.ACTIVITY_KEYS),
        *(f"activity.disposition.{k}" for k in sections.DISPOSITION_KEYS),
        *(f"fields[].{k}" for k in sections.FIELD_KEYS),
    ]
    missing = [key for key in keys if not documented(key)]
    assert missing == [], f"document these keys in docs/mappings.md: {missing}"


@pytest.mark.parametrize("word", [*TYPES, *WRITE_MODES, *ON_MULTIPLE, *ON_MISSING, *EVENTS])
def test_every_allowed_value_is_documented(word: str) -> None:
    assert f"`{word}`" in DOC


def test_every_call_key_is_documented() -> None:
    assert [key for key in CALL_KEYS if f"`call.{key}`" not in DOC] == []
