"""Records from real APIs: the record path's decode rate, dedup's cost, key state memory.

Three measures, each against a baseline measured in the same run (the machine is shared:
only ratios mean something). Each time is taken two ways, in rounds that interleave the
contenders: wall clock (best round) and CPU time of the process (best round; all threads
summed). pyarrow parses on several threads, so on a loaded machine the wall clock measures
how many cores the scheduler lent each round as much as the work (it moved the ratio between
0.44 and 1.12 from run to run); CPU time measures the work and is stable under load. Both
ratios are printed; the target applies to both on an idle machine, to CPU time on a busy one.

1. ``records.path``: a ``{"data": [...]}`` body of ``--mib`` MiB decoded through the table's
   decoder with ``records.path = '$.data'`` (rows with ``_timestamp``, exactly what a poll
   emits), against pyarrow.json parsing the same records as NDJSON with the same explicit
   schema (parse only), in 5 x ``--rounds`` rounds. Target: ratio >= 0.8. Also printed: the
   median of each round's own ratio.
2. ``emit_behavior = 'dedup'``: one poll of ``--keys`` records, 10 % of them new and the
   rest seen before (the key state already holds ``--keys`` keys), against the same poll
   without dedup (decode only). Both include the decode; dedup adds the DuckDB row hashes,
   the key state update, the filter and the state's serialisation. Target: ratio <= 2.
3. Key state memory: bytes held per million keys (and serialised, as saved in --state-dir).

Run: ``.venv/bin/python benchmarks/records.py [--mib 4] [--keys 1000000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.json as pajson

from arroyo_lite.connectors.polling_http.keys import KeyState, RowHasher
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.records import RecordPath
from arroyo_lite.sql import compile_sql

SQL = """CREATE TABLE t (id TEXT PRIMARY KEY, mag DOUBLE, place TEXT, time BIGINT,
  props STRUCT<status TEXT, sig INT>) WITH (connector = 'polling_http',
  endpoint = 'http://127.0.0.1:1/', format = 'json', emit_behavior = 'dedup');"""


#: Record-path rounds per ``--rounds`` (one takes ~60 ms; a dedup round seconds): more rounds
#: make the best of each less moved by a shared machine's load.
RECORD_PATH_ROUNDS = 5


def record(i: int, offset: int = 0) -> bytes:
    """Record number ``i + offset`` (its content depends on its number only)."""
    n = i + offset
    return (
        b'{"id":"us%08d","mag":%d.%d,"place":"%d km NE of Ridgecrest, CA","time":%d,'
        b'"props":{"status":"reviewed","sig":%d}}'
        % (n, n % 7, n % 10, n % 90, 1_700_000_000_000 + n, n % 500)
    )


def timed(fns: list[Callable[[], object]], rounds: int) -> list[list[tuple[float, float]]]:
    """Each function's ``(wall, cpu)`` seconds in each of ``rounds`` rounds, run interleaved
    (a shared machine's load then affects them alike)."""
    times: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, spent in zip(fns, times, strict=True):
            started, cpu = time.perf_counter(), time.process_time()
            fn()
            spent.append((time.perf_counter() - started, time.process_time() - cpu))
    return times


def best(fns: list[Callable[[], object]], rounds: int) -> list[tuple[float, float]]:
    """Each function's best ``(wall, cpu)`` seconds over ``rounds`` interleaved rounds."""
    times = timed(fns, rounds)
    return [(min(w for w, _ in spent), min(c for _, c in spent)) for spent in times]


def record_path(mib: int, rounds: int) -> None:
    config = compile_sql(SQL, env={}).tables[0]
    records = []
    size = 0
    while size < mib * (1 << 20):
        records.append(record(len(records)))
        size += len(records[-1]) + 1
    ndjson = b"\n".join(records)
    body = b'{"meta":{"count":%d},"data":[' % len(records) + b",".join(records) + b'],"next":null}'
    decoder = make_decoder(config, records=RecordPath.parse("$.data"))
    schema = pa.schema([f for f in config.decode_schema()])
    options = pajson.ParseOptions(explicit_schema=schema)

    def parse_ndjson() -> None:
        pajson.read_json(pa.BufferReader(ndjson), parse_options=options)

    def decode() -> None:
        result = decoder.decode(body, 0)
        assert result.rows == len(records)

    decode()  # warm the read plan
    base_times, times = timed([parse_ndjson, decode], rounds * RECORD_PATH_ROUNDS)
    print(f"records.path: {len(records):,} records, body {len(body) / (1 << 20):.1f} MiB, "
          f"{len(times)} rounds")  # fmt: skip
    for label, at in (("wall", 0), ("cpu ", 1)):
        baseline, ours = min(t[at] for t in base_times), min(t[at] for t in times)
        rate, base_rate = len(body) / ours / 1e6, len(ndjson) / baseline / 1e6
        # Each round's own ratio (the two ran back to back, under the same load): the
        # median of those is a second estimate, less moved by one lucky or unlucky round.
        paired = statistics.median(
            len(body) / len(ndjson) * b[at] / o[at] for b, o in zip(base_times, times, strict=True)
        )
        print(f"  {label}: pyarrow.json NDJSON parse {base_rate:7.1f} MB/s "
              f"({baseline * 1000:.1f} ms); records.path decode {rate:7.1f} MB/s "
              f"({ours * 1000:.1f} ms); ratio (target >= 0.8): {rate / base_rate:.2f} "
              f"(median of rounds {paired:.2f})")  # fmt: skip


def dedup(keys: int, rounds: int) -> None:
    config = compile_sql(SQL, env={}).tables[0]
    decoder = make_decoder(config, records=RecordPath.parse("$.data"))
    hasher = RowHasher(config.primary_key, config.decode_schema().names)
    new = keys // 10

    def body(offset: int) -> bytes:
        return b'{"data":[' + b",".join(record(i, offset) for i in range(keys)) + b"]}"

    first, second = body(0), body(new)  # the second: the first minus 10 %, plus 10 % new
    warm = KeyState(2 * keys)
    batch = decoder.decode(first, 0).batch
    assert batch is not None
    warm.admit(*hasher.hashes(batch))
    saved = warm.to_bytes()

    def plain() -> None:
        assert decoder.decode(second, 0).rows == keys

    states = [KeyState.from_bytes(saved, 2 * keys) for _ in range(rounds)]  # one per round
    emitted = []

    def with_dedup() -> None:
        state = states.pop()
        result = decoder.decode(second, 0).batch
        assert result is not None
        mask = state.admit(*hasher.hashes(result))
        kept = result.filter(pa.array(mask, pa.bool_()))
        state.to_bytes()
        emitted.append(kept.num_rows)

    (base_wall, base_cpu), (wall, cpu) = best([plain, with_dedup], rounds)
    kept = emitted[0]
    print(f"dedup: {keys:,} records per poll, {kept:,} new ({kept / keys:.0%}), key state "
          f"{len(warm):,} keys")  # fmt: skip
    for label, baseline, ours in (("wall", base_wall, wall), ("cpu ", base_cpu, cpu)):
        print(f"  {label}: poll without dedup {baseline * 1000:8.1f} ms, with dedup "
              f"{ours * 1000:8.1f} ms; ratio (target <= 2): {ours / baseline:.2f}")  # fmt: skip
    per_million = warm.nbytes / len(warm) * 1_000_000
    print(f"key state memory: {per_million / 1e6:.1f} MB per million keys in memory, "
          f"{len(saved) / len(warm) * 1_000_000 / 1e6:.1f} MB serialised")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    record_path(args.mib, args.rounds)
    dedup(args.keys, args.rounds)


if __name__ == "__main__":
    main()
