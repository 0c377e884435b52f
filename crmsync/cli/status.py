"""``crmsync status`` (one call's sync record) and ``crmsync replay`` (queue calls again)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from crmsync.cli.helpers import console, settings_and_redis
from crmsync.record import SyncState, call_status


@click.command()
@click.argument("call_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(call_id: str, as_json: bool) -> None:
    """One call's sync record."""
    _, redis = settings_and_redis()
    data = call_status(redis, call_id)
    if data is None:
        raise click.ClickException(f"no call {call_id} is known (records are kept for 30 days)")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    print_status(data)


def print_status(data: dict[str, Any]) -> None:
    colour = {
        SyncState.SYNCED: "green",
        SyncState.PARTIAL: "yellow",
        SyncState.FAILED: "red",
        SyncState.SKIPPED: "magenta",
    }.get(data["state"], "cyan")
    console.print(
        f"[bold]{data['call_id']}[/]  [{colour}]{data['state']}[/]  ({data['attempts']} attempts, "
        f"updated {data['updated_at']})"
    )
    lacking = f" (Hamsa's answer had no {', '.join(data['unavailable'])})" if data["unavailable"] else ""
    console.print(f"  source   {data['source']}{lacking}")
    if data.get("mapping") or data.get("route"):
        console.print(f"  mapping  {data.get('mapping') or 'none'}  ({data.get('route') or 'not routed yet'})")
    person = data["person"] or {}
    if person:
        console.print(
            f"  person   {data['crm']} {person.get('type')} {person.get('id')}"
            + ("  (created by crmsync)" if person.get("created") else "")
        )
    if data["activity_id"]:
        console.print(f"  activity {data['activity_id']}")
    if data["reason"]:
        console.print(f"  reason   {data['reason']}")
    table = Table("field", "value / reason", box=None, padding=(0, 2))
    for name, value in data["fields"]["written"].items():
        table.add_row(f"[green]{name}[/]", str(value))
    for name, reason in data["fields"]["skipped"].items():
        table.add_row(f"[yellow]{name}[/]", f"skipped: {reason}")
    if table.row_count:
        console.print(table)
    for err in data["errors"]:
        console.print(f"  [red]error[/] {err.get('code') or ''} {err.get('message')} {err.get('fields') or ''}")
    for receipt in data["events"]:
        console.print(f"  [dim]{receipt['at']}  {receipt['event']}  {receipt['answer']}[/]")


@click.command()
@click.argument("call_ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Every call in state failed.")
def replay(call_ids: tuple[str, ...], failed: bool) -> None:
    """Queue failed calls again."""
    from crmsync.jobs import failed_calls, replay_calls

    _, redis = settings_and_redis()
    ids = list(call_ids)
    if failed:
        ids += failed_calls(redis)
    if not ids:
        raise click.ClickException("name one or more call ids, or --failed")
    for call_id, queued in replay_calls(redis, ids).items():
        if queued:
            click.echo(f"{call_id}: queued")
        else:
            click.echo(f"{call_id}: no events recorded (expired?), not queued", err=True)
