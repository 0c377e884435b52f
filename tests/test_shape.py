"""The import-linter contracts in pyproject.toml cover the whole package: a new top-level module
has to be placed in the layers (and so in the flow of a call) before it can be merged."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT

# The demo's side of the package: what the `demo` extra is for, never imported by the product.
DEMO_SIDE = {"crmsync.demo", "crmsync.harness", "crmsync.sandbox", "crmsync.localredis"}


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["type"] + ":" + c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def top_level_modules() -> set[str]:
    names = set()
    for path in (ROOT / "crmsync").iterdir():
        if path.suffix == ".py" and path.stem != "__init__" or (path / "__init__.py").is_file():
            names.add(f"crmsync.{path.stem}")
    return names


def stack() -> list[str]:
    (whole,) = [c for key, c in contracts().items() if key.startswith("layers:The whole stack")]
    return [m for layer in whole["layers"] for m in re.split(r"\s*[|:]\s*", layer)]


def test_every_module_is_in_the_whole_stack_or_on_the_demo_side():
    unplaced = top_level_modules() - set(stack()) - DEMO_SIDE
    assert not unplaced, f"place these in the layers of pyproject.toml's whole-stack contract: {sorted(unplaced)}"


def test_the_product_is_every_layer_below_the_entry_points():
    (forbidden,) = [c for key, c in contracts().items() if key.startswith("forbidden:The product never")]
    product = set(stack()) - {"crmsync.cli", "crmsync.demo"}
    assert set(forbidden["source_modules"]) == product
    assert DEMO_SIDE <= set(forbidden["forbidden_modules"])


def test_no_module_imports_itself_through_others():
    """import-linter's acyclic_siblings contract compares siblings; this also catches a package
    and its own modules importing each other (every import counts, in functions too)."""
    import grimp

    graph = grimp.build_graph("crmsync")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if module < imported and graph.chain_exists(importer=imported, imported=module):
                back = graph.find_shortest_chain(importer=imported, imported=module) or ()
                cycles.append(" -> ".join([module, *back]))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_every_enqueue_is_crmsync_queues():
    # Issue 10: crmsync.queue owns every enqueue (the job's description, timeouts, TTLs); the
    # product's other modules ask it. The sandboxes and the demo are not the product.
    calls = re.compile(r"\.(enqueue|enqueue_at|enqueue_in|enqueue_job|schedule_job|create_job)\(")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "crmsync").rglob("*.py"))
        if path.name != "queue.py" and not {"sandbox", "demo"} & set(path.parts)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if calls.search(line)
    ]
    assert found == []
