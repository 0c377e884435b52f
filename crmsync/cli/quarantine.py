"""``crmsync quarantine``: the bodies refused with 422 (``crmsync/quarantine.py`` keeps them)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from crmsync import quarantine as quarantined
from crmsync.cli.helpers import console, settings_and_redis


@click.group(invoke_without_command=True)
@click.pass_context
def quarantine(ctx: click.Context) -> None:
    """Webhook bodies refused with 422: list, show, replay, drop."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(quarantine_list)


def _get(redis: Any, qid: str) -> quarantined.Quarantined:
    kept = quarantined.get(redis, qid)
    if kept is None:
        raise click.ClickException(f"no quarantined body {qid} (kept for 30 days)")
    return kept


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True)
def quarantine_list(as_json: bool) -> None:
    _, redis = settings_and_redis()
    rows = quarantined.newest(redis)
    if as_json:
        click.echo(json.dumps([row.summary() for row in rows], indent=2))
        return
    if not rows:
        console.print("The quarantine is empty.")
        return
    table = Table("id", "received", "platform", "source", "problems")
    for row in rows:
        table.add_row(row.id, row.received_at, row.provider, row.source, row.problems())
    console.print(table)


@quarantine.command("show")
@click.argument("qid")
def quarantine_show(qid: str) -> None:
    _, redis = settings_and_redis()
    kept = _get(redis, qid)
    console.print(f"[bold]{qid}[/] received {kept.received_at} from {kept.source} at /webhooks/{kept.provider}")
    for path, msgs in kept.details.items():
        console.print(f"  [red]{path}[/]: {' '.join(msgs)}")
    text = (kept.body or b"").decode("utf-8", "replace")
    try:
        text = json.dumps(json.loads(text), indent=2)
    except ValueError:
        pass
    click.echo(text)


@quarantine.command("replay")
@click.argument("qid")
def quarantine_replay(qid: str) -> None:
    """Submit a quarantined body again, once the receiver or mapping understands it."""
    from crmsync.ingest import Ingest
    from crmsync.web.subscriptions import Subscriptions

    settings, redis = settings_and_redis()
    try:
        done = quarantined.replay(
            redis,
            qid,
            Ingest(redis, settings.dedupe_ttl, settings.raw_body_ttl),
            Subscriptions(settings).wants,
            settings.default_region,
        )
    except quarantined.StillInvalid as exc:
        raise click.ClickException(str(exc)) from None
    except LookupError:
        raise click.ClickException(f"no quarantined body {qid} (kept for 30 days)") from None
    click.echo(f"{qid}: {'accepted' if done.accepted else 'duplicate'} as {done.event} of call {done.call_id}")


@quarantine.command("drop")
@click.argument("qid")
def quarantine_drop(qid: str) -> None:
    _, redis = settings_and_redis()
    if not quarantined.drop(redis, qid):
        raise click.ClickException(f"no quarantined body {qid} (kept for 30 days)")
    click.echo(f"{qid}: dropped")
