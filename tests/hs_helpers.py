"""Helpers for the HubSpot tests, and a worker process for the shared rate-limit test.

``python -m tests.hs_helpers BASE_URL REDIS_URL ROUNDS GENERAL SEARCH`` builds one
``HubSpotConnector`` and makes ``ROUNDS`` × (one contact search + one properties read),
as a separate RQ worker process would.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from redis import Redis

from crmsync.crm.base import Activity
from crmsync.crm.hubspot import HubSpotConnector
from crmsync.sandbox.hubspot import DEFAULT_TOKEN, HubSpotSandbox
from crmsync.sub_settings import HubSpotSettings

CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"  # the shipped mapping files


def make_activity(call_id: str = "call-1", **overrides: Any) -> Activity:
    values: dict[str, Any] = {
        "call_id": call_id,
        "title": "AI call with Noura (Sales)",
        "body": "Interested in a two-bedroom apartment.",
        "timestamp": "2026-03-02T09:14:52.318Z",
        "direction": "inbound",
        "duration_seconds": 187,
        "status": "completed",
        "disposition": CONNECTED,
        "from_number": "+966501234567",
        "to_number": "+966112345678",
        "recording_url": "https://recordings.example.com/5d0b6a3e.mp3",
    }
    values.update(overrides)
    return Activity(**values)


def hubspot_env(hubspot: HubSpotSandbox, redis_url: str, mappings: Path = MAPPINGS) -> dict[str, str]:
    """The environment of a crmsync on ``redis_url`` syncing into the sandbox ``hubspot``
    with the mapping files in ``mappings``, numbers read as Saudi."""
    return {
        "REDIS_URL": redis_url,
        "CRM": "hubspot",
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "HUBSPOT_BASE_URL": hubspot.url,
        "MAPPINGS_DIR": str(mappings),
        "DEFAULT_REGION": "SA",
    }


def worker(base_url: str, redis_url: str, rounds: int, general: str, search: str) -> None:
    redis = Redis.from_url(redis_url)
    settings = HubSpotSettings(
        access_token=DEFAULT_TOKEN, base_url=base_url, rate_limit=general, search_rate_limit=search
    )
    connector = HubSpotConnector(settings, redis, timeout=(2, 5))
    try:
        for _ in range(rounds):
            connector.find_people("+14155551212", ["contact"], [])
            connector.check_credentials()
    finally:
        connector.close()
        redis.close()


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
