"""Mapping templates: Jinja2 in its sandbox, checked when the mapping loads.

Jinja2's ``SandboxedEnvironment`` refuses unsafe attribute access only when a template
renders (and ``{{ call.__class__ }}`` even renders as an empty string). SPEC §6 wants such a
template refused when the mapping loads, so ``compile_template`` walks the parse tree first
and rejects every name, attribute, subscript or ``attr`` filter argument starting with
``_``, and every tag that reaches outside the template (``include``, ``import``,
``extends``). What passes is compiled once; rendering still runs in the sandbox.

Templates see the canonical call (``crmsync.mapping.context``). An undefined value renders
as an empty string and may be chained (``outcome.address.city`` when ``address`` is
missing), so a call without some outcome key still renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from crmsync.mapping.context import CALL_KEYS, ROOTS, suggest

FALSY = ("", "false", "no", "n", "0", "off", "none", "null")


class TemplateProblem(Exception):
    """A template that must not load; the message says why and what to do."""


class Template:
    """A compiled, checked template. ``render(context)`` returns text (None renders as "")."""

    def __init__(self, source: str, compiled: Any) -> None:
        self.source = source
        self._compiled = compiled

    def render(self, context: Mapping[str, Any]) -> str:
        """Render in the sandbox. Raises jinja2 errors (e.g. ``SecurityError``) on failure."""
        return str(self._compiled.render(**context))

    def truthy(self, context: Mapping[str, Any]) -> bool:
        """Whether the rendered text counts as true (for ``when:``); see ``FALSY``."""
        return self.render(context).strip().lower() not in FALSY

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def environment() -> SandboxedEnvironment:
    """The one environment mapping templates run in: sandboxed, no loader, lenient undefined."""
    env = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False)
    env.finalize = lambda value: "" if value is None else value
    return env


def compile_template(source: str, env: SandboxedEnvironment) -> Template:
    """Parse, check and compile ``source``. Raises ``TemplateProblem`` naming the first fault."""
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if exc.lineno and exc.lineno > 1 else ""
        raise TemplateProblem(f"template syntax error{where}: {exc.message}") from None
    _refuse_unsafe(tree)
    _check_names(tree, env)
    return Template(source, env.from_string(tree))


def _refuse_unsafe(tree: nodes.Template) -> None:
    for tag_node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        tag = type(tag_node).__name__.lower().replace("fromimport", "from ... import")
        raise TemplateProblem(f'"{{% {tag} %}}" is not allowed: a mapping template cannot load others')
    for node in tree.find_all(nodes.Node):
        name = None
        if isinstance(node, nodes.Name):
            name = node.name
        elif isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter | nodes.Test) and node.name == "attr":
            for arg in node.args:
                if isinstance(arg, nodes.Const):
                    name = arg.value
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(
                f'"{name}" is not allowed: templates may not use names starting with _ '
                "(they reach into Python internals)"
            )


def _check_names(tree: nodes.Template, env: SandboxedEnvironment) -> None:
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in ROOTS and name not in env.globals:
            roots = ", ".join(ROOTS)
            raise TemplateProblem(f'unknown name "{name}": templates see {roots}{suggest(name, ROOTS)}')
    for node in tree.find_all(nodes.Getattr):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "call" and node.attr not in CALL_KEYS:
            keys = ", ".join(CALL_KEYS) + suggest(node.attr, CALL_KEYS)
            raise TemplateProblem(f'"call.{node.attr}" does not exist: call has {keys}')
