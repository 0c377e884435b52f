"""The console as a person uses it: a real headless Chromium (Debian's ``chromium``, driven by
Playwright) against the Procfile's gunicorn and RQ worker, real Redis and the Salesforce
sandbox. Each page is screenshotted into .crmsync/screenshots/ (ignored by git), or into the folder
CRMSYNC_SCREENSHOTS names: ``CRMSYNC_SCREENSHOTS=docs/console`` refreshes docs/console.md's pictures.

One browser, one stack and one login for the module; the tests run in file order.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from redis import Redis

from crmsync.sandbox.salesforce import SalesforceSandbox
from tests.conftest import ROOT
from tests.test_e2e_sync import DOCUMENTED_CALL, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-e2e-password"
SHOTS = ROOT / os.environ.get("CRMSYNC_SCREENSHOTS", ".crmsync/screenshots")  # relative to the checkout
FAILING_CALL = "call-refused-then-replayed"


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory):
    Redis.from_url(redis_url).flushdb()
    tmp = tmp_path_factory.mktemp("console")
    mappings = tmp / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    sandbox = SalesforceSandbox().start()
    running = Stack(
        "salesforce",
        sandbox,
        redis_url,
        tmp,
        mappings,
        CONSOLE_PASSWORD=PASSWORD,
        SECRET_KEY="e2e-console-secret-key-0123456789",
    )
    try:
        yield running
    finally:
        running.stop()
        sandbox.stop()
        Redis.from_url(redis_url).flushdb()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser, stack):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def base(stack) -> str:
    return f"http://127.0.0.1:{stack.port}/console"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_log_in(page, stack):
    page.goto(base(stack) + "/calls")
    assert "/console/login?next=/console/calls" in page.url
    shot(page, "login")
    page.fill("input[name=password]", "not the password")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "not the console password" in page.inner_text("main")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base(stack) + "/calls")
    assert page.is_visible("text=Log out")


def test_find_a_synced_call_by_its_number_typed_in_a_national_format_and_open_it_in_the_crm(page, stack, fixture_path):
    contact = stack.sandbox.seed("Contact", {"Phone": "+966501234567", "LastName": "Alharbi"})
    assert stack.post((fixture_path / "call_ended_documented.json").read_bytes()).status_code == 200
    stack.wait_state(DOCUMENTED_CALL, ("synced", "partial"))
    page.goto(base(stack) + "/")
    page.fill("header input[name=q]", "050 123 4567")  # as the admin has it written down, in Saudi format
    with page.expect_navigation():
        page.get_by_role("button", name="Find").click()
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 1
    assert "+9665*****567" in rows.first.inner_text()  # masked in the list
    assert "966501234567" not in page.content()
    shot(page, "calls")
    with page.expect_navigation():
        rows.first.locator("a").click()
    assert page.inner_text("h1") == f"Call {DOCUMENTED_CALL}"
    assert contact in page.inner_text("main")
    shot(page, "call")
    link = page.locator("a.crm")
    expected = f"{stack.sandbox.url}/lightning/r/Contact/{contact}/view"
    assert link.get_attribute("href") == expected
    with page.expect_navigation():
        link.click()
    page.wait_for_url(expected)  # the browser went to the record's page in the CRM's own UI
    page.go_back()


def test_a_failed_call_replayed_from_the_page_becomes_synced(page, stack, fixture_path):
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["callId"] = FAILING_CALL
    stack.sandbox.add_fault(
        match="POST .*/composite",
        status=400,
        times=1,
        body=[{"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Tasks are locked during the audit"}],
    )
    assert stack.post(json.dumps(body).encode()).status_code == 200
    stack.wait_state(FAILING_CALL, ("failed",))
    page.goto(base(stack) + "/failed")
    row = page.locator("tr", has_text=FAILING_CALL[:20])
    assert "Tasks are locked during the audit" in row.inner_text()
    shot(page, "failed")
    with page.expect_navigation():
        row.get_by_role("button", name="Replay").click()
    assert "Queued again" in page.inner_text("main")
    stack.wait_state(FAILING_CALL, ("synced", "partial"))
    page.reload()
    assert page.inner_text(".summary .state") in ("synced", "partial")


def test_a_quarantined_body_with_a_script_is_shown_as_text_and_no_script_runs(page, stack):
    script = "<script>window.pwned = 1</script><img src=x onerror=window.pwned=2>"
    answer = stack.post(json.dumps({"eventType": "call.ended", "data": {"note": script}}).encode())
    assert answer.status_code == 422
    page.goto(base(stack) + "/quarantine")
    shot(page, "quarantine")
    with page.expect_navigation():
        page.click(f"text={answer.json()['quarantine_id']}")
    body = page.locator("pre.body")
    assert script in body.inner_text()  # shown as the text it is
    assert body.locator("script, img").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
    shot(page, "quarantined")


def test_a_draft_mapping_with_an_error_shows_its_line_and_a_valid_one_its_preview(page, stack):
    active = (Path(stack.env["MAPPINGS_DIR"]) / "salesforce.yaml").read_text()
    broken = active.replace("type: number", "type: nubmer", 1)
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "nubmer" in text)
    page.goto(base(stack) + "/mappings")
    page.select_option("select[name=call_id]", DOCUMENTED_CALL)
    page.fill("textarea[name=draft]", broken)
    with page.expect_navigation():
        page.get_by_role("button", name="Preview").click()
    problems = page.inner_text("ul.draft-problems")
    assert f"draft.yaml:{line}:" in problems and "nubmer" in problems
    assert page.locator("pre.numbered .bad").inner_text().strip().startswith(str(line))
    page.fill("textarea[name=draft]", active.replace("type: number", "type: integer", 1))
    page.check("input[name=remote]")  # look the caller up in the CRM, as --remote does
    with page.expect_navigation():
        page.get_by_role("button", name="Preview").click()
    assert "The draft is valid." in page.inner_text("#result")
    assert page.locator(".preview table.fields").count() == 2  # the active file's preview and the draft's
    [contact] = [c["Id"] for c in stack.sandbox.records("Contact")]
    assert f"Contact {contact}" in page.locator(".preview").first.inner_text()  # the match, found in the CRM
    shot(page, "mappings")


def test_the_overview_draws_its_charts(page, stack):
    page.goto(base(stack) + "/")
    assert page.locator("svg.chart").count() == 2
    assert page.locator("svg.chart rect").count() >= 1  # the synced calls of this module
    shot(page, "overview")


def test_an_action_without_its_csrf_token_is_refused(page, stack):
    page.goto(base(stack) + f"/calls/{FAILING_CALL}")
    page.evaluate("document.querySelector('main input[name=csrf]').remove()")  # a forged form has no token
    with page.expect_navigation():
        page.get_by_role("button", name="Replay").click()
    assert "did not carry the console's security token" in page.inner_text("main")


def test_pages_without_a_session_redirect_to_the_login(browser, stack):
    context = browser.new_context()
    fresh = context.new_page()
    fresh.goto(base(stack) + f"/calls/{DOCUMENTED_CALL}")
    assert "/console/login" in fresh.url and fresh.is_visible("input[name=password]")
    context.close()


def test_logout_ends_the_session(page, stack):
    cookies = page.context.cookies()
    page.goto(base(stack) + "/")
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/console/login")
    page.goto(base(stack) + "/")
    assert "/console/login" in page.url
    # the cookie from before the logout no longer opens anything
    page.context.clear_cookies()
    page.context.add_cookies(cookies)
    page.goto(base(stack) + "/calls")
    assert "/console/login" in page.url
