"""``crmsync calls``: the calls list of the console, in the terminal (the same ``callindex.find``)."""

from __future__ import annotations

import json

import click
from rich.table import Table

from crmsync.callindex import STATES
from crmsync.cli.helpers import console, settings_and_redis


@click.command()
@click.option("--state", type=click.Choice(STATES), help="Only calls in this state.")
@click.option("--agent", help="Only calls of this agent id.")
@click.option("--mapping", help="Only calls that used this mapping file (its name, e.g. hubspot.yaml).")
@click.option("--day", help="Only calls first seen on this UTC day (YYYY-MM-DD).")
@click.option("--search", "-q", "text", help="A call id, or a phone number typed any way.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def calls(
    state: str | None,
    agent: str | None,
    mapping: str | None,
    day: str | None,
    text: str | None,
    page: int,
    as_json: bool,
) -> None:
    """The calls crmsync has taken up, newest first, 50 a page (numbers masked)."""
    from crmsync.callindex import CallIndex, Query, day_range, find

    try:
        day_range(day)
    except ValueError:
        raise click.BadParameter("write a day as YYYY-MM-DD, e.g. 2026-12-01", param_hint="--day") from None
    settings, redis = settings_and_redis()
    query = Query(state=state, agent=agent, mapping=mapping, day=day, text=text, page=page)
    found = find(CallIndex(redis), query, settings.default_region)
    rows = [
        {
            "call_id": e.call_id,
            "at": e.when,
            "state": e.state,
            "number": e.masked or None,
            "agent": e.agent_id,
            "mapping": e.mapping,
            "person": e.person_id,
        }
        for e in found.entries
    ]
    if as_json:
        click.echo(json.dumps({"total": found.total, "page": page, "pages": found.pages, "calls": rows}, indent=2))
        return
    if not rows:
        console.print("No call matches." if found.total == 0 else f"Page {page} is past the last ({found.pages}).")
        return
    table = Table("first seen (UTC)", "call", "state", "number", "agent", "mapping", "person")
    for row in rows:
        table.add_row(*(str(row[k] or "—") for k in ("at", "call_id", "state", "number", "agent", "mapping", "person")))
    console.print(table)
    console.print(f"{found.total} call{'' if found.total == 1 else 's'}, page {page} of {found.pages}")
