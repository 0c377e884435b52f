"""``crmsync worker``: the Procfile's worker."""

from __future__ import annotations

import click

from crmsync import logs
from crmsync.cli.helpers import settings_or_exit
from crmsync.errors import CrmsyncError


@click.command()
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
