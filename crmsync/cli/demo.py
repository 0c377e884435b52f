"""``crmsync demo``: the whole pipeline on this machine (``crmsync/demo/``)."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--crm", type=click.Choice(["hubspot", "salesforce"]), default=None)
@click.option("--keep-running", is_flag=True, help="Keep the demo up for a real Hamsa agent.")
def demo(crm: str | None, keep_running: bool) -> None:
    """The whole pipeline on this machine with sample calls; no accounts needed."""
    from crmsync.demo import run_demo

    sys.exit(run_demo(crm=crm, keep_running=keep_running))
