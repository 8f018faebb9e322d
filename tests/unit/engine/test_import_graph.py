"""The engine's modules import each other without a cycle, type-only imports (``if
TYPE_CHECKING:``) included, and the layers stay apart: the store (``engine.store``) knows
neither the write pipeline nor the guard nor the rule effects, and the pipeline names no
action kind's handler (it finds them by kind, ``engine.effects``)."""

from __future__ import annotations

import ast
from pathlib import Path

import engine

ROOT = Path(engine.__file__).parent.parent


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """What the module imports at module level or for type checking (``if`` blocks, ``try``
    blocks), not in functions: a function's import runs when it is called, after every
    module has loaded. ``from a.b import c`` imports ``a.b.c`` when that is a module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package[: len(package) - node.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in known else base)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                if isinstance(node, ast.Try):
                    for handler in node.handlers:
                        visit(handler.body)
                    visit(node.finalbody)

    visit(ast.parse(path.read_text("utf-8")).body)
    return {module for module in found if module in known and module != name}


PRODUCT_PACKAGES = ("engine", "metadata", "runtime", "cli")


def _graph(packages: tuple[str, ...] = ("engine",)) -> dict[str, set[str]]:
    modules = {name: path for package in packages for name, path in _modules(package).items()}
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    path: list[str] = []
    done: set[str] = set()

    def walk(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = walk(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    return walk(start)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for target in graph[node] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_no_import_cycle_between_product_modules() -> None:
    graph = _graph(PRODUCT_PACKAGES)
    assert "engine.writes.pipeline" in graph["engine.guard"]  # type-only imports are seen
    assert "metadata._yaml" in graph["metadata._errors"]
    for name in sorted(graph):
        cycle = _cycle_from(graph, name)
        assert cycle is None, " -> ".join(cycle)


def test_the_store_knows_neither_the_pipeline_nor_the_guard() -> None:
    graph = _graph()
    for name in (n for n in graph if n == "engine.store" or n.startswith("engine.store.")):
        reached = _reachable(graph, name)
        layered = {
            n for n in reached if n.startswith(("engine.writes", "engine.effects", "engine.guard"))
        }
        assert not layered, f"{name} imports {sorted(layered)}"


def test_the_pipeline_names_no_action_handler() -> None:
    graph = _graph()
    handlers = {
        n
        for n in graph
        if n.startswith("engine.effects.") and not n.rsplit(".", 1)[1].startswith("_")
    } - {"engine.effects.triggers"}
    assert {"engine.effects.create", "engine.effects.email"} <= handlers
    for name in (n for n in graph if n.startswith("engine.writes")):
        assert not graph[name] & handlers, f"{name} imports {sorted(graph[name] & handlers)}"
    for handler in handlers:  # nothing but the registry's own loading imports a handler
        importers = sorted(n for n, targets in graph.items() if handler in targets)
        assert not importers, f"{importers} import {handler}"
