"""The ``crmsync`` command (SPEC §7), laid out like RQ's ``rq/cli/``: this group, the
shared helpers (``helpers.py``) and one module per command family:

    mappings.py     crmsync mappings check | preview (output drawn by render.py)
    status.py       crmsync status, crmsync replay
    calls.py        crmsync calls (the console's calls list)
    backfill.py     crmsync backfill (Hamsa's call history over a past period)
    quarantine.py   crmsync quarantine list | show | replay | drop
    stats.py        crmsync stats
    trust.py        crmsync history | rollback | forget (the field-write audit, privacy)
    worker.py       crmsync worker (the Procfile's worker)
    demo.py         crmsync demo

Command modules import only ``helpers`` from here, never this package, so that nothing
imports in a circle. Each command imports what it runs inside its body: ``crmsync
--help`` and ``crmsync mappings check`` (the release phase) stay quick.
"""

from __future__ import annotations

import click

from crmsync.cli.backfill import backfill
from crmsync.cli.calls import calls
from crmsync.cli.demo import demo
from crmsync.cli.mappings import mappings
from crmsync.cli.quarantine import quarantine
from crmsync.cli.stats import stats
from crmsync.cli.status import replay, status
from crmsync.cli.trust import forget, history, rollback
from crmsync.cli.worker import worker


@click.group()
@click.version_option(package_name="crmsync")
def main() -> None:
    """crmsync: Hamsa voice-AI calls, logged in Salesforce or HubSpot."""


for command in (worker, status, replay, calls, backfill, quarantine, stats, mappings, demo, history, rollback, forget):
    main.add_command(command)

__all__ = ["main"]
