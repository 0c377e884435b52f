"""The demo's moving parts; see the package docstring."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from redis import Redis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from crmsync import harness
from crmsync.localredis import free_port, throwaway_redis

HERE = Path(__file__).resolve().parent
TOKEN = "demo-webhook-token"
CALLS = (
    "call_started.json",
    "call_answered.json",
    "tool_executed.json",
    "call_ended_documented.json",
    "call_ended_flat.json",
)
console = Console()


def start_redis(workdir: Path, stack: contextlib.ExitStack) -> str:
    """``REDIS_URL`` when set (checked with a ping), else a throwaway local ``redis-server``."""
    url = os.environ.get("REDIS_URL")
    if url:
        Redis.from_url(url).ping()
        return url
    return stack.enter_context(throwaway_redis(workdir))


def start_sandbox(crm: str) -> Any:
    """A sandbox CRM seeded with three people whose numbers are stored in mixed formats."""
    sandbox = harness.start_sandbox(crm)
    SEEDS[crm](sandbox)
    return sandbox


def _seed_salesforce(sf: Any) -> None:
    sf.seed(
        "Contact", {"FirstName": "Noura", "LastName": "Alharbi", "Phone": "050 123 4567", "Interest_Level__c": "Low"}
    )
    sf.seed(
        "Lead", {"FirstName": "Sam", "LastName": "Rivera", "Company": "Rivera LLC", "MobilePhone": "(415) 555-1212"}
    )
    account = sf.seed("Account", {"Name": "Vogel GmbH"})  # Lena's Account, with an open Opportunity
    sf.seed("Contact", {"FirstName": "Lena", "LastName": "Vogel", "Phone": "+49 30 12345678", "AccountId": account})
    sf.seed(
        "Opportunity",
        {
            "Name": "Berlin office lease",
            "StageName": "Proposal/Price Quote",
            "CloseDate": "2026-12-31",
            "AccountId": account,
        },
    )


def _seed_hubspot(hs: Any) -> None:
    hs.seed_contact(
        {
            "firstname": "Noura",
            "lastname": "Alharbi",
            "phone": "050 123 4567",
            "interest_level": "low",
            "hubspot_owner_id": "1002",
        }
    )
    hs.seed_contact({"firstname": "Sam", "lastname": "Rivera", "mobilephone": "(415) 555-1212"})
    company = hs.seed_company({"name": "Vogel GmbH"})  # Lena's primary company, and her open deal
    lena = hs.seed_contact(
        {
            "firstname": "Lena",
            "lastname": "Vogel",
            "phone": "+49 30 12345678",
            "associatedcompanyid": company,
            "hubspot_owner_id": "1003",
        }
    )
    hs.seed_deal({"dealname": "Berlin office lease", "dealstage": "presentationscheduled"}, contacts=(lena,))


SEEDS = {"salesforce": _seed_salesforce, "hubspot": _seed_hubspot}
MISSED_CALL = "9b4c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"  # in Hamsa's history; its webhook never arrives


def start_hamsa() -> Any:
    """A sandbox Hamsa API whose call history holds one call that no webhook delivers:
    the reconciliation sweep finds it and logs it (Lena's number, stored in the CRM)."""
    from crmsync.sandbox.hamsa import HamsaSandbox

    hamsa = HamsaSandbox().start()
    hamsa.add_call(
        call_id=MISSED_CALL,
        ended_ago=120,
        duration=142,
        agent_name="Noura (Sales)",
        user_number="+49 30 12345678",
        transcript=[{"Agent": "Guten Tag, hier ist Noura von Acme Realty."}, {"User": "Ich rufe morgen zurück."}],
        outcome={"interest_level": "medium", "summary": "Will call back tomorrow (found in Hamsa's call history)."},
    )
    return hamsa


def sample_calls() -> list[bytes]:
    bodies = [(HERE / name).read_bytes() for name in CALLS]
    # one more: a known caller whose number the CRM stores in US format
    extra = json.loads((HERE / "call_ended_documented.json").read_text())
    extra = copy.deepcopy(extra)
    extra["callId"] = "call_demo-us-4155551212"
    extra["data"]["data"]["callParams"]["userNumber"] = "+1 415 555 1212"
    extra["data"]["data"]["outcomeResult"] |= {
        "interest_level": "medium",
        "budget": "120000",
        "summary": "Wants a three-bedroom in San Francisco.",
    }
    bodies.append(json.dumps(extra).encode())
    bodies.append(bodies[3])  # a duplicate delivery: answered "duplicate", synced once
    bodies.append(json.dumps(callback_call()).encode())
    return bodies


def callback_call() -> dict[str, Any]:
    """A call of the callbacks agent (mappings/*-callbacks.yaml): it lands on Lena, her company
    and her open deal, and her callback request becomes a task for her owner."""
    body = copy.deepcopy(json.loads((HERE / "call_ended_documented.json").read_text()))
    body |= {"callId": "call_demo-callback-lena", "agentId": "agent-callbacks-1", "agentName": "Omar (Callbacks)"}
    body["data"]["data"]["callParams"]["userNumber"] = "+49 30 12345678"
    body["data"]["data"]["outcomeResult"] = {
        "first_name": "Lena",
        "budget": "250000",
        "callback_requested": "true",
        "follow_up_date": "2026-03-05",
        "preferred_time": "Thursday morning",
        "summary": "Asked for a callback on Thursday about the Berlin office lease.",
    }
    return body


def run_demo(crm: str | None = None, keep_running: bool = False) -> int:
    crm = (crm or os.environ.get("CRM") or "hubspot").lower()
    workdir = Path(tempfile.mkdtemp(prefix="crmsync-demo-"))
    mappings = Path(os.environ.get("MAPPINGS_DIR") or ("mappings" if Path("mappings").is_dir() else HERE / "mappings"))
    console.rule(f"[bold]crmsync demo[/] — Hamsa calls into a sandbox {crm}")
    with contextlib.ExitStack() as stack:
        redis_url = start_redis(workdir, stack)
        sandbox = start_sandbox(crm)
        stack.callback(sandbox.stop)
        hamsa = start_hamsa()
        stack.callback(hamsa.stop)
        port = int(os.environ.get("PORT") or free_port())
        env = harness.crmsync_env(
            crm,
            sandbox,
            redis_url,
            TOKEN,
            mappings,
            PORT=str(port),
            WEB_CONCURRENCY="1",
            LOG_LEVEL="WARNING",
            HAMSA_API_KEY=hamsa.api_key,
            HAMSA_BASE_URL=hamsa.url,
            HAMSA_RECONCILE_INTERVAL="2",
            HAMSA_RECONCILE_GRACE="1",
        )
        console.print(
            f"Redis      {redis_url}\nSandbox    {crm} at {sandbox.url}\nHamsa API  {hamsa.url} (sandbox: one call "
            f"whose webhook never comes)\nMappings   {mappings}/{crm}.yaml"
        )
        for kind in ("web", "worker"):
            stack.callback(harness.Process.procfile(kind, env, workdir / f"{kind}.log").stop)
        url = f"http://127.0.0.1:{port}/webhooks/hamsa"
        harness.wait_http(f"http://127.0.0.1:{port}/healthz")
        console.print(f"Web        {url}   (logs in {workdir})\n")
        call_ids = [*post_calls(url), MISSED_CALL]
        redis = Redis.from_url(redis_url)
        drain(redis, call_ids)
        report(redis, call_ids)
        console.print(
            f"\n[bold]Point a real Hamsa agent at it:[/] expose port {port} over https (e.g. "
            f"[cyan]ngrok http {port}[/]), set the agent's webhook URL to https://<your-host>/webhooks/hamsa "
            f"and its webhookAuth to authKey [cyan]Bearer[/], authSecret [cyan]{TOKEN}[/]."
        )
        if keep_running:
            console.print(
                f"See one call:  [cyan]REDIS_URL={redis_url} crmsync status <call id>[/]\n[bold]Stop it with Ctrl-C.[/]"
            )
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        else:
            console.print("The demo stopped its processes. Keep it up with [cyan]crmsync demo --keep-running[/].")
    return 0


def post_calls(url: str) -> list[str]:
    table = Table("event", "call", "answer", title="Webhooks posted", title_justify="left")
    ended: list[str] = []
    for body in sample_calls():
        answer = requests.post(
            url, data=body, timeout=5, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        )
        data = answer.json()
        table.add_row(data.get("event", "?"), data.get("call_id", "?"), f"{answer.status_code} {data.get('status')}")
        if data.get("event") == "call.ended" and data.get("call_id") not in ended:
            ended.append(data["call_id"])
    console.print(table)
    return ended


def drain(redis: Redis, call_ids: list[str], timeout: float = 60) -> None:
    from crmsync.record import SyncRecord

    deadline = time.monotonic() + timeout
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Syncing calls into the CRM", total=len(call_ids))
        while time.monotonic() < deadline:
            records = [SyncRecord.load(redis, c) for c in call_ids]
            done = sum(1 for r in records if r and r.state and r.state.final)
            progress.update(task, completed=done)
            if done == len(call_ids):
                return
            time.sleep(0.2)


def report(redis: Redis, call_ids: list[str]) -> None:
    from crmsync.record import SyncRecord, SyncState

    for call_id in call_ids:
        record = SyncRecord.load(redis, call_id) or SyncRecord(state=SyncState.QUEUED)
        person = record.person or {}
        state = record.state or SyncState.QUEUED
        colour = {SyncState.SYNCED: "green", SyncState.PARTIAL: "yellow"}.get(state, "red")
        how = "created" if person.get("created") else "matched"
        console.rule(f"[bold]{call_id}[/]  [{colour}]{state}[/]", align="left")
        if record.source in ("reconcile", "backfill"):
            console.print("  no webhook came: found by the reconciliation sweep in Hamsa's call history")
        if person:
            console.print(f"  {how} {person.get('type')} {person.get('id')} · activity {record.activity_id}")
        links = record.links
        if links.get("company") or links.get("deal"):
            on = [f"{name} {links[name]}" for name in ("company", "deal") if links.get(name)]
            console.print(f"  also on {' · '.join(on)} (mapping {record.mapping}, {record.route})")
        if links.get("follow_up"):
            console.print(f"  follow-up task {links['follow_up']}")
        if record.reason:
            console.print(f"  {record.reason}")
        fields = record.fields
        table = Table("field", "old", "new", box=None, padding=(0, 2), show_edge=False)
        previous = fields.get("previous") or {}
        readable = fields.get("values") or {}  # as a person reads them (a date, not epoch ms)
        for name, value in (fields.get("written") or {}).items():
            table.add_row(name, _short(previous.get(name)), f"[green]{_short(readable.get(name, value))}[/]")
        for name, reason in (fields.get("skipped") or {}).items():
            table.add_row(f"[dim]{name}[/]", "", f"[dim]{reason}[/]")
        if table.row_count:
            console.print(table)


def _short(value: Any) -> str:
    text = "—" if value in (None, "") else ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"
