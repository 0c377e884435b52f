"""Terminal output of ``crmsync mappings check`` and ``preview``: rich tables meant for people.

Every text from a file or a call goes in as ``rich.text.Text`` so that brackets such as
``fields[2]`` or ``[call.ended]`` are never read as markup.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from crmsync.mapping.preview import show_value

BODY_LINES = 12  # lines of the activity body shown; --json has all of it


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def problems(items: list[str]) -> None:
    out = console()
    for item in items:
        out.print(Text("✗ ", style="bold red") + Text(item))


def check_report(report: dict[str, Any]) -> None:
    out = console()
    for item in report.get("problems", []):
        out.print(Text("✗ ", style="bold red") + Text(item))
    for entry in report["files"]:
        if entry["ok"]:
            summary = f"  {entry['crm']} · events {', '.join(entry['events'])} · {entry['fields']} fields"
            out.print(Text("✓ ", style="bold green") + Text(entry["path"], style="bold") + Text(summary, style="dim"))
            continue
        count = len(entry["problems"])
        out.print(
            Text("✗ ", style="bold red")
            + Text(entry["path"], style="bold")
            + Text(f"  {count} problem{'s' if count != 1 else ''}", style="red")
        )
        for item in entry["problems"]:
            out.print(Text("    ") + Text(item))
    routes(out, report.get("routes") or {})
    remote = report.get("remote")
    if remote is not None:
        if remote["ok"]:
            out.print(
                Text("✓ ", style="bold green")
                + Text(f"{remote['path']} matches {remote['crm']}'s fields and picklists")
            )
        else:
            out.print(Text("✗ ", style="bold red") + Text(f"{remote['path']} against {remote['crm']}:", style="bold"))
            for item in remote["problems"]:
                out.print(Text("    ") + Text(item))
    out.print(
        Text(
            "All mappings are valid." if report["ok"] else "Fix the problems above, then check again.",
            style="green" if report["ok"] else "red",
        )
    )


def routes(out: Console, tables: dict[str, list[dict[str, Any]]]) -> None:
    """The routing table of each CRM: which file a call uses, most specific first."""
    for crm, rows in tables.items():
        table = Table(
            title=Text(f"Routing for {crm}: the first file that serves a call", style="bold"),
            title_justify="left",
            box=None,
            padding=(0, 2),
        )
        table.add_column("file")
        table.add_column("serves")
        for row in rows:
            table.add_row(Text(row["file"]), Text(row["serves"]))
        if not any(row["level"] == "default" for row in rows):
            table.add_row(
                Text("(none)", style="dim"), Text("every other call is skipped: no default file", style="dim")
            )
        out.print(table)


def preview_report(report: dict[str, Any], *, html: bool) -> None:
    out = console()
    head = Table.grid(padding=(0, 2))
    route = f"  ({report['route']})" if report.get("route") else ""
    head.add_row(Text("mapping", style="dim"), Text(f"{report['crm']} · {Path(report['mapping']).name}{route}"))
    head.add_row(Text("call", style="dim"), Text(str(report["call_id"])))
    head.add_row(Text("events", style="dim"), Text(", ".join(report["events"])))
    head.add_row(Text("number looked up", style="dim"), Text(str(report["number"] or "none found")))
    match = report["match"]
    who = match.get("person") or {}
    found = f"{who.get('type')} {who.get('id')} ({match.get('how')})" if who else match.get("note", "")
    head.add_row(Text("match", style="dim"), Text(found))
    if match.get("create"):
        head.add_row(Text("would create", style="dim"), Text(", ".join(f"{k}={v}" for k, v in match["create"].items())))
    out.print(Panel(head, title="preview", title_align="left"))
    if not report["syncs"]:
        out.print(
            Text(
                f"This mapping does not sync {', '.join(report['events'])} events (see events:): "
                "nothing would be written.",
                style="yellow",
            ),
            soft_wrap=False,
        )
        return
    plan = report.get("plan")
    if plan is None:
        out.print(Text("Nothing would be written.", style="yellow"))
        return
    _activity(out, plan, html)
    _fields(out, plan)


def _activity(out: Console, plan: dict[str, Any], html: bool) -> None:
    activity = plan["activity"]
    grid = Table.grid(padding=(0, 2))
    grid.add_row(Text("title", style="dim"), Text(activity["title"]))
    grid.add_row(Text("when", style="dim"), Text(_show(activity["timestamp"], "datetime", limit=None)))
    if activity.get("disposition"):
        grid.add_row(Text("disposition", style="dim"), Text(str(activity["disposition"])))
    if activity.get("owner_id"):
        grid.add_row(Text("owner", style="dim"), Text(str(activity["owner_id"])))
    for name, value in activity["properties"].items():
        grid.add_row(Text(name, style="dim"), Text(str(value)))
    body = activity["body"]
    lines = (re.sub(r"<[^>]+>", "", body.replace("</li>", "\n")) if html else body).splitlines()
    shown = "\n".join(lines[:BODY_LINES])
    more = f"\n… {len(lines) - BODY_LINES} more lines (--json shows all)" if len(lines) > BODY_LINES else ""
    grid.add_row(Text("body", style="dim"), Text(shown) + Text(more, style="dim"))
    grid.add_row(Text("", style="dim"), Text(f"{len(body):,} characters{' of HTML' if html else ''}", style="dim"))
    out.print(Panel(grid, title="activity", title_align="left"))
    for problem in plan["problems"]:
        out.print(Text("⚠ ", style="bold yellow") + Text(problem), soft_wrap=False)


# The fields table needs its name and source columns whole, plus this much for the rest
# (values, the mark, reasons, borders); narrower, each field is a block of lines.
TABLE_ROOM = 24 + 5 + 16 + 16  # characters
BLOCK_INDENT = 4  # characters


def _fields(out: Console, plan: dict[str, Any]) -> None:
    rows = [_field_row(entry) for entry in plan["fields"]]
    names = max((len(row[0]) for row in rows), default=0)
    sources = max((len(row[1]) for row in rows), default=0)
    if out.width >= names + sources + TABLE_ROOM:
        _fields_table(out, rows)
    else:
        _fields_blocks(out, rows)
    written = sum(1 for e in plan["fields"] if e["action"] == "write")
    bad = sum(1 for e in plan["fields"] if e["problem"])
    summary = f"{written} field{'s' if written != 1 else ''} would be written"
    out.print(Text(summary + (f", {bad} skipped with a problem" if bad else ""), style="red" if bad else "green"))


def _field_row(entry: dict[str, Any]) -> tuple[str, str, Text, Text, Text]:
    """Name (with its object), source, old → new, the mark and why not."""
    to = entry["to"] + (f" ({entry['object']})" if entry.get("object") else "")
    # the plan's value as a person reads it (a date, not HubSpot's epoch milliseconds)
    planned = entry["value"] if "value" in entry else entry["new"]
    old, new = _show(entry["old"], entry["type"]), _show(planned, entry["type"])
    style = "green" if entry["action"] == "write" else "dim"
    change = Text(old, style="dim") + Text(" → ") + Text(new, style=style)
    if entry["action"] == "write":
        mark, reason = Text("write", style="bold green"), Text("")
    elif entry["problem"]:
        mark, reason = Text("skip", style="bold red"), Text(entry["reason"], style="red")
    else:
        mark, reason = Text("skip", style="dim"), Text(entry["reason"], style="dim")
    return to, entry["source"], change, mark, reason


def _fields_table(out: Console, rows: list[tuple[str, str, Text, Text, Text]]) -> None:
    table = Table(title="fields", title_justify="left", show_lines=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("from", style="dim", no_wrap=True)
    table.add_column("old → new", overflow="fold")
    table.add_column("", justify="center", no_wrap=True)
    table.add_column("why not")
    for to, source, change, mark, reason in rows:
        table.add_row(Text(to), Text(source), change, mark, reason)
    out.print(table)


def _fields_blocks(out: Console, rows: list[tuple[str, str, Text, Text, Text]]) -> None:
    """One block per field: the name on a line of its own, then where its value comes
    from and old → new, wrapped under an indent."""
    indent = Text(" " * BLOCK_INDENT)
    out.print(Text("fields", style="italic"))
    for to, source, change, mark, reason in rows:
        out.print(Text(to, style="bold") + Text("  ") + mark + (Text("  ") + reason if reason else Text("")))
        for line in (Text("from ", style="dim") + Text(source), change):
            for part in line.wrap(out, max(out.width - BLOCK_INDENT, 20)):
                out.print(indent + part)


def _show(value: Any, type: str, limit: int | None = 120) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 80000, not 80000.0
    return show_value(value, type, limit)
