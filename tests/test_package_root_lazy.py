"""The package root imports its public names on first use (behaviour, never time).

``arroyo-lite --help`` and ``--version`` import ``arroyo_lite``, and would otherwise pay for
every module its public names live in (the errors alone bring ``dataclasses``). Each name must
still resolve, by attribute, by ``from arroyo_lite import X`` and by ``import *``; the speed
figure is ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import arroyo_lite

# Runs ``code`` in a fresh interpreter with ``sys.argv[1:]`` set, then prints the modules of
# arroyo-lite it ended up with, and whether ``dataclasses`` was imported.
PROBE = """
import json, sys
sys.argv = ["arroyo-lite", *json.loads(sys.argv[1])]
try:
    {code}
except SystemExit:
    pass
print(json.dumps([
    sorted(m for m in sys.modules if m == "arroyo_lite" or m.startswith("arroyo_lite.")),
    "dataclasses" in sys.modules,
]))
"""


def ours_after(code: str, argv: list[str] | None = None) -> tuple[set[str], bool]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code), json.dumps(argv or [])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules, dataclasses = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules), dataclasses


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"], []])
def test_help_and_version_import_only_the_command_line_module(argv):
    modules, dataclasses = ours_after("from arroyo_lite.cli import main; main()", argv)
    assert modules == {"arroyo_lite", "arroyo_lite._version", "arroyo_lite.cli"}
    assert not dataclasses


def test_importing_the_package_imports_only_its_version():
    assert ours_after("import arroyo_lite") == ({"arroyo_lite", "arroyo_lite._version"}, False)


def test_a_public_name_brings_its_module_when_first_used():
    modules, _ = ours_after("from arroyo_lite import SqlError")
    assert "arroyo_lite.errors" in modules
    assert "arroyo_lite.session" not in modules


def test_every_public_name_resolves_to_the_object_its_module_defines():
    from arroyo_lite import config, errors, session

    homes = {"errors": errors, "config": config, "session": session}
    names = [name for name in arroyo_lite.__all__ if name != "__version__"]
    assert names == sorted(arroyo_lite._LAZY), "__all__ and the lazy table must list the same"
    for name in names:
        home = homes[arroyo_lite._LAZY[name].rpartition(".")[2]]
        assert getattr(arroyo_lite, name) is getattr(home, name), name
    assert arroyo_lite.__version__ == arroyo_lite._version.__version__
    assert set(arroyo_lite.__all__) <= set(dir(arroyo_lite))


def test_from_imports_and_star_import_still_work():
    namespace: dict[str, object] = {}
    exec("from arroyo_lite import *", namespace)
    assert set(arroyo_lite.__all__) <= set(namespace)
    from arroyo_lite import SqlError, ValidationErrors
    from arroyo_lite.errors import ArroyoLiteError

    problem = SqlError("bad")
    assert isinstance(problem, ArroyoLiteError)
    assert list(ValidationErrors([problem])) == [problem]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Sessoin'"):
        _ = arroyo_lite.Sessoin  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from arroyo_lite import Sessoin", {})
