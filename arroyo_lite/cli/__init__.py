"""The ``arroyo-lite`` command line: one click group, one module per command."""

from __future__ import annotations

import click

from arroyo_lite._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arroyo-lite")
def main() -> None:
    """Turn HTTP APIs into live SQL tables, with Arroyo-compatible SQL DDL."""


def _register() -> None:
    # Each command lives in its own module; importing it attaches it to ``main``.
    import importlib

    for name in (
        "validate_cmd", "connectors_cmd", "test_cmd", "run_cmd", "demo_cmd", "repl_cmd",
        "deploy_cmd", "cluster_cmd",
    ):  # fmt: skip
        try:
            importlib.import_module(f"arroyo_lite.cli.{name}")
        except ModuleNotFoundError as e:
            # Commands not written yet are simply absent; any other import failure is a bug.
            if e.name != f"arroyo_lite.cli.{name}":
                raise


_register()
