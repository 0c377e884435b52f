"""``crmsync mappings check`` and ``crmsync mappings preview`` (SPEC §7).

Without ``--remote`` neither needs Redis nor CRM credentials: ``check`` reads only
``MAPPINGS_DIR``, ``preview`` also ``CRM`` (which file is active) and ``DEFAULT_REGION``.
``--remote`` builds the configured connector and uses only its reads (``describe``,
``find_people``). Both exit 1 on any error; ``--json`` prints one object for machines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

import crmsync.cli.render as render
from crmsync.crm.base import Person
from crmsync.errors import CrmsyncError, MappingError
from crmsync.mapping.model import PROVIDERS, Mapping
from crmsync.mapping.preview import check_folder
from crmsync.mapping.preview import preview as preview_report
from crmsync.mapping.remote import remote_problems
from crmsync.mapping.routing import load_routes
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
    report, loaded = check_folder(settings.mappings_dir)
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
    mine = [m for m in loaded.values() if m.crm == crm]
    paths = ", ".join(str(m.path) for m in mine) or str(settings.mappings_dir)
    result: dict[str, Any] = {"crm": crm, "path": paths, "ok": False, "problems": []}
    if not mine:
        result["problems"] = [f"{settings.mappings_dir}: no {crm} mapping loads, so none was checked against {crm}"]
        return result
    connector = _connector(settings, as_json)
    try:
        for mapping in mine:
            result["problems"] += remote_problems(mapping, connector.describe)
    except CrmsyncError as exc:
        result["problems"].append(f"{paths}: could not read {crm}'s metadata: {exc}")
    finally:
        _close(connector)
    result["ok"] = not result["problems"]
    return result


@mappings.command("preview")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--remote", is_flag=True, help="Look the caller up in the live CRM (reads only, writes nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="hamsa",
    show_default=True,
    help="The platform that sent EVENT_FILE (its webhook body, as that platform posts it).",
)
def preview(event_file: Path, remote: bool, as_json: bool, provider: str) -> None:
    """Show what EVENT_FILE (a webhook body, or a JSON list of one call's bodies) would do.

    Writes nothing. Without --remote the caller is not looked up: the plan assumes the
    first object type of match.objects with every field empty.
    """
    from crmsync.events import InvalidEvent, call_context
    from crmsync.quarantine import NORMALISERS

    normalise = NORMALISERS[provider]

    settings = _settings(as_json)
    crm = _require(settings.require_crm, as_json)  # CRM names the files that take part
    try:
        routes = load_routes(settings.mappings_dir, crm)
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

    mapping, route = routes.choose(call_context(events)["call"])
    if mapping is None:
        _skipped(crm, route, as_json)

    def find(number: str, objects: Sequence[str], fields: Sequence[str]) -> list[Person]:
        connector = _connector(settings, as_json)
        try:
            return connector.find_people(number, objects, fields)
        finally:
            _close(connector)

    try:
        report = preview_report(mapping, str(mapping.path), events, settings.default_region, find if remote else None)
    except CrmsyncError as exc:
        _fail([f"{mapping.crm}: the lookup failed: {exc}"], as_json)
    report["route"] = route
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render.preview_report(report, html=mapping.profile.html)


def _skipped(crm: str, reason: str, as_json: bool) -> NoReturn:
    """No file serves the call: what the worker would record (``skipped``), exit 0."""
    if as_json:
        click.echo(json.dumps({"ok": True, "crm": crm, "mapping": None, "state": "skipped", "reason": reason}))
    else:
        render.console().print(f"Skipped: {reason}. Nothing would be written.", markup=False)
    sys.exit(0)


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
