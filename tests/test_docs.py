"""Docs that tests check: the README and app.json keep up with the code.

A new environment variable, command, option or Procfile process fails one of these
tests until it is documented.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from crmsync.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
APP_JSON = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))

# How the code reads the environment: Settings.from_env's get("NAME") and its
# int_var(get, "NAME", ...) / rate_var(get, "NAME", ...) helpers, and os.environ / os.getenv.
READS = [
    re.compile(r"""(?<![.\w])(?:get|int_var|rate_var)\(\s*(?:get\s*,\s*)?["']([A-Z][A-Z0-9_]*)["']"""),
    re.compile(r"""\bos\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']"""),
    re.compile(r"""\bos\.getenv\(\s*["']([A-Z][A-Z0-9_]*)["']"""),
]
# Read by a library on crmsync's behalf (requests), named in SPEC §3: documented too.
READ_BY_LIBRARIES = {"REQUESTS_CA_BUNDLE"}
# Set by the platform itself; an app.json entry would fight the router.
SET_BY_PLATFORM = {"PORT"}


def env_vars_in_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "crmsync").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in READS:
            names.update(pattern.findall(text))
    return names


def readme_settings_table() -> set[str]:
    """Names in the first column of the README's settings table rows."""
    names: set[str] = set()
    for line in README.splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names


def test_code_reads_the_variables_we_expect():
    # Guards the scanner itself: if these disappear, the regexes stopped matching.
    found = env_vars_in_code()
    assert {"REDIS_URL", "WEBHOOK_TOKENS", "SALESFORCE_DAILY_BUDGET", "HUBSPOT_RATE_LIMIT", "GUNICORN_THREADS"} <= found


def test_every_env_var_in_readme_table():
    missing = sorted((env_vars_in_code() | READ_BY_LIBRARIES) - readme_settings_table())
    assert not missing, f"environment variables missing from the README's settings table: {missing}"


def test_every_env_var_in_app_json():
    missing = sorted(env_vars_in_code() - SET_BY_PLATFORM - set(APP_JSON["env"]))
    assert not missing, f"environment variables missing from app.json's env: {missing}"


def test_app_json_documents_only_real_variables():
    unknown = sorted(set(APP_JSON["env"]) - env_vars_in_code() - READ_BY_LIBRARIES)
    assert not unknown, f"app.json names variables the code never reads: {unknown}"
    undescribed = sorted(name for name, entry in APP_JSON["env"].items() if not entry.get("description"))
    assert not undescribed, f"app.json env entries without a description: {undescribed}"


def test_app_json_deploys_with_redis():
    assert "heroku-redis" in APP_JSON["addons"]
    assert set(APP_JSON["formation"]) == {"web", "worker"}
    assert APP_JSON["env"]["WEBHOOK_TOKENS"].get("generator") == "secret"
    assert APP_JSON["env"]["CRM"].get("required") is True


def commands(group: click.Group, prefix: str = "crmsync") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found += commands(command, path)
    return found


COMMANDS = commands(main)


def test_walk_finds_subcommands():
    paths = {path for path, _ in COMMANDS}
    assert {"crmsync mappings check", "crmsync mappings preview", "crmsync quarantine list"} <= paths


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
def test_every_command_in_readme(path):
    assert path in README, f"{path!r} is not in the README"


@pytest.mark.parametrize("path,command", COMMANDS)
def test_every_option_in_readme(path, command):
    missing = [
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--") and opt not in README
    ]
    assert not missing, f"options of {path!r} missing from the README: {missing}"


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(
        (part.strip() for part in line.split(":", 1)) for line in lines if line.strip() and not line.startswith("#")
    )


@pytest.mark.parametrize("kind,command", sorted(procfile().items()))
def test_every_procfile_process_in_readme(kind, command):
    assert f"`{kind}`" in README, f"Procfile process {kind!r} is not described in the README"
    assert command in README, f"the README does not show the Procfile's {kind} command: {command!r}"


@pytest.mark.parametrize("make", ["make test", "make demo", "make bench"])
def test_readme_shows_make_commands(make):
    assert f"{make}\n" in README or f"`{make}`" in README, f"the README does not show {make!r}"


# The README's "Project layout" block: an entry is a name at the start of a line indented by less
# than DESCRIPTION_COLUMN (`web/`, `queue.py`); its text is that line and the description lines
# under it, up to the next entry.
DESCRIPTION_COLUMN = 16
PY_NAME = re.compile(r"(?<![\w/.*])([A-Za-z_]\w*\.py)\b")


def layout_entries() -> dict[str, str]:
    """Each entry's path (``crmsync/web/``, ``crmsync/queue.py``, ``docs/``) → its text."""
    block = README.split("## Project layout", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    entries: dict[str, str] = {}
    parents: list[tuple[int, str]] = []  # (indent, path) of the entries that enclose the next one
    current = None
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        if line.strip() and indent < DESCRIPTION_COLUMN:
            while parents and parents[-1][0] >= indent:
                parents.pop()
            current = (parents[-1][1] if parents else "") + line.split()[0]
            assert current not in entries, f"the Project layout lists {current!r} twice"
            entries[current] = line
            if current.endswith("/"):
                parents.append((indent, current))
        elif current is not None:
            entries[current] += "\n" + line
    return entries


LAYOUT = layout_entries()


def test_layout_parser_reads_the_block():
    # Guards the parser itself: nested packages, modules and their description lines.
    assert {"crmsync/", "crmsync/web/", "crmsync/web/console/", "crmsync/queue.py", "docs/", "tests/"} <= set(LAYOUT)
    assert "webhooks.py" in LAYOUT["crmsync/web/"]


def test_layout_names_every_package_and_module():
    """A package has an entry (``crm/``); a module of crmsync/ has an entry of its own (``queue.py``);
    a module inside a package is named in that package's entry text (``webhooks.py`` under ``web/``)."""
    missing = []
    for path in sorted((ROOT / "crmsync").rglob("*.py")):
        folder = path.parent.relative_to(ROOT).as_posix() + "/"
        if folder not in LAYOUT:
            missing.append(f"{folder} (an entry of its own)")
        elif path.name == "__init__.py":
            continue
        elif folder == "crmsync/":
            if f"crmsync/{path.name}" not in LAYOUT:
                missing.append(f"crmsync/{path.name} (an entry of its own)")
        elif path.name not in PY_NAME.findall(LAYOUT[folder]):
            missing.append(f"{folder}{path.name} (named in the {folder} entry)")
    assert not missing, f"README.md's Project layout does not name: {sorted(set(missing))}"


def test_layout_names_every_docs_page():
    """Every folder of docs/ has an entry; every Markdown page is named in its folder's entry text."""
    missing = [
        f"{folder.relative_to(ROOT).as_posix()}/ (an entry of its own)"
        for folder in sorted((ROOT / "docs").rglob("*"))
        if folder.is_dir() and f"{folder.relative_to(ROOT).as_posix()}/" not in LAYOUT
    ]
    for page in sorted((ROOT / "docs").rglob("*.md")):
        folder = page.parent.relative_to(ROOT).as_posix() + "/"
        if folder in LAYOUT and not re.search(rf"(?<![\w/.]){re.escape(page.name)}\b", LAYOUT[folder]):
            missing.append(f"{folder}{page.name} (named in the {folder} entry)")
    assert not missing, f"README.md's Project layout does not name: {missing}"


def test_layout_names_only_what_exists():
    stale = [path for path in LAYOUT if not (ROOT / path).exists()]
    for path, text in LAYOUT.items():
        folder = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
        if folder.startswith("crmsync/"):
            stale += [folder + name for name in PY_NAME.findall(text) if not (ROOT / folder / name).exists()]
    assert not stale, f"README.md's Project layout names what is not in the tree: {sorted(set(stale))}"
