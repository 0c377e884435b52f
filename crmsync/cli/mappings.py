"""``crmsync mappings check`` and ``crmsync mappings preview`` (SPEC §7).

Without ``--remote`` neither needs Redis nor CRM credentials: ``check`` reads only
``MAPPINGS_DIR``, ``preview`` also ``CRM`` (which file is active) and ``DEFAULT_REGION``.
``--remote`` builds the configured connector and uses only its reads (``describe``,
``find_people``). Both exit 1 on any error; ``--json`` prints one object for machines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

import crmsync.cli.render as render
from crmsync import phones
from crmsync.errors import CrmsyncError, MappingError
from crmsync.mapping.loader import load_mapping
from crmsync.mapping.model import Mapping
from crmsync.mapping.remote import choose_person, remote_problems
from crmsync.settings import Settings


@click.group("mappings")
def mappings() -> None:
    """Validate mapping files and preview what they do to a call."""


@mappings.command("check")
@click.option("--remote", is_flag=True, help="Also check field names, types and picklists against the live CRM.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
def check(remote: bool, as_json: bool) -> None:
    """Validate every *.yaml in MAPPINGS_DIR (exit 1 on any error)."""
    settings = _settings(as_json)
    directory = settings.mappings_dir
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
    if remote:
        report["remote"] = _remote_check(settings, loaded, as_json)
        report["ok"] = report["ok"] and report["remote"]["ok"]
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        render.check_report(report)
    sys.exit(0 if report["ok"] else 1)


def _remote_check(settings: Settings, loaded: dict[Path, Mapping], as_json: bool) -> dict[str, Any]:
    crm = _require(settings.require_crm, as_json)
    path = settings.mapping_path
    result: dict[str, Any] = {"crm": crm, "path": str(path), "ok": False, "problems": []}
    mapping = loaded.get(path)
    if mapping is None:
        result["problems"] = [f"{path}: not checked against {crm}: the file is missing or does not load"]
        return result
    connector = _connector(settings, as_json)
    try:
        result["problems"] = remote_problems(mapping, connector.describe)
    except CrmsyncError as exc:
        result["problems"] = [f"{path}: could not read {crm}'s metadata: {exc}"]
    finally:
        _close(connector)
    result["ok"] = not result["problems"]
    return result


@mappings.command("preview")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--remote", is_flag=True, help="Look the caller up in the live CRM (reads only, writes nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
def preview(event_file: Path, remote: bool, as_json: bool) -> None:
    """Show what EVENT_FILE (a webhook body, or a JSON list of one call's bodies) would do.

    Writes nothing. Without --remote the caller is not looked up: the plan assumes the
    first object type of match.objects with every field empty.
    """
    from crmsync.events import InvalidEvent, call_context, normalise

    settings = _settings(as_json)
    crm = _require(settings.require_crm, as_json)
    try:
        mapping = load_mapping(settings.mapping_path)
    except MappingError as exc:
        _fail(exc.problems, as_json)
    try:
        loaded = json.loads(event_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _fail([f"{event_file}: not a JSON file: {type(exc).__name__}"], as_json)
    bodies = loaded if isinstance(loaded, list) else [loaded]
    try:
        events = [normalise(body, settings.default_region) for body in bodies]
    except InvalidEvent as exc:
        _fail([f"{event_file}: {path}: {'; '.join(msgs)}" for path, msgs in exc.details.items()], as_json)
    context = call_context(events)
    types = sorted({str(e.get("event")) for e in events})
    number = mapping.lookup_number(context, settings.default_region)
    report: dict[str, Any] = {
        "crm": crm,
        "mapping": str(settings.mapping_path),
        "call_id": context["call"].get("id"),
        "events": types,
        "number": phones.mask(number) or None,
        "syncs": any(t in mapping.events for t in types),
    }
    person_object, current = _match(report, mapping, context, number, settings, remote, as_json)
    if report["syncs"] and person_object is not None:
        plan = mapping.plan(context, person_object, current, settings.default_region)
        report["plan"] = plan.to_dict()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render.preview_report(report, html=crm == "hubspot")


def _match(
    report: dict[str, Any],
    mapping: Mapping,
    context: dict[str, Any],
    number: str | None,
    settings: Settings,
    remote: bool,
    as_json: bool,
) -> tuple[str | None, dict[str, Any]]:
    """Fill ``report["match"]``; the object type to plan for and its current values."""
    objects = mapping.match.objects
    if not remote:
        report["match"] = {
            "looked_up": False,
            "object": objects[0],
            "note": f"not looked up: assuming a {objects[0]} with empty fields (--remote looks)",
        }
        return objects[0], {}
    if number is None:
        report["match"] = {"looked_up": False, "note": "no phone number in the call: nothing would be written"}
        return None, {}
    connector = _connector(settings, as_json)
    fields = list(dict.fromkeys(name for obj in objects for name in mapping.read_fields(obj)))
    try:
        people = connector.find_people(number, objects, fields)
    except CrmsyncError as exc:
        _fail([f"{mapping.crm}: the lookup failed: {exc}"], as_json)
    finally:
        _close(connector)
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


def _settings(as_json: bool) -> Settings:
    try:
        return Settings.from_env()
    except CrmsyncError as exc:
        _fail([str(exc)], as_json)


def _require(requirement: Any, as_json: bool) -> Any:
    try:
        return requirement()
    except CrmsyncError as exc:
        _fail([str(exc)], as_json)


def _connector(settings: Settings, as_json: bool) -> Any:
    from crmsync.crm.factory import build_connector
    from crmsync.store import redis_client

    try:
        return build_connector(settings, redis_client(settings))
    except CrmsyncError as exc:
        _fail([str(exc)], as_json)


def _close(connector: Any) -> None:
    close = getattr(connector, "close", None)
    if callable(close):
        close()


def _fail(problems: list[str], as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "problems": problems}, indent=2))
    else:
        render.problems(problems)
    sys.exit(1)
