"""The console's gate and pages through Flask's test client, against a real Redis: who gets in,
what a refused request sees, and what each page shows."""

from __future__ import annotations

import re
import shutil

import pytest

from crmsync.callindex import CallIndex
from crmsync.errors import SettingsError
from crmsync.settings import Settings
from crmsync.web import create_app
from crmsync.web.console.auth import COOKIE, FREE_FAILURES
from tests.conftest import ROOT

PASSWORD = "correct horse battery staple"
SECRET = "s3cret-key-for-signing-console-sessions"


@pytest.fixture
def make_app(redis, redis_url, tmp_path):
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)

    def make(**env):
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_url,
                "WEBHOOK_AUTH": "none",
                "CRM": "hubspot",
                "MAPPINGS_DIR": str(mappings),
                "DEFAULT_REGION": "SA",
                "CONSOLE_PASSWORD": PASSWORD,
                "SECRET_KEY": SECRET,
                **env,
            }
        )
        return create_app(settings, redis)

    return make


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def log_in(client, password=PASSWORD, **headers):
    token = csrf_of(client.get("/console/login"))
    return client.post("/console/login", data={"csrf": token, "password": password}, headers=headers)


def test_off_without_a_password(make_app):
    client = make_app(CONSOLE_PASSWORD="").test_client()
    assert client.get("/console/").status_code == 404
    assert client.get("/console/login").status_code == 404


def test_a_password_needs_a_secret_key(make_app):
    with pytest.raises(SystemExit, match="SECRET_KEY is not set"):
        make_app(SECRET_KEY="")
    with pytest.raises(SettingsError, match="SECRET_KEY is too short"):
        Settings.from_env({"SECRET_KEY": "short"})


def test_pages_without_a_session_redirect_to_the_login(client):
    for path in ("/console/", "/console/calls?q=1", "/console/failed", "/console/quarantine", "/console/mappings"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/console/login?next=/console/")
    assert client.post("/console/failed/replay").status_code == 302  # an action too: nothing is done


def test_login_sets_a_signed_http_only_lax_cookie_and_every_page_is_no_store(client):
    answer = log_in(client)
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # plain http on a laptop
    for path in ("/console/", "/console/calls", "/console/failed", "/console/quarantine", "/console/mappings"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["Cache-Control"] == "no-store"
        assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none': no script runs
        assert "<script" not in page.text


def test_the_cookie_is_secure_behind_https(client):
    answer = log_in(client, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in answer.headers["Set-Cookie"]
    assert client.get("/console/", headers={"X-Forwarded-Proto": "http"}).status_code == 308


def test_a_wrong_password_is_refused_and_guesses_are_slowed(client):
    for _ in range(FREE_FAILURES):
        answer = log_in(client, password="guess")
        assert answer.status_code == 401
        assert "not the console password" in answer.text
    log_in(client, password="guess")  # one more: from now on attempts wait
    answer = log_in(client)  # even the right password waits
    assert answer.status_code == 429
    assert re.search(r"wait \d+ seconds", answer.text)
    assert client.get("/console/").status_code == 302


def test_an_action_without_its_csrf_token_is_refused(client, redis):
    log_in(client)
    CallIndex(redis)
    for data in ({}, {"csrf": "forged"}):
        answer = client.post("/console/failed/replay", data=data)
        assert answer.status_code == 403
        assert "security token (CSRF)" in answer.text
    token = csrf_of(client.get("/console/failed"))
    assert client.post("/console/failed/replay", data={"csrf": token}).status_code == 303


def test_a_forged_cookie_is_no_session(client):
    log_in(client)
    client.set_cookie(COOKIE, "forged.value.here", path="/console")
    assert client.get("/console/").status_code == 302


def test_logout_ends_the_session_even_for_a_copied_cookie(client, make_app):
    log_in(client)
    copied = client.get_cookie(COOKIE, path="/console").value
    token = csrf_of(client.get("/console/"))
    assert client.post("/console/logout", data={"csrf": token}).status_code == 303
    assert client.get("/console/").status_code == 302
    other = make_app().test_client()
    other.set_cookie(COOKIE, copied, path="/console")
    assert other.get("/console/").status_code == 302


def test_no_open_redirect_after_login(client):
    token = csrf_of(client.get("/console/login"))
    answer = client.post(
        "/console/login", data={"csrf": token, "password": PASSWORD, "next": "https://evil.example/console/"}
    )
    assert answer.headers["Location"] == "/console/"


def test_a_draft_with_an_error_shows_its_line_and_a_valid_one_its_preview(client, fixture_path):
    log_in(client)
    token = csrf_of(client.get("/console/mappings"))
    body = (fixture_path / "call_ended_documented.json").read_text()
    active = (ROOT / "mappings" / "hubspot.yaml").read_text()
    broken = active.replace("type: number", "type: nubmer", 1)
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "nubmer" in text)
    page = client.post("/console/mappings", data={"csrf": token, "body": body, "draft": broken})
    assert page.status_code == 200
    assert f"draft.yaml:{line}:" in page.text and "nubmer" in page.text
    assert "With the active file" in page.text
    valid = active.replace("AI call with", "Hamsa call with", 1)
    page = client.post("/console/mappings", data={"csrf": token, "body": body, "draft": valid})
    assert "The draft is valid." in page.text and "With the draft" in page.text
    assert '<span class="add">+  title: &#34;Hamsa call with' in page.text  # the diff against the active file
    assert '<span class="del">-  title: &#34;AI call with' in page.text
    assert page.text.count("would be written") == 2  # the active file's preview and the draft's


def test_the_webhook_path_does_not_pass_through_the_console(client, redis, fixture_path):
    answer = client.post("/webhooks/hamsa", data=(fixture_path / "call_ended_documented.json").read_bytes())
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers and "Content-Security-Policy" not in answer.headers
    assert not list(redis.scan_iter("crmsync:console:*")) and not list(redis.scan_iter("crmsync:index:*"))


def test_the_overview_names_what_is_wrong_in_plain_words(make_app, redis, tmp_path):
    from crmsync import metrics
    from crmsync.crm.salesforce_client import USAGE_KEY

    app = make_app(CRM="salesforce")
    mappings = app.extensions["crmsync"].settings.mappings_dir
    (mappings / "broken.yaml").write_text("version: 1\ncrm: salesforce\nfields: nope\n")
    redis.hset(metrics.CREDENTIALS_KEY, "salesforce", "INVALID_SESSION_ID")
    redis.set(USAGE_KEY, "14500/15000")
    client = app.test_client()
    log_in(client)
    alarms = client.get("/console/").text
    assert "salesforce refuses crmsync&#39;s credentials" in alarms
    assert "broken.yaml is broken" in alarms
    assert "daily API allowance is nearly spent: 14,500 of 15,000" in alarms
    redis.delete(USAGE_KEY, metrics.CREDENTIALS_KEY)
    (mappings / "broken.yaml").unlink()
    assert "Nothing needs attention" in client.get("/console/").text


def test_crm_links_come_from_each_crms_profile_and_settings():
    from crmsync.crm.profiles import PROFILES

    hubspot = Settings.from_env({"HUBSPOT_PORTAL_ID": "4455667"})
    assert (
        PROFILES["hubspot"].record_url(hubspot, "contact", "901")
        == "https://app.hubspot.com/contacts/4455667/record/0-1/901"
    )
    assert PROFILES["hubspot"].record_url(hubspot, PROFILES["hubspot"].activity_object, "77") == (
        "https://app.hubspot.com/contacts/4455667/record/0-48/77"
    )
    assert PROFILES["hubspot"].record_url(Settings.from_env({}), "contact", "901") is None  # no portal id: no link
    salesforce = Settings.from_env({"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com/"})
    assert PROFILES["salesforce"].record_url(salesforce, "Lead", "00Q1") == (
        "https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view"
    )


def test_a_body_of_another_platform_is_previewed_as_that_platform_posts_it(client):
    body = (ROOT / "tests" / "fixtures" / "providers" / "retell_call_ended.json").read_text()
    log_in(client)
    token = csrf_of(client.get("/console/mappings"))
    as_hamsa = client.post("/console/mappings", data={"csrf": token, "body": body})
    assert "The pasted body:" in as_hamsa.text and "With the active file" not in as_hamsa.text
    as_retell = client.post("/console/mappings", data={"csrf": token, "body": body, "provider": "retell"})
    assert "With the active file" in as_retell.text and "The pasted body:" not in as_retell.text


def test_the_routing_table_says_which_calls_use_the_active_file(make_app):
    app = make_app()
    active = app.extensions["crmsync"].settings.mapping_path
    client = app.test_client()
    log_in(client)
    assert f"<code>{active.name}</code></td><td>every other call (default)" in client.get("/console/mappings").text
    active.write_text(active.read_text() + "\nproviders: [hamsa, retell]\n")
    page = client.get("/console/mappings").text
    assert f"<code>{active.name}</code></td><td>providers hamsa, retell" in page
    assert "every other call is skipped: no default file" in page
