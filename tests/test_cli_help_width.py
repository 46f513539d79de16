"""``--help`` is laid out at click's width without importing :mod:`shutil` (behaviour, never
time): :func:`arroyo_lite.cli.terminal_columns` follows ``shutil.get_terminal_size`` and the
help text is the one click's own context formats."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios

import click
import pytest

from arroyo_lite.cli import COMMANDS, HelpContext, main

# Prints [ours, shutil's] in a fresh interpreter (stdout may be a terminal there).
COMPARE = """
import json, shutil, sys
from arroyo_lite.cli import terminal_columns
ours = terminal_columns()
print(json.dumps([ours, shutil.get_terminal_size().columns]), file=sys.stderr)
"""


def columns_in_child(columns: str | None, stdout: int | None = None) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    done = subprocess.run(
        [sys.executable, "-c", COMPARE],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[int] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("columns", [None, "", "0", "-5", "wide", "45", "60", "132"])
def test_terminal_columns_follows_shutil(columns):
    ours, theirs = columns_in_child(columns)
    assert ours == theirs
    if columns in ("45", "60", "132"):
        assert ours == int(columns)


@pytest.mark.parametrize("columns", [None, "70"])
def test_terminal_columns_reads_the_terminal_like_shutil(columns):
    leader, follower = os.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 97, 0, 0))
        ours, theirs = columns_in_child(columns, stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert ours == theirs == (97 if columns is None else 70)


def help_pair(argv: list[str]) -> tuple[str, str]:
    """The help of ``argv``'s command through :class:`HelpContext` and through click's own
    :class:`click.Context`."""
    texts = []
    for context_class in (HelpContext, click.Context):
        command: click.Command = main
        ctx = context_class(command, info_name="arroyo-lite")
        for name in argv:
            assert isinstance(command, click.Group)
            found = command.get_command(ctx, name)
            assert found is not None
            command = found
            ctx = context_class(command, info_name=name, parent=ctx)
        texts.append(command.get_help(ctx))
    return texts[0], texts[1]


@pytest.mark.parametrize("columns", ["40", "60", "100", "300"])
@pytest.mark.parametrize("argv", [[], ["run"], ["validate"], ["cluster"], ["cluster", "list"]])
def test_help_text_is_the_one_click_formats(monkeypatch, argv, columns):
    monkeypatch.setenv("COLUMNS", columns)
    ours, clicks = help_pair(argv)
    assert ours == clicks
    assert "Usage: " in ours
    widest = max(min(int(columns), 80) - 2, 50)
    assert max(len(line) for line in ours.splitlines()) <= widest


def test_commands_and_groups_format_their_help_through_help_context():
    ctx = HelpContext(main, info_name="arroyo-lite")
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.context_class is HelpContext, name
    cluster = main.get_command(ctx, "cluster")
    assert isinstance(cluster, click.Group)
    for name in cluster.list_commands(ctx):
        sub = cluster.get_command(ctx, name)
        assert sub is not None and sub.context_class is HelpContext, name


PROBE = """
import json, sys
sys.argv = ["arroyo-lite", *json.loads(sys.argv[1])]
from arroyo_lite.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("shutil", "bz2", "lzma") if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["run", "--help"], ["validate", "--help"]]
)
def test_help_imports_no_shutil(argv):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Usage: " in done.stdout or "version" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
