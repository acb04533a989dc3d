"""Honest packaging: every third-party module lakegate imports is a declared dependency of the part that imports
it (the base package, or the extra of an optional feature), so `pip install lakegate` with no extras starts.

The wheel itself is installed into a fresh venv and served from by scripts/smoke-wheel.sh (run by .ci/run);
this test catches an undeclared import at once, without building anything.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lakegate"
# Sub-packages that only run with an extra installed: their imports may come from that extra too.
EXTRA_OF = {"cloud/azure": "azure", "cloud/gcp": "gcp", "client": "client"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _normalize(match.group(1))


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_requirement_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_requirement_name(r) for r in reqs}
        for extra, reqs in project.get("optional-dependencies", {}).items()
    }
    return base, extras


_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def _names(node: ast.expr | None) -> list[str]:
    """The exception names in `except X` / `except (X, Y)` / `suppress(X, Y)` arguments."""
    items = node.elts if isinstance(node, ast.Tuple) else [node] if node is not None else []
    return [
        n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else "" for n in items
    ]


def _suppresses_import_error(item: ast.withitem) -> bool:
    call = item.context_expr
    if not isinstance(call, ast.Call) or _names(call.func) != ["suppress"]:
        return False
    return any(name in _IMPORT_ERRORS for arg in call.args for name in _names(arg))


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `try: ... except ImportError:` or `with suppress(ImportError):` (an optional import the code
    does without)."""
    while node in parents:
        parent = parents[node]
        try_guard = (
            isinstance(parent, ast.Try)
            and node in parent.body
            and any(name in _IMPORT_ERRORS for h in parent.handlers for name in _names(h.type))
        )
        with_guard = (
            isinstance(parent, ast.With)
            and node in parent.body
            and any(_suppresses_import_error(item) for item in parent.items)
        )
        if try_guard or with_guard:
            return True
        node = parent
    return False


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the non-stdlib, non-lakegate modules a file imports (unguarded, at any depth)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if _guarded(node, parents):
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("lakegate", "__future__"):
                found.add(top)
    return found


def _extra_for(path: Path) -> str | None:
    relative = path.relative_to(PACKAGE).as_posix()
    return next((extra for prefix, extra in EXTRA_OF.items() if relative.startswith(prefix + "/")), None)


def test_every_import_is_a_declared_dependency() -> None:
    base, extras = _declared()
    distributions = packages_distributions()
    undeclared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        extra = _extra_for(path)
        allowed = base | (extras[extra] if extra else set())
        for module in sorted(third_party_imports(path)):
            provided_by = {_normalize(d) for d in distributions.get(module, [])}
            assert provided_by, f"{module} (imported by {path.relative_to(ROOT)}) is not installed"
            if not provided_by & allowed:
                where = f"the '{extra}' extra" if extra else "[project] dependencies"
                undeclared.append(
                    f"{path.relative_to(ROOT)}: {module} ({'/'.join(sorted(provided_by))}) not in {where}"
                )
    assert not undeclared, "\n".join(undeclared)


def test_the_checker_sees_function_level_imports_and_skips_guarded_ones(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport numpy as np\nfrom lakegate.config import ServerConfig\n"
        "def f():\n    from yaml import safe_load\n"
        "try:\n    import pandas\nexcept ImportError:\n    pass\n"
        "with contextlib.suppress(ImportError):\n    import polars\n"
        "with suppress(KeyError):\n    import boto3\n"
    )
    assert third_party_imports(sample) == {"numpy", "yaml", "boto3"}
