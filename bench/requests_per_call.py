"""CRM API requests per synced call, for each CRM (issues #3 and #12).

Every request crmsync sends costs the customer's CRM API allowance (HubSpot Starter: 100
requests / 10 s and 4 searches / s; Salesforce: a daily org budget), so the number of
requests one call costs is what bounds throughput under those limits. Targets: Salesforce
≤ 2 requests per call (SOSL + one composite), HubSpot ≤ 3 (search + call create + contact
update).

How: for each CRM and for two kinds of caller, a fresh sandbox CRM and a throwaway Redis;
N ``call.ended`` webhooks (the documented fixture, each with its own call id and number)
go through crmsync's real webhook app (``create_app()`` driven by Flask's test client: the
same validation, dedupe and Lua enqueue as the web process, without gunicorn), then the
Procfile's real worker process (``crmsync worker --burst``) syncs them. The sandbox records
every request it received; one-off requests a worker makes once in its life (Salesforce
``describe`` of Contact and Lead, logins, ``limits``; HubSpot's properties API) are counted
apart and excluded from the per-call figure.

* known callers: each number belongs to a person already in the CRM (stored in national
  format, as typed by a human);
* unknown callers: nobody has the number, and the shipped mappings say ``on_missing:
  create``, so the caller is created first;
* known callers with links (issue #12): each person has a company (HubSpot primary
  company, Salesforce Account) with an open deal (and a closed one), and the shipped
  default mapping gains ``link: {company: true}`` ("company"), ``link: {company: true,
  deal: most_recent_open}`` plus one deal field (``amount`` / ``Amount`` from the budget,
  "company+deal"), or a ``follow_up:`` ("follow-up", the documented call asks for a
  callback).

The sandbox's rate limits are off and crmsync's set high, so no 429 and no retry inflates
the count. Every call must end ``synced``/``partial`` with exactly one activity.

Run: ``.venv/bin/python -m bench.requests_per_call [--calls 50]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    activities,
    api_requests,
    breakdown,
    count_done,
    crms_of,
    machine,
    print_table,
    queued,
    report,
    run_burst_worker,
)

TARGETS = {"salesforce": 2, "hubspot": 3}
# issue #12: what each kind of caller adds to the shipped default mapping (targets: what the design costs)
LINKS = {
    "company": "link: {company: true}\n",
    "company+deal": "link: {company: true, deal: most_recent_open}\n",
    "follow-up": 'follow_up: {when: "{{ outcome.callback_requested }}", title: "Call back", priority: high}\n',
}
DEAL_FIELD = {
    "hubspot": "  - {from: outcome.budget, to: amount, type: number, object: deal, write: if_empty}\n",
    "salesforce": "  - {from: outcome.budget, to: Amount, type: number, object: Opportunity, write: if_empty}\n",
}
LINK_TARGETS = {("salesforce", "company+deal"): 3, ("hubspot", "company+deal"): 5, ("hubspot", "follow-up"): 4}


@dataclass
class Result:
    crm: str
    callers: str
    calls: int
    done: int
    single_activity: int
    per_call: int
    one_off: int
    non_2xx: int
    seconds: float
    detail: str
    one_off_detail: str

    @property
    def ratio(self) -> float:
        return self.per_call / self.calls

    @property
    def target(self) -> int:
        return LINK_TARGETS.get((self.crm, self.callers), TARGETS[self.crm])


def mappings_for(crm: str, callers: str, folder: Path) -> Path:
    """The shipped mappings, the default one of ``crm`` extended for a links row."""
    shutil.copytree(ROOT / "mappings", folder, dirs_exist_ok=True)
    if callers in LINKS:
        path = folder / f"{crm}.yaml"
        text = path.read_text().replace(f"crm: {crm}", f"crm: {crm}\n{LINKS[callers]}", 1)
        path.write_text(text + (DEAL_FIELD[crm] if callers == "company+deal" else ""))
    return folder


def link_people(crm: str, sandbox: Any) -> None:
    """Give every seeded person a company with an open deal and a closed one."""
    if crm == "hubspot":
        for contact in list(sandbox.contacts):
            company = sandbox.seed_company({"name": f"Company {contact}"})
            sandbox.portal.records["contacts"][contact].properties["associatedcompanyid"] = company
            sandbox.seed_deal({"dealname": "Won", "dealstage": "closedwon"}, contacts=(contact,))
            sandbox.seed_deal({"dealname": "Open", "dealstage": "qualifiedtobuy"}, contacts=(contact,))
        return
    for contact in sandbox.records("Contact"):
        account = sandbox.seed("Account", {"Name": f"Account {contact['Id']}"})
        sandbox.org.records["Contact"][contact["Id"]]["AccountId"] = account
        for stage in ("Closed Won", "Qualification"):
            sandbox.seed(
                "Opportunity", {"Name": stage, "StageName": stage, "CloseDate": "2026-12-31", "AccountId": account}
            )


def measure(crm: str, callers: str, calls: int) -> Result:
    folder = Path(tempfile.mkdtemp(prefix="bench-rpc-mappings-"))
    kind = "unknown" if callers == "unknown" else "known"
    mappings = str(mappings_for(crm, callers, folder))
    try:
        with queued(crm, calls, f"bench-rpc-{crm}-{callers}", kind, MAPPINGS_DIR=mappings) as run:
            if callers in LINKS:
                link_people(crm, run.sandbox)
            before = len(run.sandbox.requests)
            seconds = run_burst_worker(run.env, run.work / f"worker-{crm}-{callers}.log", timeout=300)
            recorded = list(run.sandbox.requests)[before:]
            done = count_done(run.redis, run.call_ids)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    per_call, one_off = api_requests(recorded)
    made = activities(crm, run.sandbox)
    return Result(
        crm=crm,
        callers=callers,
        calls=calls,
        done=done,
        single_activity=sum(1 for c in run.call_ids if made.get(c) == 1),
        per_call=len(per_call),
        one_off=len(one_off),
        non_2xx=sum(1 for r in recorded if not 200 <= r.status < 300),
        seconds=seconds,
        detail=breakdown(per_call),
        one_off_detail=breakdown(one_off) or "none",
    )


def verdict(result: Result) -> str:
    if result.ratio <= result.target:
        return f"met ({result.ratio:.2f} ≤ {result.target})"
    return f"MISSED by {result.ratio - result.target:.2f} ({result.ratio / result.target - 1:+.0%})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.requests_per_call", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="calls per CRM and kind of caller (default 50)")
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    parser.add_argument(
        "--callers",
        nargs="+",
        default=["known", "unknown", *LINKS],
        choices=["known", "unknown", *LINKS],
        help="which rows (default: all)",
    )
    args = parser.parse_args(argv)
    host = machine()
    crms = crms_of(args, both=("salesforce", "hubspot"))
    results: list[Result] = []
    for crm in crms:
        for callers in args.callers:
            started = time.monotonic()
            result = measure(crm, callers, args.calls)
            results.append(result)
            print(
                f"  {crm:10} {callers:7} {result.per_call} requests / {result.calls} calls = {result.ratio:.2f} "
                f"(one-offs excluded: {result.one_off}) in {time.monotonic() - started:.1f} s",
                flush=True,
            )
    rows = [
        (
            r.crm,
            r.callers,
            r.calls,
            f"{r.done}/{r.calls}",
            f"{r.single_activity}/{r.calls}",
            r.per_call,
            f"**{r.ratio:.2f}**",
            f"≤ {r.target}",
            verdict(r),
            r.one_off,
            r.non_2xx,
        )
        for r in results
    ]
    header = [
        "CRM",
        "callers",
        "calls",
        "synced/partial",
        "exactly 1 activity",
        "API requests",
        "requests per call",
        "target",
        "verdict",
        "one-offs (excluded)",
        "non-2xx answers",
    ]
    lines = print_table(header, rows)
    body = [
        "CRM API requests per synced call: N `call.ended` webhooks through crmsync's webhook app (Flask test "
        "client, real Lua enqueue), synced by the Procfile worker (`crmsync worker --burst`, one process) "
        "against a fresh sandbox CRM; the sandbox counts the requests it received. Known callers are seeded in "
        "national format (`055 123 4567`); unknown callers are created (`on_missing: create` in the shipped "
        "mappings). Sandbox rate limits off, crmsync's limits high (no 429s, no retries).",
        "",
        "One-off requests (once per worker process, not per call: Salesforce `describe` of each matched object, "
        "logins, `limits`; HubSpot properties) are excluded from the per-call figure and shown apart.",
        "",
        *lines,
        "",
        "Requests per kind (per-call requests only):",
        "",
        *[f"- {r.crm}, {r.callers} callers: {r.detail}; one-offs: {r.one_off_detail}" for r in results],
    ]
    report("requests_per_call", "CRM requests per synced call (issues #3, #12)", args, host, body)
    ok = all(r.done == r.calls and r.single_activity == r.calls for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
