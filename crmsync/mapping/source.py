"""YAML with line numbers: what ``yaml.safe_load`` builds, plus where each value was written.

``read_yaml(text)`` composes the document with PyYAML's ``SafeLoader`` (so no tag can build
a Python object) and constructs plain values node by node, remembering the line of every
mapping key and sequence item. Lines are keyed by the value's path, a tuple such as
``("fields", 2, "type")``, and are 1-based as an editor shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


def path_text(path: Iterable[str | int]) -> str:
    """``("fields", 2, "type")`` → ``fields[2].type``; the empty path is ``(top level)``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass
class Located:
    """A parsed YAML document and the line of every value in it."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[tuple[int, KeyPath, str]] = field(default_factory=list)  # duplicate keys and the like
    written: dict[tuple[KeyPath, Any], str] = field(default_factory=dict)  # (path, non-text key) -> as written

    def key_text(self, path: KeyPath, key: Any) -> str:
        """A key as the file wrote it (``yes``, not ``True``)."""
        return key if isinstance(key, str) else self.written.get((path, key), str(key))

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest written ancestor (1 for the top level)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_yaml(text: str) -> Located:
    """Parse one YAML document. Raises ``YamlSyntaxError`` when it does not parse."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        located = Located(data=None)
        if node is not None:
            located.lines[()] = node.start_mark.line + 1
            located.data = _build(loader, node, (), located)
        return located
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML error: {exc}") from None
    finally:
        loader.dispose()


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, located: Located) -> Any:
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        raise YamlSyntaxError(
            node.start_mark.line + 1, f"YAML error: the tag {node.tag} is not allowed: mapping files are plain YAML"
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<) as safe_load does
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                located.problems.append((key_node.start_mark.line + 1, path, "a key must be a plain word"))
                continue
            if not isinstance(key, str):
                located.written[(path, key)] = str(key_node.value)
            child = (*path, located.key_text(path, key))
            line = key_node.start_mark.line + 1
            if key in out:
                located.problems.append(
                    (
                        line,
                        child,
                        f"duplicate key {key!r}: the one on line "
                        f"{located.lines.get(child, '?')} would be ignored; keep one",
                    )
                )
            located.lines[child] = line
            out[key] = _build(loader, value_node, child, located)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            located.lines[child] = item.start_mark.line + 1
            items.append(_build(loader, item, child, located))
        return items
    return loader.construct_object(node, deep=True)
