"""The package keeps its layers (docs/architecture.md, "Layers"): no import cycle anywhere in src/lakegate, and
imports only point down.

Every import counts: module-level, inside functions (lazy) and under `TYPE_CHECKING`, because each of them is a
dependency a reader has to follow. The graph is read from the source with `ast`, so nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Packages that must never import the layers above them (docs/architecture.md).
FORBIDDEN = {
    "lakegate.protocol": ("lakegate.service", "lakegate.http", "lakegate.server", "lakegate.cli"),
    "lakegate.delta": ("lakegate.service", "lakegate.http", "lakegate.server", "lakegate.cli"),
    "lakegate.cloud": ("lakegate.service", "lakegate.http", "lakegate.server", "lakegate.cli"),
    "lakegate.catalog": ("lakegate.service", "lakegate.http", "lakegate.server", "lakegate.cli"),
    "lakegate.auth": (
        "lakegate.catalog",
        "lakegate.service",
        "lakegate.http",
        "lakegate.server",
        "lakegate.cli",
    ),
    "lakegate.iceberg": (
        "lakegate.service",
        "lakegate.http",
        "lakegate.server",
        "lakegate.cli",
        "lakegate.catalog",
    ),
    "lakegate.service": ("lakegate.http", "lakegate.server", "lakegate.cli"),
    "lakegate.exceptions": ("lakegate.",),
}


def _modules(src: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The lakegate modules `name` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # `from pkg import module` imports the module
                submodule = f"{module}.{alias.name}"
                targets.add(submodule if submodule in modules else module)
    resolved = set()
    for imported in targets:
        target = imported
        while target not in modules and "." in target:  # `import lakegate.x.Name`-style: its module
            target = target.rpartition(".")[0]
        if target in modules and target != name:
            resolved.add(target)
    return resolved


GRAPH = _graph(_modules(SRC, "lakegate"))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan), as a path a→…→a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_through(graph, set(c), c[0]) for c in components]


def _path_through(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """A shortest cycle from `start` back to itself inside `component` (breadth-first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    return [start]


def test_every_kind_of_import_makes_an_edge(tmp_path: Path) -> None:
    """The checker itself, on a package of its own: lazy, TYPE_CHECKING, relative and `from pkg import mod`
    imports each count, and a cycle through them is found."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import Name\n"
    )
    (package / "sub" / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg.sub.c import Name\n")
    graph = _graph(_modules(tmp_path, "pkg"))
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"} and graph["pkg.d"] == {"pkg.sub.c"}
    assert _cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]
    (package / "sub" / "c.py").write_text("import json\n")
    assert _cycles(_graph(_modules(tmp_path, "pkg"))) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_down(layer: str) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name == layer or name.startswith(layer + ".")
        for target in targets
        if any(target == f or target.startswith(f) for f in FORBIDDEN[layer])
    )
    assert not wrong, "\n".join(wrong)
