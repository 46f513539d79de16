"""The ``arroyo-lite`` command line: one click group, one module per command.

Start-up is part of the product (``arroyo-lite --help`` should feel instant): a command's
module, and whatever heavy library it needs (sqlglot, aiohttp, DuckDB, pyarrow, rich), is
imported only when that command runs. ``--help`` and ``--version`` import none of them.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from click import formatting

from arroyo_lite._version import __version__

#: Every built-in command: name -> (module that defines it, the line ``--help`` lists). Listing
#: the commands reads only this table; a command's module is imported when it is invoked.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate_cmd", "Check SQL files without polling anything."),
    "connectors": ("connectors_cmd", "List connectors and their WITH options."),
    "test": ("test_cmd", "Try each source table once and show what comes back."),
    "infer": ("infer_cmd", "Fetch one response and print a CREATE TABLE for it."),
    "run": ("run_cmd", "Run FILE.sql and print its queries live."),
    "demo": ("demo_cmd", "Run the quickstart against an embedded demo API."),
    "repl": ("repl_cmd", "Interactive SQL over live tables."),
    "deploy": ("deploy_cmd", "Run a SQL file on an Arroyo cluster."),
    "cluster": ("cluster_cmd", "List, show, stop and delete pipelines on an Arroyo cluster."),
}


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Import what a command needs without the cyclic garbage collector rescanning it.

    Importing sqlglot and the compiler creates ~10^5 objects that live as long as the process;
    the collector would scan them at every full collection meanwhile (and once more at exit),
    which is a fifth of ``validate``'s time. Collection is paused inside the block and
    everything alive at its end is frozen (``gc.freeze``: never scanned again); objects made
    later are collected as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing :mod:`shutil` (which
    imports ``bz2``, ``lzma`` and ``zlib``: a tenth of ``arroyo-lite --help``). The same
    rules: ``COLUMNS`` when it is a positive integer, else the width of the terminal on the
    original stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class HelpContext(click.Context):
    """A context whose help formatter gets its width from :func:`terminal_columns`; click's
    own would import :mod:`shutil` for it. Same width: the terminal's, at most
    ``max_content_width`` (80), less 2, at least 50; ``terminal_width`` and click's
    ``FORCED_WIDTH`` (set by its test runner) still win."""

    def make_formatter(self) -> click.HelpFormatter:
        width = self.terminal_width
        if width is None and formatting.FORCED_WIDTH is None:
            widest = 80 if self.max_content_width is None else self.max_content_width
            width = max(min(terminal_columns(), widest) - 2, 50)
        return self.formatter_class(width=width, max_width=self.max_content_width)


class Command(click.Command):
    """A command whose ``--help`` is formatted by :class:`HelpContext`."""

    context_class = HelpContext


class Group(click.Group):
    """A group (``cluster``) whose ``--help``, and its commands', use :class:`HelpContext`."""

    context_class = HelpContext
    command_class = Command


class LazyGroup(click.Group):
    """A group whose built-in commands are imported on first use (see :data:`COMMANDS`).

    A command module attaches itself with ``@main.command``, as before; commands added that
    way by anyone else are listed too. Commands and groups made by ``@main.command`` and
    ``@main.group`` format their help through :class:`HelpContext`.
    """

    context_class = HelpContext
    command_class = Command
    group_class = Group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            importlib.import_module(f"arroyo_lite.cli.{COMMANDS[cmd_name][0]}")
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Click would import every command to ask for its short help: read the table instead.
        rows = [(name, text) for name, (_, text) in COMMANDS.items()]
        rows += [
            (name, command.get_short_help_str(formatter.width))
            for name, command in self.commands.items()
            if name not in COMMANDS and not command.hidden
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arroyo-lite")
def main() -> None:
    """Turn HTTP APIs into live SQL tables, with Arroyo-compatible SQL DDL."""
