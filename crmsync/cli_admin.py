"""``crmsync quarantine`` and ``crmsync stats``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from crmsync import events, metrics, store

console = Console()


@click.group(invoke_without_command=True)
@click.pass_context
def quarantine(ctx: click.Context) -> None:
    """Webhook bodies refused with 422: list, show, replay, drop."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(quarantine_list)


def _redis() -> tuple[Any, Any]:
    from crmsync.cli import redis_or_exit, settings_or_exit

    settings = settings_or_exit()
    return settings, redis_or_exit(settings)


def _load(redis: Any, qid: str) -> dict[str, str | bytes]:
    raw = redis.hgetall(store.quarantine_key(qid))
    if not raw:
        raise click.ClickException(f"no quarantined body {qid} (kept for 30 days)")
    return {k.decode(): (v if k == b"body" else v.decode()) for k, v in raw.items()}


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True)
def quarantine_list(as_json: bool) -> None:
    _, redis = _redis()
    ids = [i.decode() for i in redis.zrevrange(store.QUARANTINE_INDEX, 0, 199)]
    rows = []
    for qid in ids:
        raw = redis.hmget(store.quarantine_key(qid), "received_at", "source", "details")
        if raw[0] is None:
            redis.zrem(store.QUARANTINE_INDEX, qid)
            continue
        rows.append({"id": qid, "received_at": raw[0].decode(), "source": raw[1].decode(),
                     "details": json.loads(raw[2])})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("The quarantine is empty.")
        return
    table = Table("id", "received", "source", "problems")
    for row in rows:
        problems = "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in row["details"].items())
        table.add_row(row["id"], row["received_at"], row["source"], problems)
    console.print(table)


@quarantine.command("show")
@click.argument("qid")
def quarantine_show(qid: str) -> None:
    _, redis = _redis()
    record = _load(redis, qid)
    console.print(f"[bold]{qid}[/] received {record['received_at']!s} from {record['source']!s}")
    for path, msgs in json.loads(str(record["details"])).items():
        console.print(f"  [red]{path}[/]: {' '.join(msgs)}")
    body = record["body"]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        text = json.dumps(json.loads(text), indent=2)
    except ValueError:
        pass
    click.echo(text)


@quarantine.command("replay")
@click.argument("qid")
def quarantine_replay(qid: str) -> None:
    """Submit a quarantined body again, once the receiver or mapping understands it."""
    from crmsync.queue import Ingest
    from crmsync.web.subscriptions import Subscriptions

    settings, redis = _redis()
    record = _load(redis, qid)
    try:
        body = json.loads(record["body"])
        event = events.normalise(body, settings.default_region)
    except (ValueError, events.InvalidEvent) as exc:
        details = getattr(exc, "details", {"body": ["is not valid JSON"]})
        problems = "; ".join(f"{p}: {' '.join(m)}" for p, m in details.items())
        raise click.ClickException(f"{qid} is still not a recognisable event: {problems}") from None
    accepted = Ingest(redis, settings.dedupe_ttl).store(
        event, events.dedupe_key(event), enqueue=Subscriptions(settings).wants(event["event"])
    )
    redis.delete(store.quarantine_key(qid))
    redis.zrem(store.QUARANTINE_INDEX, qid)
    click.echo(f"{qid}: {'accepted' if accepted else 'duplicate'} as {event['event']} of call {event['call_id']}")


@quarantine.command("drop")
@click.argument("qid")
def quarantine_drop(qid: str) -> None:
    _, redis = _redis()
    _load(redis, qid)
    redis.delete(store.quarantine_key(qid))
    redis.zrem(store.QUARANTINE_INDEX, qid)
    click.echo(f"{qid}: dropped")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def stats(as_json: bool) -> None:
    """The /metrics figures, in the terminal."""
    _, redis = _redis()
    figures = metrics.snapshot(redis)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    for name, values in figures.items():
        table = Table(title=name.replace("_", " "), title_justify="left", box=None, show_header=False)
        for field, value in sorted(values.items()):
            table.add_row(field or "-", f"{value:g}")
        if not values:
            table.add_row("-", "0")
        console.print(table)
