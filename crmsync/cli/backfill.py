"""``crmsync backfill``: queue the calls of a past period that crmsync never received."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from redis import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crmsync.cli.helpers import console, settings_and_redis
from crmsync.errors import CredentialsError, MappingError, SettingsError, SyncError
from crmsync.metrics import Metrics
from crmsync.settings import Settings

if TYPE_CHECKING:  # the command imports RQ's side only when it runs (crmsync --help stays light)
    from crmsync.hamsa.reconcile import Rules, Summary


@click.command()
@click.option("--since", required=True, help="Start of the period, ISO 8601 (e.g. 2026-11-01T00:00:00Z).")
@click.option("--until", help="End of the period, ISO 8601; default: now.")
@click.option("--agent", "agents", multiple=True, help="Only this voice agent's calls (repeatable).")
@click.option("--dry-run", is_flag=True, help="List and compare only: write nothing, queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print only the summary, as JSON.")
def backfill(since: str, until: str | None, agents: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Queue the calls of Hamsa's history over a past period that crmsync never received."""
    settings, redis = settings_and_redis()
    start, end, rules = _plan(settings, since, until, dry_run)
    chosen = agents or settings.reconcile.agent_ids
    summary, requests = _run(settings, redis, rules, (start, end), chosen, show_progress=not as_json)
    if not dry_run:
        summary.count(Metrics(redis), "backfill")
    document = {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "agents": list(chosen),
        "dry_run": dry_run,
        **summary.to_dict(),
        "hamsa_requests": requests,
    }
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    print_summary(document)


def _plan(settings: Settings, since: str, until: str | None, dry_run: bool) -> tuple[datetime, datetime, Rules]:
    """The period and what the mapping says to take, or one clear line and exit 1."""
    from crmsync.hamsa.backfill import BadPeriod, period
    from crmsync.hamsa.schedule import rules_for
    from crmsync.mapping.routing import load_routes

    if not settings.hamsa_api_key:
        raise click.ClickException("HAMSA_API_KEY is not set: backfill reads Hamsa's call history with it")
    try:
        start, end = period(since, until)
        routes = load_routes(settings.mappings_dir, settings.require_crm())
    except (BadPeriod, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    except MappingError as exc:
        raise click.ClickException(f"the mapping does not load: {exc.problems[0]}") from None
    rules = rules_for(settings, routes.statuses, "call.ended" in routes.events, "backfill", dry_run=dry_run)
    return start, end, rules


def _run(
    settings: Settings,
    redis: Redis,
    rules: Rules,
    window: tuple[datetime, datetime],
    agents: tuple[str, ...],
    *,
    show_progress: bool,
) -> tuple[Summary, int]:
    """The backfill with a progress bar on stderr; (its summary, Hamsa requests sent)."""
    from crmsync.hamsa.backfill import backfill as run_backfill
    from crmsync.hamsa.client import HamsaClient

    columns = (TextColumn("Backfilling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bar = Progress(*columns, console=Console(stderr=True), disable=not show_progress)
    counted = None if rules.dry_run else Metrics(redis)  # a dry run writes nothing, not even a count
    assert settings.hamsa_api_key  # checked by _plan
    with HamsaClient(settings.hamsa_api_key, settings.hamsa_base_url, metrics=counted) as client, bar:
        task = bar.add_task("calls", total=None)
        try:
            summary = run_backfill(
                redis,
                client,
                rules,
                *window,
                agents=agents,
                dedupe_ttl=settings.dedupe_ttl,
                raw_body_ttl=settings.raw_body_ttl,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except CredentialsError as exc:
            raise click.ClickException(str(exc).removeprefix("hamsa: ")) from None
        except SyncError as exc:
            raise click.ClickException(
                f"{exc.message}: what was queued stays queued; run the same backfill "
                "again to go on (it is harmless to repeat)"
            ) from None
        return summary, client.requests_made


def print_summary(document: dict[str, Any]) -> None:
    table = Table(
        "",
        "calls",
        box=None,
        padding=(0, 2),
        title="backfill " + ("(dry run) " if document["dry_run"] else "") + f"{document['since']} → "
        f"{document['until']}",
        title_justify="left",
    )
    table.add_row("listed in Hamsa's history", str(document["listed"]))
    table.add_row("already in crmsync", str(document["already_in_crmsync"]))
    table.add_row("would be queued" if document["dry_run"] else "[green]queued[/]", str(document["queued"]))
    for reason, count in sorted(document["skipped"].items()):
        table.add_row(f"[yellow]skipped[/]: {reason}", str(count))
    console.print(table)
    console.print(
        f"[dim]{document['hamsa_requests']} Hamsa API requests ({document['pages']} list pages, "
        f"{document['fetched']} conversations)[/]"
    )
