"""Redis memory per call, the audit's memory per call, and rollback throughput (issue 14).

1. **Memory per accepted call before it syncs.** ``N`` documented ``call.ended`` webhooks
   (distinct call ids and numbers) are posted to the real web app (Flask's test client: the
   same view, Lua script and keys as under gunicorn); then ``MEMORY USAGE`` of every key is
   summed per key family and divided by ``N``. The raw body's size is printed beside it.
2. **The audit's memory per call.** The calls are synced by a real RQ worker (in-process
   ``SimpleWorker``) against a sandbox HubSpot whose contacts already hold some of the
   mapped values, so that each call writes 5 fields; ``MEMORY USAGE`` of every
   ``crmsync:audit:*`` key, divided by ``N``.
3. **Rollback throughput under HubSpot Starter limits.** The sandbox then enforces Starter's
   limits (100 requests per rolling 10 s, 4 searches/s, 429 beyond) and crmsync its defaults
   (``HUBSPOT_RATE_LIMIT=100/10s``); ``crmsync rollback --activities`` of every call (one
   read, one write and one delete per call) is timed. Bound: 3 requests per call at 100 per
   10 s = 200 calls per minute.

Run alone: ``.venv/bin/python -m bench.trust [--calls 200]`` (about two minutes).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

from redis import Redis

from bench.common import call_body, local_redis, machine, number, table, write_results

TOKEN = "bench-trust-token"


def family(key: str) -> str:
    """``crmsync:call:<id>:events`` -> ``crmsync:call:*:events``; ``rq:job:<id>`` -> ``rq:job:*``."""
    parts = key.split(":")
    if parts[0] == "rq":
        return ":".join(parts[:2]) + (":*" if len(parts) > 2 else "")
    if len(parts) >= 4 and parts[1] == "call":
        return f"crmsync:call:*:{parts[3]}"
    if parts[1] in ("seen", "status", "conversation", "activity", "person", "created"):
        return f"crmsync:{parts[1]}:*"
    if parts[1] == "audit":
        return "crmsync:audit:" + parts[2] + (":*" if len(parts) > 3 else "")
    return ":".join(parts[:3])


def memory(redis: Redis, prefix: str = "") -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    for key in redis.scan_iter(match=prefix + "*", count=1000):
        sizes[family(key.decode())] += int(redis.memory_usage(key, samples=0) or 0)
    return dict(sizes)


def env_for(url: str, hubspot: Any, mappings: str) -> dict[str, str]:
    return {
        "REDIS_URL": url,
        "CRM": "hubspot",
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "HUBSPOT_BASE_URL": hubspot.url,
        "MAPPINGS_DIR": mappings,
        "DEFAULT_REGION": "SA",
        "WEBHOOK_TOKENS": TOKEN,
    }


def run(calls: int) -> list[str]:
    from click.testing import CliRunner
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from bench.common import ROOT
    from crmsync.cli import main
    from crmsync.queue import queue_for
    from crmsync.runtime import Runtime
    from crmsync.sandbox.hubspot import HubSpotSandbox
    from crmsync.settings import Settings
    from crmsync.web import create_app

    body_size = len(call_body("bench-00000", number("known", 0)))  # the body as posted
    lines: list[str] = []
    with local_redis() as (url, redis, _), HubSpotSandbox(rate_limit=None, search_rate_limit=None) as hubspot:
        env = env_for(url, hubspot, str(ROOT / "mappings"))
        # the sync itself is not what is measured here: no client-side limits while it runs
        settings = Settings.from_env(
            {**env, "HUBSPOT_RATE_LIMIT": "100000/10s", "HUBSPOT_SEARCH_RATE_LIMIT": "10000/s"}
        )
        client = create_app(settings, redis).test_client()
        for i in range(calls):
            e164 = number("known", i)
            hubspot.seed_contact(
                {
                    "phone": e164,
                    "lastname": "Bench",
                    "hs_lead_status": "NEW",
                    "customer_id": "x",
                    "last_ai_call_at": "1772442892318",
                }
            )
            answer = client.post(
                "/webhooks/hamsa",
                data=call_body(f"bench-{i:05d}", e164),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            assert answer.status_code == 200, answer.text
        before = memory(redis)
        total = sum(before.values())
        lines += [
            f"## Redis memory per accepted call before it syncs ({calls} calls)",
            "",
            f"Raw body: {body_size} bytes. Everything kept per call: **{total / calls:,.0f} bytes** "
            f"({total / calls / body_size:.2f}× the raw body).",
            "",
        ]
        lines += table(
            ["key family", "bytes per call"],
            [(f"`{k}`", f"{v / calls:,.0f}") for k, v in sorted(before.items(), key=lambda kv: -kv[1])],
        )
        runtime = Runtime.build(settings, redis)
        Runtime.install(runtime)
        try:
            SimpleWorker([queue_for(redis)], connection=redis, serializer=JSONSerializer).work(burst=True)
        finally:
            Runtime.install(None)
            runtime.close()
        audit = memory(redis, "crmsync:audit:")
        rows = json.loads(CliRunner().invoke(main, ["history", "--call", "bench-00000", "--json"], env=env).output)
        fields = sorted(r["field"] for r in rows if r["kind"] == "write")
        lines += [
            "",
            f"## The audit's memory per call ({len(fields)} fields written: {', '.join(fields)})",
            "",
            f"**{sum(audit.values()) / calls:,.0f} bytes per call** (`MEMORY USAGE` of every "
            f"`crmsync:audit:*` key / {calls}).",
            "",
        ]
        lines += table(["key family", "bytes per call"], [(f"`{k}`", f"{v / calls:,.0f}") for k, v in audit.items()])
        lines += ["", *rollback_rate(hubspot, env, calls)]
    return lines


def rollback_rate(hubspot: Any, env: dict[str, str], calls: int) -> list[str]:
    from click.testing import CliRunner

    from crmsync.cli import main
    from crmsync.sandbox.hubspot import RollingWindow

    hubspot.general = RollingWindow(100, 10.0)  # HubSpot Starter, enforced by the sandbox
    hubspot.search_limit = RollingWindow(4, 1.0)
    before, started = hubspot.count(), time.monotonic()
    result = CliRunner().invoke(
        main,
        ["rollback", "--since", "2000-01-01T00:00:00Z", "--activities", "--json"],
        env={**env, "HUBSPOT_RATE_LIMIT": "100/10s"},
    )
    seconds = time.monotonic() - started
    if result.exit_code != 0:
        raise SystemExit(f"rollback failed: {result.output}{result.exception!r}")
    report = json.loads(result.stdout)
    requests = hubspot.count() - before
    refused = hubspot.statuses().count(429)
    rate = len(report["calls"]) / seconds * 60
    bound = 100 / 10 * 60 / (requests / max(len(report["calls"]), 1))
    return [
        f"## Rollback under HubSpot Starter limits ({calls} calls, `--activities`)",
        "",
        *table(
            [
                "calls",
                "fields restored",
                "activities deleted",
                "requests",
                "429s",
                "seconds",
                "calls per minute",
                "limit bound",
            ],
            [
                (
                    len(report["calls"]),
                    report["restored"],
                    report["deleted"],
                    requests,
                    refused,
                    f"{seconds:.1f}",
                    f"{rate:.0f}",
                    f"{bound:.0f}",
                )
            ],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    host = machine()
    body = run(args.calls)
    path = write_results(
        "trust", "Memory per call, audit memory, rollback throughput", "python -m bench.trust", host, body
    )
    print("\n".join(body))
    print(f"\n(written to {path})")


if __name__ == "__main__":
    main()
