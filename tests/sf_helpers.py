"""Test-only helpers for the Salesforce sandbox and connector tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from crmsync.crm.base import Activity
from crmsync.crm.salesforce_client import TimeoutSession
from crmsync.sandbox.salesforce import SalesforceSandbox

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"  # the shipped mapping files
LOGIN_HOSTS = ("https://login.salesforce.com/", "https://test.salesforce.com/", "https://acme.my.salesforce.com/")


class RewriteAdapter(HTTPAdapter):
    """Sends requests for Salesforce's hard-coded login hosts to the sandbox instead."""

    def __init__(self, netloc: str) -> None:
        super().__init__()
        self.netloc = netloc

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((parts.scheme, self.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, *args, **kwargs)


def login_session(sandbox_url: str, timeout: tuple[float, float] = (1, 2)) -> requests.Session:
    """A session whose login requests reach the sandbox (for password, JWT and client-credentials tests)."""
    session = TimeoutSession(timeout)
    adapter = RewriteAdapter(urlsplit(sandbox_url).netloc)
    for host in LOGIN_HOSTS:
        session.mount(host, adapter)
    return session


def activity(call_id: str = "call-1", **kw: Any) -> Activity:
    values: dict[str, Any] = {
        "title": "AI call with Sara",
        "body": "Caller is interested.",
        "timestamp": "2026-05-01T23:30:00+02:00",
        "direction": "inbound",
        "duration_seconds": 95,
        "disposition": "interested",
        "status": "completed",
    }
    values.update(kw)
    return Activity(call_id=call_id, **values)


def salesforce_env(org: SalesforceSandbox, redis_url: str, mappings: Path = MAPPINGS) -> dict[str, str]:
    """The environment of a crmsync on ``redis_url`` syncing into the sandbox ``org`` (whose
    certificate it trusts) with the mapping files in ``mappings``, numbers read as Saudi."""
    return {
        "REDIS_URL": redis_url,
        "CRM": "salesforce",
        "SALESFORCE_INSTANCE_URL": org.url,
        "SALESFORCE_ACCESS_TOKEN": org.token,
        "MAPPINGS_DIR": str(mappings),
        "DEFAULT_REGION": "SA",
        "REQUESTS_CA_BUNDLE": str(org.ca_path),
    }
