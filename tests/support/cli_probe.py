"""Running the ``arroyo-lite`` command in a fresh interpreter that reports what it imported.

:func:`probe_cli` starts ``python -c PROBE``: the probe runs the CLI in-process (so it can
look at ``sys.modules``) and records, of the ``watched`` module names, those imported when the
first line reached stdout and those imported when the command had ended, and how many objects
the collector keeps frozen (``gc.get_freeze_count``). A run that would go on polling is
stopped with SIGTERM (a clean stop) once it printed ``stop_after_lines`` lines. A fresh
interpreter per call, because an import that happened once stays in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

# argv[1]: the CLI's arguments (JSON), argv[2]: the watched module names (JSON), argv[3]: the
# lines after which to send SIGTERM (0: never). The report is the last line on real stdout.
PROBE = """
import gc, io, json, os, signal, sys
watched = json.loads(sys.argv[2])
wanted = int(sys.argv[3])
at_first_row = []
lines = 0

def loaded():
    return sorted(name for name in watched if name in sys.modules)

class Probe(io.RawIOBase):
    def writable(self):
        return True
    def write(self, data):
        global lines
        if not at_first_row:
            at_first_row.append(loaded())
        sys.__stdout__.buffer.write(bytes(data))
        sys.__stdout__.buffer.flush()
        lines += bytes(data).count(b"\\n")
        if wanted and lines >= wanted:
            os.kill(os.getpid(), signal.SIGTERM)
        return len(data)

sys.stdout = io.TextIOWrapper(Probe(), write_through=True)
sys.argv = ["arroyo-lite", *json.loads(sys.argv[1])]
from arroyo_lite.cli import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
report = {
    "at_first_row": at_first_row[0] if at_first_row else None,
    "at_end": loaded(),
    "frozen": gc.get_freeze_count(),
}
print(json.dumps(report), file=sys.__stdout__, flush=True)
"""


@dataclass(frozen=True)
class Probed:
    """What a probed run printed, and what it had imported."""

    #: The lines the command printed on stdout.
    rows: list[str]
    #: The watched modules imported when the first line was printed (``None``: no line was).
    at_first_row: set[str] | None
    #: The watched modules imported when the command had ended.
    at_end: set[str]
    #: Objects the collector keeps frozen at the end.
    frozen: int


def probe_cli(
    argv: Sequence[str],
    *,
    watched: Sequence[str] = ("pandas",),
    stop_after_lines: int = 0,
    timeout: float = 120,
) -> Probed:
    """Run ``arroyo-lite ARGV`` under the probe; fails if it does not end within ``timeout``
    seconds or the probe itself exits non-zero (the command's own exit status is not checked:
    tests check what it printed)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(argv)), json.dumps(list(watched))]
        + [str(stop_after_lines)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    *rows, last = done.stdout.strip().splitlines()
    report = json.loads(last)
    first = report["at_first_row"]
    return Probed(
        rows=rows,
        at_first_row=None if first is None else set(first),
        at_end=set(report["at_end"]),
        frozen=report["frozen"],
    )
