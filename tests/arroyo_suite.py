"""Arroyo's end-to-end SQL suite (``crates/arroyo-sql-testing``), run through ``arroyo-lite run``.

Usage: ``python tests/arroyo_suite.py [NAME ...] [--timeout SECONDS]``; prints one line per
query (``ok`` or why not) and ``N/31 golden outputs match``. ``tests/test_arroyo_suite.py``
runs the same checks under pytest.

What it does, as Arroyo's ``smoke_tests.rs``: in each query ``$input_dir`` becomes the inputs
folder and ``$output_path`` a fresh output file; the pipeline runs (``arroyo-lite run``) until
it ends by itself (a bounded pipeline must: every ``single_file`` source finishes); then the
output is compared with the golden file:

* a first line ``--fail=<text>``: the run must fail, its error containing ``<text>``;
* if the first output line is JSON with a string ``op``, both files are Debezium changelogs:
  each is replayed (``c`` inserts ``after``, ``u`` removes ``before`` and inserts ``after``,
  ``d`` removes ``before``; a ``c`` over an existing row, a ``u``/``d`` of a missing one or a
  ``u`` over an existing row is an error), keyed by the ``--pk=a,b`` columns of the query's
  first line or by the whole row, and the final sets of rows must be equal;
* otherwise both must have the same number of lines, equal once sorted (each line with its
  keys sorted), values compared as JSON values (``1`` and ``1.0`` differ, as in serde_json).

Four queries cannot run outside Arroyo's repository (:data:`UNRUNNABLE`): three need Rust
UDFs of its test crate, one an input file not in the public snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where the corpus lives: ``$ARROYO_SQL_CORPUS``, else next to the repository.
CORPUS = Path(
    os.environ.get(
        "ARROYO_SQL_CORPUS",
        Path(__file__).resolve().parents[2] / "shared" / "reference" / "arroyo-sql-corpus",
    )
)
QUERIES = CORPUS / "sql-testing"
INPUTS = CORPUS / "sql-testing-data" / "inputs"
GOLDEN = CORPUS / "sql-testing-data" / "golden_outputs"

#: Queries that cannot run here, and why.
UNRUNNABLE = {
    "async_udf": "needs the Rust UDF double_negative (async) from Arroyo's test crate",
    "double_negative_udf": "needs the Rust UDF double_negative from Arroyo's test crate",
    "udaf": "needs the Rust UDAFs my_median, none_udf, max_product from Arroyo's test crate",
    "nexmark_q5": "needs inputs/nexmark_bids.json, not in the public snapshot",
}
#: Seconds a query may run before it counts as not ending by itself.
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One query's result: ``matched``, or ``reason`` says what differed."""

    name: str
    matched: bool
    reason: str = ""


def runnable() -> list[str]:
    """The names of the queries that can run here (the suite's 31), sorted."""
    names = sorted(p.stem for p in QUERIES.glob("*.sql"))
    return [n for n in names if n not in UNRUNNABLE]


def header(text: str, key: str) -> str | None:
    """The value of a first line ``--key=value`` of a query, if it has one."""
    first = text.split("\n", 1)[0].strip()
    prefix = f"--{key}="
    return first[len(prefix) :].strip() if first.startswith(prefix) else None


def run_query(name: str, workdir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Run query ``name`` through ``arroyo-lite run`` in ``workdir`` and check its output."""
    text = (QUERIES / f"{name}.sql").read_text(encoding="utf-8")
    output = workdir / f"{name}.json"
    sql = text.replace("$input_dir", str(INPUTS)).replace("$output_path", str(output))
    script = workdir / f"{name}.sql"
    script.write_text(sql, encoding="utf-8")
    command = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run"]
    try:
        done = subprocess.run(
            [*command, str(script), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(name, False, f"did not end by itself within {timeout:g} s")
    fail = header(text, "fail")
    if fail is not None:
        if done.returncode == 0:
            return Outcome(name, False, f"expected planning to fail with {fail!r}; it ran")
        if fail not in done.stderr:
            return Outcome(name, False, f"failed, but without {fail!r}: {_tail(done.stderr)}")
        return Outcome(name, True)
    if done.returncode != 0:
        return Outcome(name, False, f"exit {done.returncode}: {_tail(done.stderr)}")
    pk = header(text, "pk")
    keys = pk.split(",") if pk else None
    try:
        problem = compare(output, GOLDEN / f"{name}.json", keys)
    except (OSError, ValueError) as e:
        problem = str(e)
    return Outcome(name, problem is None, problem or "")


def compare(output: Path, golden: Path, keys: Sequence[str] | None) -> str | None:
    """``None`` when ``output`` matches ``golden`` as Arroyo checks it, else what differs.

    Raises :class:`ValueError` for a changelog that cannot be replayed, or a line that is
    not JSON; :class:`OSError` for a missing file.
    """
    if not output.exists():
        return "no output file was written"
    ours = _lines(output)
    theirs = _lines(golden)
    if not ours:
        return f"the output has 0 lines, expected {len(theirs)}"
    first = ours[0]
    if isinstance(first, dict) and isinstance(first.get("op"), str):
        merged_ours = merge_debezium(ours, keys)
        merged_theirs = merge_debezium(theirs, keys)
        if merged_ours == merged_theirs:
            return None
        missing = _first(merged_theirs, merged_ours)
        extra = _first(merged_ours, merged_theirs)
        return (
            f"final rows differ: {len(merged_ours)} rows, expected {len(merged_theirs)}"
            f"; missing e.g. {missing}; unexpected e.g. {extra}"
        )
    if len(ours) != len(theirs):
        return f"the output has {len(ours)} lines, expected {len(theirs)}"
    ours_sorted = sorted(ours, key=_canonical)
    theirs_sorted = sorted(theirs, key=_canonical)
    for index, (a, b) in enumerate(zip(ours_sorted, theirs_sorted, strict=True)):
        if not _equal(a, b):
            return f"sorted line {index} differs: got {_canonical(a)}, expected {_canonical(b)}"
    return None


def merge_debezium(rows: Iterable[Any], keys: Sequence[str] | None) -> dict[str, str]:
    """Replay a Debezium changelog: the final rows, by key (canonical JSON text both)."""
    state: dict[str, str] = {}

    def key_of(row: Any) -> str:
        if not isinstance(row, dict):
            raise ValueError(f"a Debezium row is not an object: {row!r}")
        if keys is None:
            return _canonical(row)
        if any(k not in row for k in keys):
            raise ValueError(f"primary key {list(keys)} not found in row {_canonical(row)}")
        return json.dumps([_canonical(row[k]) for k in keys])

    for change in rows:
        op = change.get("op")
        before, after = change.get("before"), change.get("after")
        if op in ("u", "d"):
            if before is None or state.pop(key_of(before), None) is None:
                raise ValueError(f"'{op}' for a row that does not exist: {_canonical(change)}")
        elif op != "c":
            raise ValueError(f"unknown debezium op {op!r}")
        if op in ("c", "u"):
            if after is None:
                raise ValueError(f"no 'after' for '{op}': {_canonical(change)}")
            key = key_of(after)
            if key in state:
                raise ValueError(f"'{op}' over an existing row: {_canonical(change)}")
            state[key] = _canonical(after)
    return state


def _canonical(value: Any) -> str:
    """JSON text with sorted keys, numbers keeping their kind (``1`` vs ``1.0``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _equal(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def _first(a: dict[str, str], b: dict[str, str]) -> str:
    for key, row in sorted(a.items()):
        if b.get(key) != row:
            return row
    return "-"


def _lines(path: Path) -> list[Any]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path.name}:{number}: not JSON: {e}") from e
    return out


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[:400] or "(no message)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("names", nargs="*", help="queries to run (default: all 31)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    names = args.names or runnable()
    matched = 0
    with tempfile.TemporaryDirectory(prefix="arroyo-suite-") as tmp:
        for name in names:
            outcome = run_query(name, Path(tmp), timeout=args.timeout)
            matched += outcome.matched
            status = "ok" if outcome.matched else f"FAIL: {outcome.reason}"
            print(f"{name:45} {status}", flush=True)
    print(f"{matched}/{len(names)} golden outputs match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
