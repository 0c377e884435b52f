"""The ``crmsync`` command (SPEC §7)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from redis import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from crmsync import logs, store
from crmsync.errors import CrmsyncError, SettingsError
from crmsync.settings import Settings

console = Console()


def settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def redis_or_exit(settings: Settings) -> Redis:
    client = store.redis_client(settings)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(client.close)
    try:
        client.ping()
    except RedisError as exc:
        raise click.ClickException(f"Redis at REDIS_URL is unreachable ({type(exc).__name__})") from None
    return client


@click.group()
@click.version_option(package_name="crmsync")
def main() -> None:
    """crmsync: Hamsa voice-AI calls, logged in Salesforce or HubSpot."""


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on crmsync's queue (the Procfile's worker)."""
    from crmsync.worker import run

    settings = settings_or_exit()
    logs.configure(settings.log_level)
    try:
        run(settings, burst=burst)
    except CrmsyncError as exc:
        raise click.ClickException(f"crmsync worker: {str(exc).splitlines()[0]}") from None


@main.command()
@click.argument("call_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(call_id: str, as_json: bool) -> None:
    """One call's sync record."""
    settings = settings_or_exit()
    redis = redis_or_exit(settings)
    record = store.load_status(redis, call_id)
    receipts = store.load_receipts(redis, call_id)
    if record is None and not receipts:
        raise click.ClickException(f"no call {call_id} is known (records are kept for 30 days)")
    data = status_document(call_id, record or {}, receipts)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    print_status(data)


def status_document(call_id: str, record: dict[str, Any], receipts: list[dict[str, Any]]) -> dict[str, Any]:
    fields = record.get("fields") or {}
    return {
        "call_id": call_id,
        "state": record.get("state", "received"),
        "crm": record.get("crm"),
        "person": record.get("person"),
        "activity_id": record.get("activity_id"),
        "fields": {"written": fields.get("written", {}), "skipped": fields.get("skipped", {}),
                   "previous": fields.get("previous", {})},
        "errors": record.get("errors") or [],
        "reason": record.get("reason"),
        "attempts": int(record.get("attempts") or 0),
        "next_attempt_at": record.get("next_attempt_at"),
        "updated_at": record.get("updated_at"),
        "events": receipts,
    }


def print_status(data: dict[str, Any]) -> None:
    colour = {"synced": "green", "partial": "yellow", "failed": "red", "skipped": "magenta"}.get(data["state"], "cyan")
    console.print(f"[bold]{data['call_id']}[/]  [{colour}]{data['state']}[/]  ({data['attempts']} attempts, "
                  f"updated {data['updated_at']})")
    person = data["person"] or {}
    if person:
        console.print(f"  person   {data['crm']} {person.get('type')} {person.get('id')}"
                      + ("  (created by crmsync)" if person.get("created") else ""))
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


@main.command()
@click.argument("call_ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Every call in state failed.")
def replay(call_ids: tuple[str, ...], failed: bool) -> None:
    """Queue failed calls again."""
    from crmsync.jobs import replay as replay_call

    settings = settings_or_exit()
    redis = redis_or_exit(settings)
    ids = list(call_ids)
    if failed:
        ids += [i.decode() for i in redis.zrange(store.FAILED_KEY, 0, -1)]  # type: ignore[union-attr]
    if not ids:
        raise click.ClickException("name one or more call ids, or --failed")
    for call_id in ids:
        if not redis.exists(store.events_key(call_id)):
            click.echo(f"{call_id}: no events recorded (expired?), not queued", err=True)
            continue
        replay_call(redis, call_id)
        click.echo(f"{call_id}: queued")


from crmsync.cli_admin import quarantine, stats  # noqa: E402  (commands split out by size)

main.add_command(quarantine)
main.add_command(stats)

try:  # the mapping commands
    from crmsync.mapping.cli import mappings

    main.add_command(mappings)
except ImportError:  # pragma: no cover - only while the mapping package is absent
    pass


@main.command()
@click.option("--crm", type=click.Choice(["hubspot", "salesforce"]), default=None)
@click.option("--keep-running", is_flag=True, help="Keep the demo up for a real Hamsa agent.")
def demo(crm: str | None, keep_running: bool) -> None:
    """The whole pipeline on this machine with sample calls; no accounts needed."""
    from crmsync.demo import run_demo

    sys.exit(run_demo(crm=crm, keep_running=keep_running))
