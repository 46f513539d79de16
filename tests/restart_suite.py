"""Arroyo's suite queries stopped in the middle and restarted with ``--state-dir``.

Usage: ``python tests/restart_suite.py [NAME ...] [--signal term|kill|both]``; prints one
line per query and signal, and ``N/M restarts match the golden output``. Without names it
runs the queries that match their golden output uninterrupted (``tests/test_arroyo_suite``'s
list), but those that match by failing at planning (a ``--fail`` header: nothing runs).
``tests/test_restart_equivalence.py`` runs some of them under pytest.

Each run, as Arroyo's ``smoke_tests.rs`` does with a checkpoint and a restore:

1. every ``$input_dir/NAME`` of the query becomes a named pipe of its own (a file read by
   two tables gets two pipes), fed with the first half of NAME's lines; the pipeline
   (``arroyo-lite run --state-dir``) reads them, writes what that half allows (windows the
   watermark closed, the changelog so far) and waits for more;
2. once the state directory holds every line fed (rounded down to the source's batches of
   32) for every source, and the sink has written a line if ``require_output``, the process
   gets the signal (SIGTERM: it stops cleanly; SIGKILL: a crash);
3. with ``require_output`` the output must then differ from the golden one (the run was
   stopped in the middle; without, a query whose half input already gives the golden
   output, as ``count(distinct ...)`` of a constant, is noted);
4. the pipes become regular files holding every line, and the pipeline runs again with the
   same state directory until it ends by itself: its output must match the golden output as
   the suite compares it, and each source's saved table must hold every line once, in
   batches of 32 lines (the batches an uninterrupted read decodes: :func:`decoded_batches`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

if not __package__:  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arroyo_lite.config import FramingSpec, TableConfig, TableKind  # noqa: E402
from arroyo_lite.connectors.registry import get_connector  # noqa: E402
from arroyo_lite.connectors.single_file.operator import BATCH_LINES, LineReader  # noqa: E402
from arroyo_lite.connectors.single_file.options import SingleFileOptions  # noqa: E402
from arroyo_lite.formats import make_decoder  # noqa: E402
from arroyo_lite.runtime.persist import StateDir  # noqa: E402
from arroyo_lite.runtime.updating import net, table_schema  # noqa: E402
from arroyo_lite.sql import compile_sql  # noqa: E402
from tests import arroyo_suite  # noqa: E402

#: How long to wait for a process to reach the point where it is stopped (a bound on
#: waiting, never a claim about speed).
READY_WITHIN_S = 90.0
#: How long the restarted run may take to end by itself.
RESTART_TIMEOUT_S = 300.0
_INPUT = re.compile(r"\$input_dir/([\w.-]+)")


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    stop: signal.Signals
    matched: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A query with its own pipes: ``pipes`` maps each pipe to the input file it stands for."""

    sql: str
    script: Path
    output: Path
    state: Path
    pipes: dict[Path, Path]
    sources: tuple[TableConfig, ...]


def prepare(name: str, workdir: Path) -> Prepared:
    """The query ``name`` with a pipe for each ``$input_dir`` path (not yet created)."""
    text = (arroyo_suite.QUERIES / f"{name}.sql").read_text(encoding="utf-8")
    inputs = workdir / "inputs"
    inputs.mkdir()
    pipes: dict[Path, Path] = {}

    def pipe_for(match: re.Match[str]) -> str:
        pipe = inputs / f"{len(pipes)}-{match.group(1)}"
        pipes[pipe] = arroyo_suite.INPUTS / match.group(1)
        return str(pipe)

    output = workdir / "out.json"
    sql = _INPUT.sub(pipe_for, text).replace("$output_path", str(output))
    script = workdir / "query.sql"
    script.write_text(sql, encoding="utf-8")
    program = compile_sql(sql, file=str(script))
    sources = tuple(t for t in program.tables if t.kind is TableKind.SOURCE)
    return Prepared(sql, script, output, workdir / "state", pipes, sources)


def command(prepared: Prepared) -> list[str]:
    run = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run"]
    return [*run, str(prepared.script), "--no-progress", "--state-dir", str(prepared.state)]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def saved(prepared: Prepared, source: TableConfig) -> tuple[list[int], int]:
    """The batch sizes of ``source``'s saved rows, and the lines its saved state has read."""
    batches, state = StateDir(prepared.state, lock=False).load_table(
        source.name, table_schema(source.output_schema(), updating=_updating(source))
    )
    read = int.from_bytes(state.get("lines_read", b""), "big")
    return [b.num_rows for b in batches], read


@contextlib.contextmanager
def _writer(pipe: Path, process: subprocess.Popen[bytes]) -> Iterator[int]:
    """The write end of ``pipe``, once ``process`` has opened it to read."""
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if process.poll() is not None:
            raise RuntimeError("the pipeline ended before it opened its input")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the pipeline did not open {pipe.name}")
        time.sleep(0.02)
    os.set_blocking(fd, True)
    try:
        yield fd
    finally:
        os.close(fd)


def _source_of(prepared: Prepared, pipe: Path) -> TableConfig:
    for source in prepared.sources:
        options = source.connector_options
        if isinstance(options, SingleFileOptions) and Path(options.path) == pipe:
            return source
    raise RuntimeError(f"no source table reads {pipe}")


def _partway(prepared: Prepared, fed: dict[Path, int], require_output: bool) -> bool:
    if require_output and not (prepared.output.exists() and b"\n" in prepared.output.read_bytes()):
        return False
    for pipe, lines in fed.items():
        _, read = saved(prepared, _source_of(prepared, pipe))
        if read < lines - lines % BATCH_LINES:
            return False
    return True


def interrupt(prepared: Prepared, stop: signal.Signals, *, require_output: bool) -> str:
    """Run the pipeline on half of each input, then stop it with ``stop``; return its
    stderr. Raises ``RuntimeError`` if it could not be stopped in the middle."""
    for pipe in prepared.pipes:
        os.mkfifo(pipe)
    process = subprocess.Popen(command(prepared), stderr=subprocess.PIPE)
    try:
        with contextlib.ExitStack() as stack:
            fed: dict[Path, int] = {}
            for pipe, original in prepared.pipes.items():
                fd = stack.enter_context(_writer(pipe, process))
                lines = _lines(original)
                fed[pipe] = len(lines) // 2
                os.write(fd, b"".join(lines[: fed[pipe]]))
            deadline = time.monotonic() + READY_WITHIN_S
            while not _partway(prepared, fed, require_output):
                if process.poll() is not None:
                    raise RuntimeError("the first run ended before it was stopped")
                if time.monotonic() > deadline:
                    raise RuntimeError("the first run did not save its input in time")
                time.sleep(0.05)
            process.send_signal(stop)
            process.wait(READY_WITHIN_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode() if process.stderr else ""
    expected = 0 if stop is signal.SIGTERM else -signal.SIGKILL
    if process.returncode != expected:
        raise RuntimeError(f"the first run exited {process.returncode}: {stderr[-400:]}")
    return stderr


def restart(prepared: Prepared) -> subprocess.CompletedProcess[str]:
    """The pipes become the whole input files; the pipeline runs again until it ends."""
    for pipe, original in prepared.pipes.items():
        pipe.unlink()
        shutil.copyfile(original, pipe)
    return subprocess.run(
        command(prepared), capture_output=True, text=True, timeout=RESTART_TIMEOUT_S, check=False
    )


def run_query(
    name: str, stop: signal.Signals, workdir: Path, *, require_output: bool = False
) -> Outcome:
    """Stop query ``name`` in the middle with ``stop``, restart it, check its output."""
    text = (arroyo_suite.QUERIES / f"{name}.sql").read_text(encoding="utf-8")
    pk = arroyo_suite.header(text, "pk")
    keys = pk.split(",") if pk else None
    golden = arroyo_suite.GOLDEN / f"{name}.json"
    prepared = prepare(name, workdir)
    try:
        interrupt(prepared, stop, require_output=require_output)
    except RuntimeError as e:
        return Outcome(name, stop, False, str(e))
    note = ""
    try:
        if arroyo_suite.compare(prepared.output, golden, keys) is None:
            if require_output:
                return Outcome(name, stop, False, "the first run was not stopped in the middle")
            note = " (the first run's output already matched: half the input gives it)"
    except ValueError:
        pass  # a changelog cut short is in the middle too
    done = restart(prepared)
    if done.returncode != 0:
        return Outcome(name, stop, False, f"restart exit {done.returncode}: {done.stderr[-400:]}")
    try:
        problem = arroyo_suite.compare(prepared.output, golden, keys)
    except (OSError, ValueError) as e:
        problem = str(e)
    if problem is not None:
        return Outcome(name, stop, False, f"after the restart: {problem}")
    for pipe, original in prepared.pipes.items():
        source = _source_of(prepared, pipe)
        sizes, _ = saved(prepared, source)
        if _updating(source):
            # An updating table (a debezium_json source) saves its current rows: the rows
            # the file's changes leave, once each.
            left = current_rows(source, original)
            if sum(sizes) != left:
                return Outcome(name, stop, False, f"saved {sum(sizes)} current rows, not {left}")
            continue
        expected = decoded_batches(source, original)
        if sum(sizes) != sum(expected):
            return Outcome(
                name, stop, False, f"saved {sum(sizes)} rows of {pipe.name}, not {sum(expected)}"
            )
        if sizes != expected:
            return Outcome(name, stop, False, f"saved batches of {sorted(set(sizes))} rows")
    return Outcome(name, stop, True, note)


def _updating(source: TableConfig) -> bool:
    return get_connector(source.connector or "").updating(source)


def current_rows(source: TableConfig, original: Path) -> int:
    """How many rows the changes an updating ``source`` decodes from ``original`` leave."""
    batches = _decoded(source, original)
    return net(pa.Table.from_batches(batches)).num_rows if batches else 0


def decoded_batches(source: TableConfig, original: Path) -> list[int]:
    """The row counts of the batches ``source`` decodes from the whole file ``original``,
    read uninterrupted in batches of :data:`BATCH_LINES` lines (batches without rows are
    not stored). A line need not be one row: a debezium ``u`` line is a retraction and an
    addition."""
    return [batch.num_rows for batch in _decoded(source, original)]


def _decoded(source: TableConfig, original: Path) -> list[pa.RecordBatch]:
    framed = dataclasses.replace(source, framing=source.framing or FramingSpec())
    decoder = make_decoder(framed)
    reader = LineReader(original)
    batches: list[pa.RecordBatch] = []
    try:
        while chunks := reader.batches(BATCH_LINES):
            for _, chunk in chunks:
                batch = decoder.decode(chunk, 0).batch
                if batch is not None and batch.num_rows:
                    batches.append(batch)
    finally:
        reader.close()
    return batches


def expected_to_fail(name: str) -> bool:
    """Whether query ``name`` matches by failing at planning (a ``--fail`` header, as
    ``most_active_driver_last_hour_unaligned``): it never runs, so there is nothing to stop
    and restart; the default list leaves it out."""
    text = (arroyo_suite.QUERIES / f"{name}.sql").read_text(encoding="utf-8")
    return arroyo_suite.header(text, "fail") is not None


SIGNALS = {
    "term": [signal.SIGTERM],
    "kill": [signal.SIGKILL],
    "both": [signal.SIGTERM, signal.SIGKILL],
}


def main(argv: Sequence[str] | None = None) -> int:
    from tests.test_arroyo_suite import MATCHING

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "names", nargs="*", help="queries (default: those that match uninterrupted)"
    )
    parser.add_argument("--signal", choices=sorted(SIGNALS), default="both")
    args = parser.parse_args(argv)
    names = args.names or [name for name in MATCHING if not expected_to_fail(name)]
    matched = total = 0
    for name in names:
        for stop in SIGNALS[args.signal]:
            with tempfile.TemporaryDirectory(prefix="arroyo-restart-") as tmp:
                outcome = run_query(name, stop, Path(tmp))
            total += 1
            matched += outcome.matched
            status = f"ok{outcome.reason}" if outcome.matched else f"FAIL: {outcome.reason}"
            print(f"{name:40} {stop.name:8} {status}", flush=True)
    print(f"{matched}/{total} restarts match the golden output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
