"""The shared process harness (``crmsync.harness``) reads the Procfile the way honcho does."""

from __future__ import annotations

import subprocess
import sys

from crmsync import harness
from tests.conftest import ROOT


def test_the_packaged_lines_are_the_procfiles_long_running_processes(tmp_path, monkeypatch):
    lines = harness.procfile(ROOT / "Procfile")
    assert set(lines) == {"web", "worker", "release"}
    monkeypatch.chdir(tmp_path)  # no ./Procfile: an installed crmsync outside the repository
    assert harness.procfile() == {"web": lines["web"], "worker": lines["worker"]}
    monkeypatch.chdir(ROOT)
    assert harness.procfile() == lines


def test_procfile_argv_runs_this_interpreters_programs():
    argv = harness.procfile_argv("web", ROOT / "Procfile")
    assert argv[0] == str(harness.BIN / "gunicorn")
    assert argv[1:] == ["--config", "python:crmsync.web.gunicorn_conf", "crmsync.web:create_app()"]


def test_a_process_never_inherits_a_crmsync_setting(monkeypatch):
    monkeypatch.setenv("SALESFORCE_USERNAME", "someone@example.com")
    monkeypatch.setenv("HOME", "/home/someone")
    env = harness.clean_environ({"CRM": "hubspot"})
    assert "SALESFORCE_USERNAME" not in env
    assert (env["CRM"], env["HOME"], env["PYTHONUNBUFFERED"]) == ("hubspot", "/home/someone", "1")


def test_the_demo_without_its_extra_says_what_to_install():
    code = "import sys; sys.modules['honcho'] = None; from crmsync.demo import run_demo; run_demo()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "crmsync demo needs the demo extra (missing honcho): pip install 'crmsync[demo]', or run make demo in the "
        "repository"
    )
