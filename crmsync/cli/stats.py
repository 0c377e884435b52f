"""``crmsync stats``: the ``/metrics`` figures in the terminal."""

from __future__ import annotations

import json

import click
from rich.table import Table

from crmsync import metrics
from crmsync.cli.helpers import console, settings_and_redis


@click.command()
@click.option("--json", "as_json", is_flag=True)
def stats(as_json: bool) -> None:
    """The /metrics figures, in the terminal."""
    _, redis = settings_and_redis()
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
