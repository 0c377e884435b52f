"""The reports of ``crmsync mappings check`` and ``crmsync mappings preview``, as data.

The command line prints them (``crmsync.mapping.render``) and the admin console shows them
as pages; both build them here, so they always say the same. Nothing here writes anything.

``check_folder(dir)``: each ``*.yaml`` with its problems (``file:line: key: message``).
``check_text(text, name)``: the same for a draft pasted into the console.
``preview(mapping, events, …)``: what one call's events would do under ``mapping``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from crmsync import phones, times
from crmsync.crm.base import Person
from crmsync.errors import MappingError
from crmsync.events import CallContext, CanonicalEvent, call_context
from crmsync.mapping.loader import load_mapping, load_text
from crmsync.mapping.model import Mapping
from crmsync.mapping.remote import choose_person
from crmsync.mapping.routing import Routes, conflicts

# find(number, objects, fields) -> people: the connector's lookup, for a remote preview
Finder = Callable[[str, Sequence[str], Sequence[str]], list[Person]]


def check_folder(directory: Path) -> tuple[dict[str, Any], dict[Path, Mapping]]:
    """The report ``{"ok", "directory", "files": [{path, ok, problems, crm, events, fields}],
    "routes": {crm: routing table}, "problems"?, "remote": None}`` and the mappings that loaded,
    by file. Two files claiming the same agent (project, provider) are a problem of the second."""
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    report: dict[str, Any] = {"ok": True, "directory": str(directory), "files": [], "remote": None}
    if not files:
        report["ok"] = False
        report["problems"] = [
            f"{directory}: no mapping files (*.yaml) found; set MAPPINGS_DIR to the folder that has them"
        ]
    loaded: dict[Path, Mapping] = {}
    for file in files:
        entry: dict[str, Any] = {"path": str(file), "ok": True, "problems": []}
        try:
            mapping = loaded[file] = load_mapping(file)
            entry.update(crm=mapping.crm, events=mapping.events, fields=len(mapping.fields))
        except MappingError as exc:
            entry.update(ok=False, problems=exc.problems)
            report["ok"] = False
        report["files"].append(entry)
    for problem in conflicts(list(loaded.values())):
        entry = next(e for e in report["files"] if problem.startswith(e["path"] + ":"))
        entry["ok"] = report["ok"] = False
        entry["problems"].append(problem)
    crms = dict.fromkeys(m.crm for m in loaded.values())
    report["routes"] = {crm: Routes(crm, [m for m in loaded.values() if m.crm == crm]).table() for crm in crms}
    return report, loaded


def check_text(text: str, name: str) -> tuple[Mapping | None, list[str]]:
    """The draft's mapping (None when it does not load) and its problems."""
    try:
        return load_text(text, name), []
    except MappingError as exc:
        return None, exc.problems


def diff(active: str, draft: str, name: str) -> list[str]:
    """A unified diff of the active file against the draft (lines without newlines)."""
    return list(
        difflib.unified_diff(
            active.splitlines(), draft.splitlines(), f"{name} (active)", f"{name} (draft)", lineterm=""
        )
    )


def preview(
    mapping: Mapping, path: str, events: list[CanonicalEvent], region: str, find: Finder | None = None
) -> dict[str, Any]:
    """What ``events`` (canonical events of one call) would do under ``mapping``.

    ``find`` looks the caller up in the CRM (``--remote``); without it the plan assumes the
    first object type of ``match.objects`` with every field empty. Raises ``CrmsyncError``
    when the lookup fails.
    """
    context = call_context(events)
    types = sorted({str(e.get("event")) for e in events})
    number = mapping.lookup_number(context, region)
    report: dict[str, Any] = {
        "crm": mapping.crm,
        "mapping": path,
        "call_id": context["call"].get("id"),
        "events": types,
        "number": phones.mask(number) or None,
        "syncs": any(t in mapping.events for t in types),
    }
    person_object, current = _match(report, mapping, context, number, find)
    if report["syncs"] and person_object is not None:
        report["plan"] = mapping.plan(context, person_object, current, region).to_dict()
    return report


def _match(
    report: dict[str, Any], mapping: Mapping, context: CallContext, number: str | None, find: Finder | None
) -> tuple[str | None, dict[str, Any]]:
    """Fill ``report["match"]``; the object type to plan for and its current values."""
    objects = mapping.match.objects
    if find is None:
        report["match"] = {
            "looked_up": False,
            "object": objects[0],
            "note": f"not looked up: assuming a {objects[0]} with empty fields (--remote looks)",
        }
        return objects[0], {}
    if number is None:
        report["match"] = {"looked_up": False, "note": "no phone number in the call: nothing would be written"}
        return None, {}
    fields = list(dict.fromkeys(name for obj in objects for name in mapping.read_fields(obj)))
    people = find(number, objects, fields)
    person, how = choose_person(people, mapping.match.on_multiple)
    report["match"] = {"looked_up": True, "found": len(people), "how": how}
    if person is not None:
        report["match"].update(person=person.to_dict(), object=person.object)
        return person.object, dict(person.values)
    if how == "ambiguous" or mapping.match.on_missing == "skip" or mapping.match.create_object is None:
        report["match"]["note"] = f"{how}: nothing would be written"
        return None, {}
    report["match"].update(
        object=mapping.match.create_object,
        create=mapping.create_properties(context),
        note=f"nobody matches: a {mapping.match.create_object} would be created",
    )
    return mapping.match.create_object, {}


def show_value(value: Any, type: str, limit: int | None = 120) -> str:
    """A planned value as a person reads it, in the CLI's preview and the console's alike;
    HubSpot's epoch milliseconds are shown as ISO 8601."""
    if value is None or value == "":
        return "∅"
    if type in ("date", "datetime") and isinstance(value, str) and value.isdigit():
        value = times.from_epoch_ms(value) or value
    if isinstance(value, datetime):
        if type == "date":
            value = value.date()
        else:
            value = times.iso(value)
    if isinstance(value, date):
        value = value.isoformat()
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", " ⏎ ")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
