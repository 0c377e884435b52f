"""The README's laptop path: its exact ``honcho start …`` command keeps ``web`` and ``worker``
running, a webhook posted through it lands in the (sandbox) CRM, and Ctrl-C stops both."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest
import requests

from crmsync.harness import BIN, Process, crmsync_env, start_sandbox, wait_for, wait_http
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e
TOKEN = "laptop-webhook-token"
CALL_ID = "call_7f3a9c2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"  # the documented call.ended fixture


def readme_command() -> str:
    """The command of the README's "On a laptop" section that starts the processes."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("### On a laptop", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^honcho start.*$", section, flags=re.M)
    assert len(commands) == 1, f"the laptop section should show one honcho command, found {commands}"
    return commands[0]


def test_the_readme_laptop_command_keeps_web_and_worker_up(redis, redis_url, tmp_path, fixture_path):
    # A folder holding only the Procfile: honcho reads ./Procfile, and no developer's .env.
    shutil.copy(ROOT / "Procfile", tmp_path / "Procfile")
    port = free_port()
    sandbox = start_sandbox("hubspot")
    env = crmsync_env("hubspot", sandbox, redis_url, TOKEN, ROOT / "mappings", PORT=str(port), WEB_CONCURRENCY="1")
    env["PATH"] = f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin"  # `. .venv/bin/activate`
    honcho = Process(shlex.split(readme_command()), env, tmp_path / "honcho.log", cwd=tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        answer = requests.post(
            f"http://127.0.0.1:{port}/webhooks/hamsa",
            data=(fixture_path / "call_ended_documented.json").read_bytes(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=5,
        )
        assert (answer.status_code, answer.json()["status"]) == (200, "accepted"), answer.text
        wait_for(lambda: sandbox.calls_for(CALL_ID), 60, what="the call in the sandbox CRM")
        assert len(sandbox.calls_for(CALL_ID)) == 1
        assert honcho.alive(), honcho.output()  # nothing stopped web and worker
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

        os.kill(honcho.proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            honcho.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("honcho did not stop within 30 s of Ctrl-C:\n" + honcho.output())
        with pytest.raises(ProcessLookupError):  # web and worker went with it
            os.killpg(honcho.proc.pid, 0)
        output = honcho.output()
        for kind in ("web", "worker"):
            assert re.search(rf"^\S+ system\s+\| {kind}\.1 stopped", output, flags=re.M), output
        assert "release.1" not in output, output
    finally:
        honcho.stop()
        sandbox.stop()
