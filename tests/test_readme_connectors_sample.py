"""The README's `arroyo-lite connectors impulse` sample is the first lines the command prints,
in order (tests/test_examples_readme.py only checks that each shown line appears)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from arroyo_lite.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_connectors_impulse_sample_matches_the_command() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"\$ arroyo-lite connectors impulse\n(.*?)\n```", text, re.S)
    assert block is not None
    shown = block.group(1).split("\n")
    result = CliRunner().invoke(main, ["connectors", "impulse"])
    assert result.exit_code == 0, result.output
    assert result.output.split("\n")[: len(shown)] == shown
