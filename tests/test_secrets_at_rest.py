"""No secret at rest when a credential is refused: the refusal is recorded (the sync record's
errors, /readyz's problem hash), the refused token, key or password never is. The real job,
real Redis, the real client libraries against sandbox CRMs that answer 401."""

from __future__ import annotations

import json

import pytest

from crmsync import jobs
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.runtime import Runtime
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.sandbox.salesforce import SalesforceSandbox
from crmsync.settings import Settings
from tests.conftest import ROOT
from tests.redis_scan import everything, holding

WRONG = {
    "hubspot": {"HUBSPOT_ACCESS_TOKEN": "pat-na1-revoked-5e1f0c9d-secret"},
    "salesforce": {"SALESFORCE_ACCESS_TOKEN": "00D000000000001!revoked-session-secret-77"},
}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_refused_credential_is_recorded_without_the_credential(crm, redis, redis_url, fixture_path, monkeypatch):
    sandbox = HubSpotSandbox() if crm == "hubspot" else SalesforceSandbox()
    with sandbox:
        env = {
            "REDIS_URL": redis_url,
            "CRM": crm,
            "MAPPINGS_DIR": str(ROOT / "mappings"),
            "DEFAULT_REGION": "SA",
            **WRONG[crm],
        }
        if crm == "hubspot":
            env["HUBSPOT_BASE_URL"] = sandbox.url
        else:
            env["SALESFORCE_INSTANCE_URL"] = sandbox.url
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_path))
        runtime = Runtime.build(Settings.from_env(env), redis)
        Runtime.install(runtime)
        try:
            event = normalise(json.loads((fixture_path / "call_ended_documented.json").read_text()), "SA")
            Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
            assert jobs.sync_call(event["call_id"], "call.ended") == "retrying"
        finally:
            Runtime.install(None)
            runtime.close()
    text = "\n".join(everything(redis).values())
    assert "refused" in text.lower() or "401" in text  # the refusal is on record ...
    [secret] = WRONG[crm].values()
    assert holding(redis, secret, secret[-12:]) == {}  # ... the credential is not
