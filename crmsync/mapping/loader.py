"""Loading and validating mapping files (SPEC §6).

``load_mapping(path)`` returns a ``Mapping`` or raises ``MappingError`` listing every
problem in the file at once, each as ``path:line: key.path: message`` where the message
says what would be valid (and, for a misspelling, the nearest valid name). Templates are
compiled while checking, in the sandbox, so a template that reaches for Python internals never
loads. ``check_dir(dir)`` does the same for every ``*.yaml`` in a folder and returns the problems.

The file is read with line numbers by ``crmsync.mapping.source``; ``crmsync.mapping.sections``
checks each section (with ``crmsync.mapping.checks``) and builds the ``Mapping``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from crmsync.errors import MappingError
from crmsync.mapping.model import Mapping
from crmsync.mapping.sections import MappingChecker
from crmsync.mapping.source import YamlSyntaxError, read_yaml


def load_mapping(path: str | Path) -> Mapping:
    """The mapping at ``path``; raises ``MappingError`` with every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise MappingError([f"{path}: cannot read the file: {reason}"]) from None
    return load_text(text, path)


def load_text(text: str, path: str | Path) -> Mapping:
    """A mapping from ``text`` as if it were the file ``path`` (a draft pasted in the console
    too); raises ``MappingError`` with every problem found, each naming ``path`` and line."""
    try:
        located = read_yaml(text)
    except YamlSyntaxError as exc:
        raise MappingError([f"{path}:{exc.line}: {exc.message}"]) from None
    checker = MappingChecker(Path(path), located)
    mapping = checker.mapping()
    mapping.digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    if checker.problems:
        raise MappingError(checker.sorted_problems())
    return mapping


def check_dir(directory: str | Path) -> list[str]:
    """Every problem of every ``*.yaml`` mapping in ``directory`` (empty: all valid)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        return [f"{directory}: no mapping files (*.yaml) found; set MAPPINGS_DIR to the folder that has them"]
    problems: list[str] = []
    for file in files:
        try:
            load_mapping(file)
        except MappingError as exc:
            problems.extend(exc.problems)
    return problems
