"""``crmsync backfill``: the reconciliation path on demand, over a past period (SPEC §7).

The same ``Reconciler`` as the sweep, with ``source: backfill``: it lists the period,
takes only the calls crmsync never received, and queues them for the workers. It moves
no watermark and takes no lock, so it can run beside the sweeps; the conversation claim
keeps a call from being queued twice whichever runs first, which makes a second backfill
over the same period queue nothing new. That claim, like the activity ledger, is kept
``store.CONVERSATION_TTL`` (90 days): a ``--since`` further back is refused, since crmsync
could no longer tell a call it received from one it never saw and might log it twice.
``dry_run`` lists and joins only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from redis import Redis

from crmsync import store, times
from crmsync.hamsa.client import HamsaClient
from crmsync.hamsa.reconcile import Reconciler, Rules, Summary
from crmsync.ingest import Ingest


class BadPeriod(ValueError):
    """``--since`` / ``--until`` that do not make a period; the message says which and why."""


def parse_when(text: str, option: str) -> datetime:
    """An ISO 8601 time (``2026-11-01T00:00:00Z``, or a date); without a zone it is UTC."""
    moment = times.parse(text)
    if moment is None:
        raise BadPeriod(f"{option} {text!r} is not an ISO 8601 time, e.g. 2026-11-01T00:00:00Z")
    return moment


def period(since: str, until: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The period ``[since, until]`` (``until`` defaults to now); refuses one that is empty,
    in the future, or starts before what crmsync remembers receiving (``CONVERSATION_TTL``)."""
    now = now or datetime.now(UTC)
    start = parse_when(since, "--since")
    end = parse_when(until, "--until") if until else now
    if start >= end:
        raise BadPeriod(f"--since {since} is not before --until {until or 'now'}")
    if start > now:
        raise BadPeriod(f"--since {since} is in the future")
    horizon = now - timedelta(seconds=store.CONVERSATION_TTL)
    if start < horizon:
        days = store.CONVERSATION_TTL // 86400
        raise BadPeriod(
            f"--since {since} is more than {days} days ago: crmsync remembers which calls it received for "
            f"{days} days, so an older call might be logged twice; use --since {times.iso(horizon)[:10]} or later"
        )
    return start, min(end, now)


def backfill(
    redis: Redis,
    client: HamsaClient,
    rules: Rules,
    start: datetime,
    end: datetime,
    *,
    agents: Sequence[str] = (),
    dedupe_ttl: int,
    raw_body_ttl: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Reconcile every call created in ``[start, end]`` (per agent when ``agents``)."""
    run = Reconciler(redis, client, Ingest(redis, dedupe_ttl, raw_body_ttl), rules, progress=progress)
    summary = Summary()
    for agent in agents or (None,):
        run.run(int(start.timestamp() * 1000), int(end.timestamp() * 1000), agent_id=agent, summary=summary)
    return summary
