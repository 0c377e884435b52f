"""The problems of one mapping file, each with its line, and the checks every section uses.

``Checker(path, located)`` collects problems as ``path:line: key.path: message``
(``err``); its checks (``keys``, ``choice``, ``template``, ``source_path``, ``value_map``,
``string_list``, ``routing_id``) report what is wrong and return what is usable, so one
pass finds every problem. ``crmsync.mapping.sections`` walks the sections with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from crmsync.mapping.context import check_path, suggest
from crmsync.mapping.model import map_key
from crmsync.mapping.source import KeyPath, Located, path_text
from crmsync.mapping.templates import Template, TemplateProblem, compile_template, environment

SCALARS = (str, int, float, bool)


class Checker:
    """Problems found in one parsed file, and the generic checks that find them."""

    def __init__(self, path: Path, located: Located) -> None:
        self.file = path
        self.located = located
        self.env: SandboxedEnvironment = environment()
        self.found: list[tuple[int, str]] = [
            (line, f"{path}:{line}: {path_text(key)}: {message}") for line, key, message in located.problems
        ]

    @property
    def problems(self) -> list[str]:
        return [text for _, text in self.found]

    def sorted_problems(self) -> list[str]:
        return [text for _, text in sorted(self.found, key=lambda item: item[0])]

    def err(self, path: KeyPath, message: str) -> None:
        line = self.located.line(path)
        self.found.append((line, f"{self.file}:{line}: {path_text(path)}: {message}"))

    def keys(self, path: KeyPath, obj: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> bool:
        if not isinstance(obj, dict):
            self.err(path, f"must be a mapping with keys {', '.join(allowed)}")
            return False
        for key in obj:
            if key not in allowed:
                self.err(
                    (*path, self.located.key_text(path, key)),
                    f'unknown key "{key}"{suggest(key, allowed)}; valid keys: {", ".join(allowed)}',
                )
        for key in required:
            if key not in obj:
                self.err(path, f'"{key}" is required')
        return True

    def choice(self, path: KeyPath, value: Any, choices: tuple[str, ...]) -> str | None:
        if isinstance(value, str) and value in choices:
            return value
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        self.err(path, f"{shown} is not one of {', '.join(choices)}{suggest(value, choices)}")
        return None

    def template(self, path: KeyPath, value: Any) -> Template | None:
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, SCALARS):
            self.err(path, 'must be text (a template such as "{{ outcome.summary }}")')
            return None
        try:
            return compile_template(str(value), self.env)
        except TemplateProblem as exc:
            self.err(path, str(exc))
            return None

    def source_path(self, path: KeyPath, value: Any) -> str | None:
        problem = check_path(value)
        if problem:
            self.err(path, problem)
            return None
        return str(value)

    def value_map(self, path: KeyPath, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict) or not value:
            self.err(path, "must be a mapping of source value -> CRM value, such as {high: High, low: Low}")
            return None
        out: dict[str, Any] = {}
        for key, target in value.items():
            where = (*path, self.located.key_text(path, key))
            if isinstance(key, bool) or key is None:
                read, text = str(key).lower(), where[-1]
                self.err(where, f'YAML reads this key as {read}: quote it ("{text}": ...) to mean the text')
                continue
            if target is not None and not isinstance(target, SCALARS):
                self.err(where, "the CRM value must be text, a number, true/false or null (leave alone)")
                continue
            out[map_key(key)] = target
        return out

    def string_list(self, path: KeyPath, value: Any, example: str) -> list[Any] | None:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.err(path, f"must be a list such as {example}")
            return None
        return value

    def routing_id(self, path: KeyPath, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            self.err(path, "must be an id (text), such as agent-growth-2")
            return False
        return True
