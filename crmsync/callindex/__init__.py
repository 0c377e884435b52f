"""The call index: which calls there are, newest first, by state, agent, mapping and number.

The admin console lists, filters and searches calls from these keys alone; nothing scans
the keyspace. The worker writes the index where it writes the sync record (one Lua script,
one round trip); the webhook path never touches it.

    crmsync:index:calls                  zset call id -> the call's time (epoch seconds)
    crmsync:index:state:<state>          zset, the same scores, one per sync state
    crmsync:index:agent:<agent id>       zset
    crmsync:index:mapping:<file name>    zset
    crmsync:index:source:<source>        zset (webhook, reconcile, backfill)
    crmsync:index:phone:<digest>         zset: the calls with that national number
    crmsync:index:entry:<call id>        hash: the call's line in the list (state, agent, number …)
    crmsync:index:agents, …:mappings     zset name -> last seen, for the filters' choices

A call's time (its score) is when the worker first saw it: a call from a backfill of last
year is listed with today's calls, and kept as long as its sync record.
Everything is bounded by ``STATUS_TTL``, like the sync records: each write drops members
older than that from the sets it touches and renews their expiry, and each entry expires
``STATUS_TTL`` after its last update. A member whose entry has expired is skipped by the
readers and removed then.
"""

from crmsync.callindex.index import (
    AGENTS_KEY,
    ALL_KEY,
    MAPPINGS_KEY,
    PREFIX,
    STATES,
    CallIndex,
    Entry,
    agent_key,
    entry_key,
    mapping_key,
    phone_key,
    source_key,
    state_key,
    summary,
)
from crmsync.callindex.search import Page, Query, day_range, find

__all__ = [
    "AGENTS_KEY",
    "ALL_KEY",
    "MAPPINGS_KEY",
    "PREFIX",
    "STATES",
    "CallIndex",
    "Entry",
    "Page",
    "Query",
    "agent_key",
    "day_range",
    "entry_key",
    "find",
    "mapping_key",
    "phone_key",
    "source_key",
    "state_key",
    "summary",
]
