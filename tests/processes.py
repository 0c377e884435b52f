"""Real processes for end-to-end tests: the Procfile's own lines, run as subprocesses through
crmsync's one harness (``crmsync.harness``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from crmsync import harness
from crmsync.harness import crmsync_env, procfile_argv, start_sandbox, wait_for, wait_http

ROOT = Path(__file__).resolve().parent.parent


class Process(harness.Process):
    """Procfile process ``kind`` run from the repository, its output captured to a file in
    ``log_dir`` (read it with ``.output()``)."""

    def __init__(self, kind: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.kind = kind
        argv = procfile_argv(kind, ROOT / "Procfile")
        super().__init__(argv, env, log_dir / f"{kind}-{time.time_ns()}.log", cwd=ROOT)


def run_cli(env: Mapping[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``crmsync ARGS`` from the repository as the installed command, with ``env`` only (no
    PATH), its output captured as text."""
    return subprocess.run(
        [str(harness.BIN / "crmsync"), *args],
        env={**env, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


__all__ = ["Process", "crmsync_env", "start_sandbox", "wait_for", "wait_http"]
