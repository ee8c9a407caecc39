"""The package is layered: no import cycle between the subpackages of `noisymss`, nor between its modules.

Imports are read with `ast` (not by importing), at module level and inside functions alike: a
function-level import that closes a cycle is the same tangle, only deferred to run time.
"""
from __future__ import annotations

import ast
from pathlib import Path

import noisymss

PACKAGE = Path(noisymss.__file__).parent


def module_name(path: Path) -> str:
    """'noisymss.audio.io' for noisymss/audio/io.py, 'noisymss.audio' for noisymss/audio/__init__.py."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The `noisymss` modules a file imports anywhere in it (`from a import b` counts a.b when b is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from this file's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    """{module: the noisymss modules it imports}, for every module of the package."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) for name, path in paths.items()}


def subpackage(module: str) -> str:
    """The layer a module belongs to: 'noisymss.data' for noisymss.data.sources.musdb, itself for top-level modules."""
    return ".".join(module.split(".")[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # absent: unseen, 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_names_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle)


def test_no_import_cycle_between_subpackages():
    layers: dict[str, set[str]] = {}
    for module, imports in import_graph().items():
        edges = layers.setdefault(subpackage(module), set())
        edges.update(subpackage(m) for m in imports if subpackage(m) != subpackage(module))
    cycle = find_cycle(layers)
    assert cycle is None, "import cycle between subpackages: " + " -> ".join(cycle)
