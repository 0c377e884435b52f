"""The overview, the calls list and one call's page, with its Replay button."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, redirect, request, url_for

from crmsync import callindex, jobs, store
from crmsync.audit import Audit
from crmsync.callindex import STATES, Query
from crmsync.crm.profiles import PROFILES
from crmsync.events import call_context
from crmsync.record import call_status
from crmsync.web.console import facts
from crmsync.web.console.charts import legend, stacked_bars
from crmsync.web.console.pages import Console, page

PER_PAGE = 50  # calls per page of the list
NOTES = {  # what an action's redirect may say; nothing from the request is echoed
    "replayed": "Queued again: a worker syncs it in a moment. Reload to see the new state.",
    "not-replayed": "Not queued: this call's events are no longer kept (they expire after DEDUPE_TTL).",
}


def add_routes(blueprint: Blueprint, console: Console) -> None:
    @blueprint.get("/")
    def overview() -> Response:
        figures = facts.overview(console)
        charts = {
            "day": stacked_bars(figures["hours"], STATES, "Calls by state, last 24 hours (per hour, UTC)", 3),
            "week": stacked_bars(figures["days"], STATES, "Calls by state, last 7 days (per day, UTC)"),
        }
        return page("overview.html", title="Overview", figures=figures, charts=charts, legend=legend(STATES))

    @blueprint.get("/calls")
    def calls() -> Response:
        args = request.args
        problem = None
        query = Query(
            state=args.get("state") or None,
            agent=args.get("agent") or None,
            mapping=args.get("mapping") or None,
            day=args.get("day") or None,
            text=args.get("q") or None,
            page=_page_number(args.get("page")),
            per_page=PER_PAGE,
        )
        if query.state and query.state not in STATES:
            problem, query = f"There is no state {query.state!r}; choose one of the list.", Query(per_page=PER_PAGE)
        try:
            callindex.day_range(query.day)
        except ValueError:
            problem, query = "A day is written YYYY-MM-DD, e.g. 2026-12-01.", Query(per_page=PER_PAGE)
        found = callindex.find(console.index, query, console.settings.default_region)
        return page(
            "calls.html",
            title="Calls",
            found=found,
            query=query,
            states=STATES,
            problem=problem,
            choices=console.index.choices(),
        )

    @blueprint.get("/calls/<path:call_id>")
    def call(call_id: str) -> Response:
        view = call_view(console, call_id)
        if view is None:
            abort(404)
        return page("call.html", title=f"Call {call_id}", view=view, note=NOTES.get(request.args.get("note", "")))

    @blueprint.post("/calls/<path:call_id>/replay")
    def replay(call_id: str) -> Response:
        queued = jobs.replay_calls(console.redis, [call_id])
        note = "replayed" if queued.get(call_id) else "not-replayed"
        return redirect(url_for("console.call", call_id=call_id, note=note), 303)  # type: ignore[return-value]


def _page_number(raw: str | None) -> int:
    try:
        return max(int(raw or 1), 1)
    except ValueError:
        return 1


def call_view(console: Console, call_id: str) -> dict[str, Any] | None:
    """Everything one call's page shows: the ``crmsync status`` document, the call as its
    events tell it, and links into the CRM. None when no call has that id."""
    status = call_status(console.redis, call_id)
    if status is None:
        return None
    events = store.load_events(console.redis, call_id)
    context = call_context(events) if events else None
    entries = console.index.entries([call_id])
    person = status.get("person") or {}
    crm = status.get("crm") or console.settings.crm
    ui = PROFILES.get(crm or "")  # the CRM says where its UI shows a record
    links: dict[str, str | None] = {"person": None, "activity": None}
    if ui is not None and person.get("id"):
        links["person"] = ui.record_url(console.settings, str(person.get("type") or ""), str(person["id"]))
    if ui is not None and status.get("activity_id"):
        links["activity"] = ui.record_url(console.settings, ui.activity_object, str(status["activity_id"]))
    written = status["fields"]["written"]
    previous = status["fields"]["previous"]
    readable = status["fields"].get("values") or {}  # a date as a date, not the CRM's epoch ms
    changes = [
        {"field": name, "old": previous.get(name), "new": readable.get(name, value)} for name, value in written.items()
    ]
    return {
        "status": status,
        "context": context,
        "entry": entries[0] if entries else None,
        "links": links,
        "changes": changes,
        "events_kept": bool(events),
        "audit": [row for entry in Audit(console.redis).for_call(call_id) for row in entry.rows()],  # = history
    }
