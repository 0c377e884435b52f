"""Bursts through real processes (docs/bursts.md): many calls queued at once are synced in
batches by a real RQ worker (Procfile ``worker``) behind a real gunicorn (Procfile ``web``),
with real Redis and the sandbox CRMs, and every call keeps its own outcome.

A burst is made by posting every webhook while no worker runs, then starting one: its first
job finds the others waiting and claims them. Per-call outcomes are read with the function
behind ``crmsync status --json`` (``record.call_status``; the CLI itself where a test is
about what an admin reads), and the CRM side from the sandbox's own records.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers
import pytest
import requests
from redis import Redis
from rq import Worker

from crmsync.record import FINAL_STATES, call_status
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from tests.conftest import key_problems
from tests.phone_cases import PHONE_CASES, PhoneCase
from tests.processes import start_sandbox, wait_for
from tests.test_crm_batch import received
from tests.test_e2e_sync import BUDGET, WRITE, Stack, activities, person, seed
from tests.test_e2e_sync import mappings_dir as mappings_dir  # the fixture

pytestmark = pytest.mark.e2e
CRMS = ["hubspot", "salesforce"]
BATCH_CREATE = {"hubspot": r"POST /crm/v3/objects/calls/batch/create$", "salesforce": r"POST .*/composite/sobjects$"}
BATCH_ANY = {"hubspot": r"/batch/", "salesforce": r"/composite/sobjects$"}
RENEWAL = {"hubspot": "renewal_decision", "salesforce": "Renewal_Decision__c"}
STARTER = {"rate_limit": (100, 10.0), "search_rate_limit": (4, 1.0)}  # HubSpot Starter's limits
FINAL = {str(state) for state in FINAL_STATES}


# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture
def burst(redis, redis_url, tmp_path, mappings_dir) -> Iterator:
    """``burst(crm, sandbox_options, redis_url=None, **env)``: a started sandbox and a Stack with
    its web process up and no worker yet; everything stopped at the end."""
    running: list[Stack] = []

    def start(crm: str, options: dict | None = None, url: str | None = None, **env: str) -> Stack:
        sandbox = start_sandbox(crm, **(options or {}))
        try:
            stack = Stack(crm, sandbox, url or redis_url, tmp_path, mappings_dir, workers=0, **env)
        except BaseException:
            sandbox.stop()
            raise
        running.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in running:
            stack.stop()
            stack.sandbox.stop()


def calls(fixture_path: Path, numbers: list[str], outcomes: list[dict] | None = None, prefix: str = "burst"):
    """(call id, webhook body) per number: the documented ``call.ended`` with its own call id,
    conversation id, caller number and ``outcomeResult`` changes."""
    template = json.loads((fixture_path / "call_ended_documented.json").read_text())
    out = []
    for n, number in enumerate(numbers):
        body = copy.deepcopy(template)
        body["callId"] = f"{prefix}-{n:04d}"
        content = body["data"]["data"]
        content["conversationId"] = f"conversation-{prefix}-{n:04d}"
        content["callParams"]["userNumber"] = number
        content["outcomeResult"].update((outcomes or [{}] * len(numbers))[n])
        out.append((body["callId"], json.dumps(body).encode()))
    return out


def post_all(stack: Stack, bodies: list[tuple[str, bytes]]) -> list[str]:
    for call_id, body in bodies:
        answer = stack.post(body)
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", (call_id, answer.text)
    return [call_id for call_id, _ in bodies]


def settle(redis: Redis, call_ids: list[str], timeout: float) -> dict[str, dict]:
    """Each call's status once every one is in a final state; TimeoutError naming the rest."""
    records: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(records) < len(call_ids):
        for call_id in call_ids:
            if call_id not in records and (data := call_status(redis, call_id)) and data["state"] in FINAL:
                records[call_id] = data
        if len(records) < len(call_ids):
            if time.monotonic() > deadline:
                rest = [c for c in call_ids if c not in records]
                raise TimeoutError(f"{len(rest)} of {len(call_ids)} calls not settled, e.g. {rest[:3]}")
            time.sleep(0.2)
    return records


def one_activity_on(sandbox, call_id: str, person_id: str) -> None:
    """The call is exactly one activity in the CRM, on ``person_id``."""
    logged = activities(sandbox, call_id)
    assert len(logged) == 1, (call_id, len(logged))
    on = logged[0]["_associations"] if isinstance(sandbox, HubSpotSandbox) else [logged[0]["WhoId"]]
    assert person_id in on, (call_id, on, person_id)


def all_activities(sandbox) -> int:
    return len(sandbox.calls) if isinstance(sandbox, HubSpotSandbox) else len(sandbox.tasks())


def caller(n: int) -> str:
    return f"+96650{n:07d}"


def stored_form(n: int) -> str:
    """Callers stored half in E.164, half as typed nationally (``050 000 0123``)."""
    national = caller(n)[4:]
    return caller(n) if n % 2 else f"0{national[:2]} {national[2:5]} {national[5:]}"


def seed_callers(sandbox, count: int) -> list[str]:
    return [seed(sandbox, stored_form(n)) for n in range(count)]


def assert_synced_on_their_people(stack: Stack, records: dict[str, dict], ids: list[str], budgets: list[int]) -> None:
    """Call n synced on person ``ids[n]``, one activity, its own budget on that person."""
    for n, (call_id, record) in enumerate(sorted(records.items())):
        assert record["state"] == "synced", (call_id, record["state"], record["errors"])
        assert record["person"]["id"] == ids[n] and not record["person"]["created"], call_id
        one_activity_on(stack.sandbox, call_id, ids[n])
        assert float(person(stack.sandbox, ids[n])[BUDGET[stack.crm]]) == budgets[n], call_id
    assert all_activities(stack.sandbox) == len(records)


def queue_burst(stack: Stack, fixture_path: Path, count: int, base: int) -> tuple[list[str], list[int], list[str]]:
    """``count`` known callers seeded, one call each posted with its own budget (``base + n``)
    while no worker runs: (person ids, budgets, call ids)."""
    ids = seed_callers(stack.sandbox, count)
    budgets = [base + n for n in range(count)]
    bodies = calls(fixture_path, [caller(n) for n in range(count)], [{"budget": str(b)} for b in budgets])
    return ids, budgets, post_all(stack, bodies)


def batches(redis: Redis, crm: str) -> tuple[int, int]:
    """(batches synced, calls in them), as ``/metrics`` counts them."""
    counts = [
        redis.hget(f"crmsync:metrics:{name}", f"crm={crm}") for name in ("sync_batches_total", "sync_batch_calls_total")
    ]
    return int(counts[0] or 0), int(counts[1] or 0)


def crm_requests(sandbox) -> int:
    """Requests the CRM served (Salesforce: its data API, what the daily allowance counts)."""
    return sandbox.count() if isinstance(sandbox, HubSpotSandbox) else sandbox.api_requests()


def statuses(sandbox, pattern: str = ".*") -> list[int]:
    """The answers' statuses of the requests matching ``pattern``, in order (both sandboxes)."""
    return [r.status for r in list(sandbox.requests) if re.search(pattern, f"{r.method} {r.path}")]


def metric(stack: Stack, line_start: str) -> float:
    """The value of the ``/metrics`` line that starts so (served by the web process)."""
    text = requests.get(f"http://127.0.0.1:{stack.port}/metrics", timeout=5).text
    (line,) = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(line.split()[-1])


# -- 200 calls at once ---------------------------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_200_calls_at_once_cost_a_few_requests_and_each_lands_once(crm, burst, redis, fixture_path):
    stack = burst(crm, STARTER if crm == "hubspot" else None)
    ids, budgets, call_ids = queue_burst(stack, fixture_path, 200, 10000)
    started = time.monotonic()
    stack.restart_worker()
    records = settle(redis, call_ids, timeout=120)
    drained = time.monotonic() - started
    assert_synced_on_their_people(stack, records, ids, budgets)
    sent = crm_requests(stack.sandbox)
    times = [r.at for r in stack.sandbox.requests]
    per_request = metric(stack, f'crmsync_calls_per_crm_request{{crm="{crm}"}}')
    print(
        f"\n{crm}: 200 calls, {sent} CRM requests ({sent / 200:.3f} per call; "
        f"{stack.sandbox.count(BATCH_CREATE[crm])} batch creates), drained in {drained:.1f} s from the worker's "
        f"start (CRM requests over {max(times) - min(times):.1f} s); /metrics: {per_request} calls per CRM request"
    )
    size = {"hubspot": 100, "salesforce": 200}[crm]  # the CRM's most per batch request
    assert stack.sandbox.count(BATCH_CREATE[crm]) == 200 // size  # queued before the worker: full batches
    assert batches(redis, crm) == (200 // size, 200)
    assert sent / 200 <= 0.1  # one call alone costs 2 (Salesforce) or 3 (HubSpot)
    assert per_request >= 10
    if crm == "hubspot":
        assert 429 not in statuses(stack.sandbox)  # the limits are kept before HubSpot has to refuse


# -- one call's refusal is that call's ----------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_a_field_the_crm_refuses_for_one_call_makes_only_that_call_partial(
    crm, burst, redis, fixture_path, mappings_dir
):
    # The admin maps an answer to a value the CRM's picklist does not have: the mapping takes
    # it, the CRM refuses it, for the one contact whose call said it.
    mapping = mappings_dir / f"{crm}.yaml"
    text = mapping.read_text()
    wrong = ", pause: paused}" if crm == "hubspot" else ", pause: Paused}"
    patched = re.sub(r"(\n    values: \{renew: [^\n]*)\}", lambda m: m.group(1) + wrong, text, count=1)
    assert patched != text
    mapping.write_text(patched)
    stack = burst(crm)
    ids = seed_callers(stack.sandbox, 6)
    outcomes = [{"budget": str(500 + n), "renewal_decision": "pause" if n == 2 else "renew"} for n in range(6)]
    call_ids = post_all(stack, calls(fixture_path, [caller(n) for n in range(6)], outcomes))
    stack.restart_worker()
    records = settle(redis, call_ids, timeout=60)
    assert stack.sandbox.count(BATCH_CREATE[crm]) == 1  # the calls went in one batch
    field = RENEWAL[crm]
    refused = stack.status(call_ids[2])  # what an admin reads: crmsync status --json
    assert refused["state"] == "partial", refused
    assert "refused by the CRM" in refused["fields"]["skipped"][field]
    assert [e for e in refused["errors"] if e.get("field") == field and "pause" in e["message"].lower()], refused
    assert float(refused["fields"]["written"][BUDGET[crm]]) == 502  # the rest of its fields were written
    assert not person(stack.sandbox, ids[2]).get(field)
    for n, call_id in enumerate(call_ids):
        one_activity_on(stack.sandbox, call_id, ids[n])
        assert float(person(stack.sandbox, ids[n])[BUDGET[crm]]) == 500 + n
        if n != 2:
            assert records[call_id]["state"] == "synced" and not records[call_id]["errors"], records[call_id]
            assert person(stack.sandbox, ids[n])[field].lower() == "renew"
    assert stack.status(call_ids[0])["state"] == "synced"


# -- a batch create whose answer is lost -------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_a_lost_batch_answer_is_retried_without_a_duplicate(crm, burst, redis, fixture_path):
    stack = burst(crm)
    bad_gateway = (
        {"status": "error", "message": "Bad Gateway", "category": "INTERNAL"}
        if crm == "hubspot"
        else [{"errorCode": "BAD_GATEWAY", "message": "Bad Gateway"}]
    )
    # the CRM creates every activity of the batch, then the answer is a 502
    stack.sandbox.add_fault(match=BATCH_CREATE[crm], status=502, commit=True, body=bad_gateway, times=1)
    ids, budgets, call_ids = queue_burst(stack, fixture_path, 8, 700)
    stack.restart_worker()
    records = settle(redis, call_ids, timeout=90)
    assert statuses(stack.sandbox, BATCH_CREATE[crm])[:1] == [502]
    assert_synced_on_their_people(stack, records, ids, budgets)
    assert all(record["attempts"] >= 2 for record in records.values()), [r["attempts"] for r in records.values()]
    print(f"\n{crm}: lost batch answer, {crm_requests(stack.sandbox)} CRM requests for 8 calls")


# -- the worker dies in the middle of a batch --------------------------------------------------
@pytest.fixture
def second_redis(redis_url) -> Iterator[tuple[Redis, str]]:
    """The next database of the same server, so that a second stack can run beside the first."""
    parts = urlsplit(redis_url)
    url = parts._replace(path=f"/{int(parts.path.strip('/') or 0) + 1}").geturl()
    assert url != redis_url
    client = Redis.from_url(url)
    client.flushdb()
    try:
        yield client, url
        problems = key_problems(client)
        assert not problems, "keys outside crmsync.store.KEY_FAMILIES:\n" + "\n".join(problems)
    finally:
        client.flushdb()
        client.close()


def test_a_worker_killed_mid_batch_leaves_every_call_landed_once(burst, redis, second_redis, fixture_path):
    # Both CRMs at once (each its own Redis database), since a dead batch's claims come back
    # only after 70 s (crmsync.claim.HOLD).
    other, other_url = second_redis
    stacks = {"hubspot": (burst("hubspot"), redis), "salesforce": (burst("salesforce", url=other_url), other)}
    plans = {}
    for crm, (stack, _) in stacks.items():
        stack.sandbox.add_fault(match=BATCH_CREATE[crm], delay=6, times=1)  # in flight long enough to die in it
        plans[crm] = queue_burst(stack, fixture_path, 20, 900)
        stack.restart_worker()
    killed = {}
    for crm, (stack, _) in stacks.items():
        wait_for(lambda s=stack, c=crm: s.sandbox.count(BATCH_CREATE[c]) >= 1, 30, what=f"{crm}'s batch create")
        stack.workers[0].kill()
        killed[crm] = time.monotonic()
        stack.restart_worker()
    for crm, (stack, client) in stacks.items():
        ids, budgets, call_ids = plans[crm]
        records = settle(client, call_ids, timeout=180)
        print(f"\n{crm}: 20 calls of a killed batch all landed {time.monotonic() - killed[crm]:.0f} s after the kill")
        assert_synced_on_their_people(stack, records, ids, budgets)
        assert all(record["attempts"] >= 2 for record in records.values())  # each was begun in the batch


# -- a call alone waits for no window ----------------------------------------------------------
@pytest.mark.parametrize("crm", CRMS)
def test_a_lone_call_takes_the_one_call_path_at_once(crm, burst, redis, fixture_path):
    stack = burst(crm, SYNC_BATCH_WINDOW="5")
    ids = seed_callers(stack.sandbox, 2)
    stack.restart_worker()
    wait_for(lambda: any(w.get_state() == "idle" for w in Worker.all(connection=redis)), 30, what="an idle worker")
    (warm, warm_body), (lone, lone_body) = calls(fixture_path, [caller(0), caller(1)])
    post_all(stack, [(warm, warm_body)])  # the worker's first call (its CRM connections opened)
    settle(redis, [warm], timeout=30)
    posted = time.monotonic()
    post_all(stack, [(lone, lone_body)])
    wait_for(lambda: (call_status(redis, lone) or {}).get("state") in FINAL, 30, interval=0.02, what="the lone call")
    latency = time.monotonic() - posted
    print(f"\n{crm}: a lone call synced {latency:.2f} s after its webhook (SYNC_BATCH_WINDOW=5)")
    assert call_status(redis, lone)["state"] == "synced"  # type: ignore[index]
    one_activity_on(stack.sandbox, lone, ids[1])
    assert stack.sandbox.count(BATCH_ANY[crm]) == 0 and stack.sandbox.count(WRITE[crm]) == 2
    assert batches(redis, crm) == (0, 0)  # (that a lone call waits for no window: tests/test_claim.py)


# -- the phone-matching table in one burst -----------------------------------------------------
def own_block(text: str, n: int) -> str:
    """``text`` with its 4th and 3rd digits from the end set to ``n`` (two digits), all else as
    written: every case of the table gets numbers of its own, so that no case's contact can
    be another case's caller (several cases share one number, e.g. +1 415 555 1212), while
    each keeps what it is about (format, prefixes, country, which digit is off)."""
    spots = [m.start() for m in re.finditer(r"\d", text)]
    chars = list(text)
    chars[spots[-4]], chars[spots[-3]] = f"{n:02d}"
    return "".join(chars)


def own_cases() -> list[PhoneCase]:
    cases = []
    for n, case in enumerate(PHONE_CASES):
        mine = case._replace(stored=own_block(case.stored, 10 + n), received=own_block(case.received, 10 + n))
        before, after = (phonenumbers.parse(received(c)) for c in (case, mine))
        assert phonenumbers.region_code_for_number(after) == phonenumbers.region_code_for_number(before), case.why
        assert phonenumbers.is_valid_number(after) == phonenumbers.is_valid_number(before), case.why
        cases.append(mine)
    return cases


@pytest.mark.parametrize("crm", CRMS)
def test_phone_cases_hold_when_their_calls_arrive_in_one_burst(crm, burst, redis, fixture_path):
    stack = burst(crm)
    sandbox = stack.sandbox
    cases = own_cases()
    if isinstance(sandbox, HubSpotSandbox):
        ids = [
            sandbox.seed_contact({"lastname": f"Case {n}", ("phone", "mobilephone")[n % 2]: c.stored})
            for n, c in enumerate(cases)
        ]
    else:
        assert isinstance(sandbox, SalesforceSandbox)
        fields = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
        ids = [sandbox.seed("Contact", {"LastName": f"Case {n}", fields[n % 4]: c.stored}) for n, c in enumerate(cases)]
    call_ids = post_all(stack, calls(fixture_path, [received(c) for c in cases], prefix="case"))
    stack.restart_worker()
    records = settle(redis, call_ids, timeout=90)
    assert batches(redis, crm) == (1, len(cases))  # every case in the one batch
    for cid, case, call_id in zip(ids, cases, call_ids, strict=True):
        record = records[call_id]
        assert record["state"] == "synced", (case.why, record["errors"])
        matched = record["person"]
        if case.match:
            assert matched["id"] == cid and not matched["created"], case.why
        else:  # nobody has the number: the mapping creates the caller
            assert matched["id"] != cid and matched["created"], case.why
        one_activity_on(sandbox, call_id, matched["id"])


# -- 429s inside batches -----------------------------------------------------------------------
def test_429s_in_batches_end_with_every_call_synced_once(burst, redis, fixture_path):
    # HubSpot allows 2 requests / 2 s; crmsync is told far more, so HubSpot refuses. Batches of
    # 10: each needs two requests (the calls, the contacts), and five come one after another.
    stack = burst("hubspot", {"rate_limit": (2, 2.0)}, HUBSPOT_RATE_LIMIT="1000/10s", SYNC_BATCH_MAX="10")
    ids, budgets, call_ids = queue_burst(stack, fixture_path, 50, 300)
    stack.restart_worker()
    records = settle(redis, call_ids, timeout=120)
    refused = statuses(stack.sandbox).count(429)
    print(f"\nhubspot: 50 calls in batches of 10, {crm_requests(stack.sandbox)} requests, {refused} answered 429")
    assert refused > 0
    assert stack.sandbox.count(BATCH_CREATE["hubspot"]) >= 1
    assert_synced_on_their_people(stack, records, ids, budgets)
