"""The mappings page: each file's check, the routing, and a preview of a real call or a pasted
body under the active file or a pasted draft (with its check and a diff). It writes nothing:
the files stay the source of truth; a draft ships by being committed (the release phase
checks it)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, request

from crmsync import store
from crmsync.callindex import Query, find
from crmsync.crm.base import Person
from crmsync.errors import CrmsyncError, MappingError
from crmsync.events import CanonicalEvent, InvalidEvent, call_context
from crmsync.mapping.model import PROVIDERS, Mapping
from crmsync.mapping.preview import check_text, diff, preview
from crmsync.mapping.routing import load_routes
from crmsync.quarantine import NORMALISERS
from crmsync.web.console.pages import Console, page

RECENT = 20  # recent calls offered for a preview
DRAFT_MAX = 200_000  # characters of a pasted draft or body
LINE = re.compile(r"^[^:]+:(\d+): ")


def add_routes(blueprint: Blueprint, console: Console) -> None:
    @blueprint.route("/mappings", methods=["GET", "POST"])
    def mappings() -> Response:
        settings = console.settings
        report, _ = console.mapping_check()
        recent = find(console.index, Query(per_page=RECENT), settings.default_region).entries
        form = {
            "call_id": request.form.get("call_id", ""),
            "body": request.form.get("body", "")[:DRAFT_MAX],
            "draft": request.form.get("draft", "")[:DRAFT_MAX],
            "remote": request.form.get("remote", ""),
            "provider": request.form.get("provider", "hamsa") if request.form.get("provider") in PROVIDERS else "hamsa",
        }
        result = try_it(console, form) if request.method == "POST" else None
        return page(
            "mappings.html",
            title="Mappings",
            report=report,
            recent=recent,
            form=form,
            result=result,
            active=str(settings.mapping_path) if settings.crm else None,
            providers=PROVIDERS,
            crm=settings.crm,
        )


def try_it(console: Console, form: dict[str, str]) -> dict[str, Any]:
    """The preview of the chosen call (or pasted body) under the active file, and under the
    draft when one was pasted: its problems with their lines, and its diff."""
    settings = console.settings
    result: dict[str, Any] = {"problems": []}
    events = _events(console, form, result["problems"])
    path = settings.mapping_path
    active: Mapping | None = None
    try:
        routes = load_routes(settings.mappings_dir, settings.crm) if settings.crm else None
    except MappingError as exc:
        routes = None
        result["active_problems"] = exc.problems
    if events and routes is not None:
        active, result["route"] = routes.choose(call_context(events)["call"])
        path = active.path if active is not None else path
    if events and active is not None:
        result["active"] = _preview(console, result, active, str(path), events, form["remote"])
    if form["draft"].strip():
        draft, problems = check_text(form["draft"], "draft.yaml")
        lines = {int(m.group(1)) for p in problems if (m := LINE.match(p))}
        result["draft"] = {
            "problems": problems,
            "lines": lines,
            "numbered": list(enumerate(form["draft"].splitlines(), 1)),
        }
        try:
            active_text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            active_text = ""
        result["draft"]["diff"] = diff(active_text, form["draft"], path.name)
        if draft is not None and events:
            result["draft"]["preview"] = _preview(console, result, draft, "draft.yaml", events, form["remote"])
    return result


def _preview(
    console: Console, result: dict[str, Any], mapping: Mapping, path: str, events: list[CanonicalEvent], remote: str
) -> dict[str, Any] | None:
    """``crmsync mappings preview`` of ``events`` under ``mapping``; with ``remote`` the caller
    is looked up in the CRM (reads only), as ``--remote`` does."""
    settings = console.settings

    def find(number: str, objects: Sequence[str], fields: Sequence[str]) -> list[Person]:
        from crmsync.crm.factory import build_connector

        connector = build_connector(settings, console.redis)
        try:
            return connector.find_people(number, objects, fields)
        finally:
            connector.close()

    try:
        return preview(mapping, path, events, settings.default_region, find if remote else None)
    except CrmsyncError as exc:
        result["problems"].append(f"{mapping.crm}: the lookup failed: {str(exc).splitlines()[0]}")
        return None


def _events(console: Console, form: dict[str, str], problems: list[str]) -> list[CanonicalEvent]:
    """The canonical events to preview: a pasted body (or a JSON list of one call's bodies),
    else the recorded events of the chosen call."""
    if form["body"].strip():
        try:
            loaded = json.loads(form["body"])
        except json.JSONDecodeError as exc:
            problems.append(f"The pasted body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
            return []
        bodies = loaded if isinstance(loaded, list) else [loaded]
        try:
            normalise = NORMALISERS[form["provider"]]  # the platform that posts such bodies
            return [normalise(body, console.settings.default_region) for body in bodies if isinstance(body, dict)]
        except InvalidEvent as invalid:
            problems += [f"The pasted body: {path}: {'; '.join(msgs)}" for path, msgs in invalid.details.items()]
            return []
    if form["call_id"]:
        events = store.load_events(console.redis, form["call_id"])
        if not events:
            problems.append("That call's events are no longer kept (they expire after DEDUPE_TTL); paste a body.")
        return events
    problems.append("Choose a recent call or paste a webhook body to preview.")
    return []
