"""The import graph of a Python package, read from its source with :mod:`ast` (nothing imported).

:func:`import_graph` maps each module of a package to the package's own modules it imports.
What counts as an import, and why:

* every ``import`` and ``from ... import`` anywhere in the file: at module level, inside
  functions (a lazy import is still a dependency, only a later one), and under
  ``if TYPE_CHECKING:`` (an annotation naming a class of another layer is knowledge of that
  layer: moving it behind ``TYPE_CHECKING`` hides a wrong direction from the interpreter, not
  from the reader);
* ``from pkg import name`` depends on ``pkg.name`` when that is a module, else on ``pkg``
  (its ``__init__``). ``from pkg import sub`` and ``from pkg.sub import x`` are the same
  dependency on ``sub``: neither uses what ``pkg/__init__.py`` defines, though Python runs it
  for both.

:func:`cycles` gives the strongly connected components of more than one module.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package_dir``."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: Mapping[str, Path]
) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    if node.level:
        here = module if is_package else module.rpartition(".")[0]
        parts = here.split(".")
        anchor = parts[: len(parts) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    found: set[str] = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            found.add(submodule)
        elif base in known:
            found.add(base)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (itself excluded)."""
    modules = package_modules(package_dir)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets |= _imported(name, path.name == "__init__.py", node, modules)
        graph[name] = targets - {name}
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
    """Import cycles: strongly connected components of two or more modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)
