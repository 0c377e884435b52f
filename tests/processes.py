"""Real processes for end-to-end tests: the Procfile's own lines, run as subprocesses."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from crmsync.localredis import wait_http

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Settings the test machine may have exported: each test says what its processes get.
CRMSYNC_VARIABLES = {
    "CRM", "WEBHOOK_TOKENS", "WEBHOOK_AUTH", "MAPPINGS_DIR", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_BASE_URL",
    "SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN", "DEFAULT_REGION", "METRICS_TOKEN",
}


def procfile_command(kind: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            parts = shlex.split(command.strip())
            return [str(BIN / parts[0])] + parts[1:]
    raise KeyError(kind)


class Process:
    """A Procfile process with its output captured to a file (read it with ``.output()``)."""

    def __init__(self, kind: str, env: dict[str, str], log_dir: Path) -> None:
        self.kind = kind
        self.log_path = log_dir / f"{kind}-{time.time_ns()}.log"
        self._log = self.log_path.open("wb")
        full_env = {**{k: v for k, v in os.environ.items() if k not in CRMSYNC_VARIABLES}, **env,
                    "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            procfile_command(kind), cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no clean-up."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


__all__ = ["Process", "procfile_command", "wait_for", "wait_http"]
