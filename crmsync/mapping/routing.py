"""Which mapping file a call uses (SPEC §6, "Several files per CRM").

Every ``*.yaml`` in ``MAPPINGS_DIR`` whose ``crm:`` is the active CRM takes part. A file may
say which calls it serves (``agents:``, ``projects:``, ``providers:``); the one that says
none of these is the default (at most one per CRM). A call uses, in this order:

1. the file whose ``agents:`` names the call's agent,
2. else the file whose ``projects:`` names its project,
3. else the file whose ``providers:`` names its platform (a call without one is ``hamsa``),
4. else the default;

and a file that declares several keys serves a call only when each of them agrees (a file
with ``agents: [a]`` and ``providers: [retell]`` does not take agent a's Hamsa calls). No
file and no default: the call is ``skipped`` with that reason. A file claims calls at the
level of its most specific key (agents, then projects, then providers); two files claiming
the same value at the same level would make the choice arbitrary, so ``check`` refuses it,
naming both files and lines. The single-file layout (``$CRM.yaml`` without routing keys) is
a folder with one default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmsync.canonical import CallView
from crmsync.errors import MappingError
from crmsync.mapping.loader import load_mapping
from crmsync.mapping.model import Mapping
from crmsync.mapping.source import YamlSyntaxError, read_yaml

LEVELS = ("agents", "projects", "providers")  # most specific first
CALL_KEYS = {"agents": "agent_id", "projects": "project_id", "providers": "provider"}


def claims(mapping: Mapping) -> dict[str, list[str]]:
    """The routing keys ``mapping`` declares: level -> values (empty: a default)."""
    out: dict[str, list[str]] = {}
    for level in LEVELS:
        values = getattr(mapping, level)
        if values:
            out[level] = [str(v) for v in values]
    return out


def level(mapping: Mapping) -> str | None:
    """The most specific routing key the file declares; None for the default."""
    return next(iter(claims(mapping)), None)


def _call_value(call: CallView, key: str) -> str | None:
    value = call.get(CALL_KEYS[key])
    if key == "providers":
        value = value or "hamsa"
    return None if value in (None, "") else str(value)


def serves(mapping: Mapping, call: CallView) -> bool:
    """Whether every routing key ``mapping`` declares agrees with ``call``."""
    return all(_call_value(call, key) in values for key, values in claims(mapping).items())


@dataclass
class Routes:
    """The files of one CRM, in name order, and the choice for a call."""

    crm: str
    mappings: list[Mapping] = field(default_factory=list)

    @property
    def default(self) -> Mapping | None:
        return next((m for m in self.mappings if level(m) is None), None)

    @property
    def events(self) -> list[str]:
        """Every event type some file syncs (the receiver queues those)."""
        return list(dict.fromkeys(e for m in self.mappings for e in m.events))

    @property
    def statuses(self) -> list[str]:
        """Every call status some file logs (the reconciliation sweep takes those)."""
        return list(dict.fromkeys(s for m in self.mappings for s in m.statuses))

    def choose(self, call: CallView) -> tuple[Mapping | None, str]:
        """The file for ``call`` and why (``agent agent-7``, ``default``); (None, the reason
        it is skipped) when no file serves it."""
        for key in LEVELS:
            value = _call_value(call, key)
            for mapping in self.mappings:
                if level(mapping) == key and serves(mapping, call):
                    return mapping, f"{key[:-1]} {value}"
        default = self.default
        if default is not None:
            return default, "default"
        parts = [f"{key[:-1]} {_call_value(call, key) or '(none)'}" for key in LEVELS]
        return None, (
            f"no mapping file serves this call ({', '.join(parts)}) and there is no default file "
            "(one without agents:, projects: or providers:)"
        )

    def table(self) -> list[dict[str, Any]]:
        """The routing table, most specific first: ``{file, serves, level}`` per file."""
        rows = []
        for mapping in sorted(self.mappings, key=lambda m: (_rank(m), m.path.name)):
            found = claims(mapping)
            serves_text = "; ".join(f"{k} {', '.join(v)}" for k, v in found.items()) or "every other call (default)"
            rows.append(
                {
                    "file": mapping.path.name,
                    "path": str(mapping.path),
                    "serves": serves_text,
                    "level": level(mapping) or "default",
                    **{k: found.get(k, []) for k in LEVELS},
                }
            )
        return rows


def _rank(mapping: Mapping) -> int:
    found = level(mapping)
    return LEVELS.index(found) if found else len(LEVELS)


def conflicts(mappings: list[Mapping]) -> list[str]:
    """Two files claiming the same agent (project, provider) at the same level, or two
    defaults, for one CRM: ``file:line: key: message`` naming the other file and line."""
    problems: list[str] = []
    by_crm: dict[str, list[Mapping]] = {}
    for mapping in mappings:
        by_crm.setdefault(mapping.crm, []).append(mapping)
    for crm, files in by_crm.items():
        seen: dict[tuple[str, str], tuple[Mapping, int]] = {}
        default: Mapping | None = None
        for mapping in sorted(files, key=lambda m: m.path.name):
            key = level(mapping)
            if key is None:
                if default is not None:
                    problems.append(
                        f"{mapping.path}:1: (top level): a second default {crm} mapping: "
                        f"{default.path.name} says nothing about which calls it serves either; "
                        "give one of them agents:, projects: or providers:"
                    )
                default = default or mapping
                continue
            for index, value in enumerate(claims(mapping)[key]):
                line = mapping.lines.get((key, index), mapping.lines.get((key,), 1))
                if (key, value) in seen:
                    other, other_line = seen[(key, value)]
                    problems.append(
                        f"{mapping.path}:{line}: {key}[{index}]: {key[:-1]} {value!r} is already "
                        f"claimed by {other.path}:{other_line}; each {key[:-1]} belongs to one {crm} "
                        "mapping file"
                    )
                else:
                    seen[(key, value)] = (mapping, line)
    return problems


def load_routes(directory: Path, crm: str) -> Routes:
    """The routes of ``crm`` from every file in ``directory``; ``MappingError`` listing every
    problem of every file (and every conflict) when one does not load."""
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    problems: list[str] = []
    loaded: list[Mapping] = []
    for file in files:
        try:
            loaded.append(load_mapping(file))
        except MappingError as exc:
            if _names_crm(file) in (crm, None):  # another CRM's broken file is the release check's to refuse
                problems.extend(exc.problems)
    mine = [m for m in loaded if m.crm == crm]
    problems += conflicts(mine)
    if not problems and not mine:
        problems.append(f"{directory}: no mapping file has crm: {crm}; add one (e.g. {directory / (crm + '.yaml')})")
    if problems:
        raise MappingError(problems)
    return Routes(crm=crm, mappings=mine)


def _names_crm(file: Path) -> str | None:
    """The ``crm:`` a file that does not load says, when it can be read at all."""
    try:
        data = read_yaml(file.read_text(encoding="utf-8")).data
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return None
    value = data.get("crm") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
