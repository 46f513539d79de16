"""The layers of arroyo_lite import in one direction, and no modules import each other in a cycle.

The layers, lowest first (README "Development"; a module may import its own layer and those
below it, never one above)::

    values      errors config clock secrets _version
    language    sql/ connectors/ formats/      (connectors/ never imports sql/)
                infer/ (a schema from a sample: body -> CREATE TABLE text)
    runtime     runtime/
    query       query/
    session     session.py, cluster/ (the two ways a program runs: here, or deployed to an
                Arroyo cluster), and the package root (the public API re-exports them)
    terminal    terminal/
    front ends  cli/ demo/

Imports are read from the source with :mod:`ast` (:mod:`tests.support.imports` says what
counts: imports inside functions and under ``TYPE_CHECKING`` do). ``ALLOWED`` lists today's
violations; it may only shrink: a new violation fails :func:`test_imports_follow_the_layers`,
and a listed one that is gone fails :func:`test_allow_list_has_no_fixed_entries` until its
entry is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from pathlib import Path

import pytest

import arroyo_lite
from tests.support.imports import cycles, import_graph

PACKAGE_DIR = Path(arroyo_lite.__file__).parent
ROOT = "arroyo_lite"

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("values", frozenset({"errors", "config", "clock", "secrets", "_version"})),
    ("language", frozenset({"sql", "connectors", "formats", "infer"})),
    ("runtime", frozenset({"runtime"})),
    ("query", frozenset({"query"})),
    ("session", frozenset({"session", "cluster", ""})),  # "": the root, arroyo_lite/__init__.py
    ("terminal", frozenset({"terminal"})),
    ("front ends", frozenset({"cli", "demo"})),
)

# Imports forbidden inside one layer: (importer, imported) top-level parts.
FORBIDDEN_WITHIN_LAYER: frozenset[tuple[str, str]] = frozenset(
    {("connectors", "sql")}  # the plugin API must not need the SQL front end
)

# Known violations, each removed by the change that fixes it; never add to it. Empty since
# query/ broke the engine <-> continuous cycle.
ALLOWED: frozenset[str] = frozenset()


def part_of(module: str) -> str:
    """The top-level part a module belongs to: ``arroyo_lite.sql.parse`` -> ``sql``."""
    return module.split(".")[1] if "." in module else ""


def layer_of(part: str) -> int | None:
    """Index of the layer holding ``part``, or ``None`` if no layer does."""
    for rank, (_name, parts) in enumerate(LAYERS):
        if part in parts:
            return rank
    return None


def short(module: str) -> str:
    return module.removeprefix(ROOT + ".") if module != ROOT else "(package root)"


def violations(graph: Mapping[str, Set[str]]) -> set[str]:
    """Every break of the layering in ``graph``, as stable one-line descriptions."""
    found: set[str] = set()
    for module in sorted(graph):
        if layer_of(part_of(module)) is None:
            found.add(f"no layer: {short(module)} (add its part to LAYERS)")
    for module, targets in graph.items():
        here = layer_of(part_of(module))
        for target in targets:
            there = layer_of(part_of(target))
            if here is None or there is None:
                continue
            if there > here:
                found.add(
                    f"upward: {short(module)} -> {short(target)} "
                    f"({LAYERS[here][0]} imports {LAYERS[there][0]})"
                )
            elif (part_of(module), part_of(target)) in FORBIDDEN_WITHIN_LAYER:
                found.add(f"forbidden: {short(module)} -> {short(target)}")
    for component in cycles(graph):
        found.add("cycle: " + " <-> ".join(short(m) for m in component))
    return found


@pytest.fixture(scope="module")
def found() -> set[str]:
    return violations(import_graph(PACKAGE_DIR))


def test_imports_follow_the_layers(found: set[str]) -> None:
    new = sorted(found - ALLOWED)
    assert not new, "new layering violations (fix them; do not add them to ALLOWED):\n" + (
        "\n".join(new)
    )


def test_allow_list_has_no_fixed_entries(found: set[str]) -> None:
    fixed = sorted(ALLOWED - found)
    assert not fixed, "fixed, so remove from ALLOWED in tests/test_layers.py:\n" + "\n".join(fixed)


def test_the_graph_sees_the_whole_package() -> None:
    graph = import_graph(PACKAGE_DIR)
    assert {"arroyo_lite", "arroyo_lite.errors", "arroyo_lite.sql.parse"} <= graph.keys()
    # a dependency everyone knows about, to prove edges are read at all
    assert "arroyo_lite.errors" in graph["arroyo_lite.sql.parse"]


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / ROOT


def test_the_check_catches_planted_violations(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "__init__.py": "from arroyo_lite.session import Session\n",
            "errors.py": "",
            "config.py": "from arroyo_lite.errors import x\n",
            "session.py": "from arroyo_lite.runtime import loop\n",
            "sql/__init__.py": "",
            "sql/parse.py": "from ..errors import x\nfrom arroyo_lite.connectors import base\n",
            "connectors/__init__.py": "",
            # a plugin API module reaching into sql/, hidden behind TYPE_CHECKING
            "connectors/base.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from arroyo_lite.sql.parse import y\n"
            ),
            "runtime/__init__.py": "",
            # an upward import inside a function body
            "runtime/loop.py": "def f():\n    from arroyo_lite.session import Session\n",
            # a cycle through relative imports, and a part no layer holds
            "query/__init__.py": "",
            "query/a.py": "from . import b\n",
            "query/b.py": "from .a import f\n",
            "extra.py": "",
        },
    )
    assert violations(import_graph(package)) == {
        "forbidden: connectors.base -> sql.parse",
        "upward: runtime.loop -> session (runtime imports session)",
        "cycle: runtime.loop <-> session",
        "cycle: connectors.base <-> sql.parse",
        "cycle: query.a <-> query.b",
        "no layer: extra (add its part to LAYERS)",
    }


def test_a_clean_package_passes(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "__init__.py": "def __getattr__(n):\n    from arroyo_lite import session\n",
            "errors.py": "",
            "session.py": "import arroyo_lite.errors\nfrom arroyo_lite.sql import parse\n",
            "sql/__init__.py": "from arroyo_lite.sql.parse import p\n",
            "sql/parse.py": "from arroyo_lite.connectors import base\n",
            "connectors/__init__.py": "",
            "connectors/base.py": "from arroyo_lite import errors\n",
        },
    )
    assert violations(import_graph(package)) == set()
