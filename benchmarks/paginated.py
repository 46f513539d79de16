"""A paginated poll (issue 10 item 10): 100 pages x 1,000 records, arroyo-lite vs dlt.

A local server in its own process serves ``/items?page=N`` (N = 1..100): a JSON array of
1,000 records (id, name, value, active, created_at, tags) per page, GitHub-style
``Link: <...>; rel="next"`` on every page but the last. Bodies are built once, so the server
costs the same for both clients.

* arroyo-lite: a ``polling_http`` table with ``pagination.type = 'header_link'`` in a
  Session; timed (wall and CPU of the process) from ``execute`` to the 100,000th row in
  the live table (typed Arrow rows, queryable with SQL).
* dlt: ``rest_api_source`` with a ``header_link`` paginator on the same server; timed from
  building the source to the last record of iterating its resource (extraction only: no
  normalize, no load, the least dlt can do).

The two alternate ``--repeat`` times in the same run; the script prints each median, records/s
and the ratio (target: arroyo-lite >= 3x dlt). Then the time to the first row after ``arroyo-lite
run`` starts, in a fresh process (``run --format jsonl`` with a SELECT of one row, from spawn
to its first line on stdout; target < 1 s), next to the least any Python tool takes (a fresh
interpreter importing aiohttp, fetching page 1 and printing it) and the floor of a tool on
pyarrow and DuckDB (``first_row.FLOOR``: both imported, one query over a one-row Arrow table,
printed), timed alternately. The run's time is split in three parts by the server's stamps
(one monotonic clock for the machine): spawn to the request of page 1 (start-up), page 1 to
the last page answered (the poll), and from there to the first row printed (the last decodes,
the query, the output). ``--against DIR`` also times the package in DIR (main's, from ``git
archive main arroyo_lite``) alternated with this one; ``--first-row-only`` skips the
in-process poll and dlt.

dlt is an optional dependency (``pip install 'arroyo-lite[bench]'``); without it the script
says so and prints arroyo-lite's figures alone.

    .venv/bin/python benchmarks/paginated.py [--repeat 5] [--pages 100] [--per-page 1000]
        [--first-row-only] [--against DIR]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

# benchmarks/ is on sys.path when this runs as a script: first_row.py times a spawned run.
from first_row import FLOOR, compile_package, first_line_cpu

TARGET_RATIO = 3.0
TARGET_FIRST_ROW_S = 1.0

SERVER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from aiohttp import web

    pages, per = int(sys.argv[1]), int(sys.argv[2])

    def body(page):
        start = (page - 1) * per
        return json.dumps([
            {"id": i, "name": f"item-{i}", "value": i * 0.5, "active": i % 2 == 0,
             "created_at": "2026-12-01T12:00:00Z", "tags": ["a", "b"]}
            for i in range(start, start + per)
        ]).encode()

    bodies = {p: body(p) for p in range(1, pages + 1)}
    # CLOCK_MONOTONIC (one clock for every process of the machine): when page 1 was asked
    # for and when the last page was answered, for the parts of the time to the first row.
    stamps = {}

    async def items(request):
        page = int(request.query.get("page", "1"))
        if page == 1:
            stamps.clear()
            stamps["first"] = time.monotonic()
        headers = {"Content-Type": "application/json"}
        if page < pages:
            headers["Link"] = f'<{request.url.with_query(page=page + 1)}>; rel="next"'
        response = web.Response(body=bodies.get(page, b"[]"), headers=headers)
        await response.prepare(request)
        await response.write_eof()
        if page == pages:
            stamps["last"] = time.monotonic()
        return response

    async def times(request):
        return web.json_response(stamps)

    async def main():
        app = web.Application()
        app.router.add_get("/items", items)
        app.router.add_get("/stamps", times)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

BARE = textwrap.dedent(
    """
    import asyncio, sys, aiohttp

    async def main():
        async with aiohttp.ClientSession() as s, s.get(sys.argv[1]) as r:
            print((await r.text())[:80], flush=True)

    asyncio.run(main())
    """
)


def table_sql(base: str, pages: int, name: str = "items") -> str:
    return (
        f"CREATE TABLE {name} (id BIGINT, name TEXT, value DOUBLE, active BOOLEAN, "
        f"created_at TIMESTAMP, tags TEXT[]) WITH (connector = 'polling_http', "
        f"endpoint = '{base}/items', format = 'json', 'pagination.type' = 'header_link', "
        f"'pagination.max_pages' = {pages}, poll_interval_ms = 3600000);\n"
    )


def ours(base: str, pages: int, total: int) -> tuple[float, float]:
    """Seconds from creating the table to all ``total`` rows in it, and the CPU seconds the
    process used meanwhile (all threads: the poll, the decodes, pyarrow's readers; on a
    loaded machine about what the wall time would be on an idle one)."""
    from arroyo_lite import Session

    with Session() as session:
        started, cpu = time.perf_counter(), time.process_time()
        session.execute(table_sql(base, pages))
        while True:
            [status] = session.status()
            if status.rows >= total:
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu
                break
            if status.failures:
                raise SystemExit(f"arroyo-lite poll failed: {status.last_error}")
            time.sleep(0.002)
        counted = session.query("SELECT count(*) FROM items")[0][0].as_py()
    if counted != total:
        raise SystemExit(f"arroyo-lite: {counted} rows, expected {total}")
    return elapsed, cpu


def first_row_parts(base: str, started: float, wall: float) -> tuple[float, float, float]:
    """The parts of one spawned run's ``wall`` seconds to its first row (spawned at monotonic
    time ``started``), from the server's stamps: spawn to the request of page 1 (start-up:
    imports, compiling the SQL, starting the source), page 1 asked for to the last page
    answered (the poll), and the last page answered to the first row printed (the last
    decodes, the commit, the query and the output)."""
    with urllib.request.urlopen(base + "/stamps") as answer:
        stamps = json.load(answer)
    first, last = stamps["first"] - started, stamps["last"] - started
    return first, last - first, wall - last


def dlt_available() -> str | None:
    """dlt's version, or None when it is not installed."""
    try:
        import dlt
    except ImportError:
        return None
    return str(dlt.__version__)


def theirs(base: str, total: int) -> float:
    """Seconds for dlt's rest_api source to extract every record of the same poll."""
    from dlt.sources.rest_api import rest_api_source

    started = time.perf_counter()
    source = rest_api_source(
        {
            "client": {"base_url": base + "/", "paginator": {"type": "header_link"}},
            "resources": [{"name": "items", "endpoint": {"path": "items"}}],
        }
    )
    count = 0
    for item in source.resources["items"]:
        count += len(item) if isinstance(item, list) else 1
    elapsed = time.perf_counter() - started
    if count != total:
        raise SystemExit(f"dlt: {count} records, expected {total}")
    return elapsed


def first_rows(
    base: str,
    pages: int,
    repeat: int,
    against: Path | None,
    records_per_s: float | None,
    poll_cpus: list[float],
) -> None:
    """Time the first row after ``run`` starts, ``repeat`` times, alternated with the bare
    baseline and the floor (and the package in ``against``); print the medians, the parts and
    the JSON summary line."""
    trees: list[tuple[str, Path | None]] = [("arroyo-lite", None)]
    if against is not None:
        trees.append((f"arroyo-lite in {against}", against.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paginated.sql"
        path.write_text(table_sql(base, pages) + "SELECT id FROM items WHERE id = 0;\n")
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in trees}
        parts: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in trees}
        bares, floors = [], []
        compile_package()
        for _, tree in trees[1:]:
            compileall.compile_dir(tree / "arroyo_lite", quiet=1)
        bare = [sys.executable, "-c", BARE, base + "/items?page=1"]
        for _ in range(repeat):
            for label, tree in trees:
                # The other tree first on sys.path (a -c script's own first entry is the
                # working directory, which may be a checkout).
                put = f"import sys; sys.path.insert(0, {str(tree)!r}); " if tree else ""
                run = [sys.executable, "-c", put + "from arroyo_lite.cli import main; main()",
                       "run", str(path), "--format", "jsonl"]  # fmt: skip
                started = time.monotonic()
                runs[label].append(first_line_cpu(run))
                parts[label].append(first_row_parts(base, started, runs[label][-1][0]))
            bares.append(first_line_cpu(bare))
            floors.append(first_line_cpu([sys.executable, "-c", FLOOR]))
    bare_wall = statistics.median(t for t, _ in bares)
    bare_cpu = statistics.median(c for _, c in bares)
    floor_wall = statistics.median(t for t, _ in floors)
    floor_cpu = statistics.median(c for _, c in floors)
    print(f"bare python + aiohttp GET of page 1 + print: {bare_wall:.2f} s, {bare_cpu:.2f} "
          f"CPU s; floor (pyarrow + duckdb, one query): {floor_wall:.2f} s, {floor_cpu:.2f} "
          "CPU s")  # fmt: skip
    summary: dict[str, object] = {}
    for label, _ in trees:
        wall = statistics.median(t for t, _ in runs[label])
        cpu = statistics.median(c for _, c in runs[label])
        start, poll, output = (statistics.median(p[i] for p in parts[label]) for i in range(3))
        verdict = "PASS" if wall < TARGET_FIRST_ROW_S else "FAIL"
        print(f"time to first row after `{label} run` starts (all {pages} pages): "
              f"{wall:.2f} s median, {cpu:.2f} CPU s (runs: "
              f"{', '.join(f'{t:.2f}' for t, _ in runs[label])}; target < "
              f"{TARGET_FIRST_ROW_S:.0f} s): {verdict}; {wall / bare_wall:.2f}x bare wall, "
              f"{cpu / bare_cpu:.2f}x bare CPU, {wall - floor_wall:+.2f} s above the "
              "floor")  # fmt: skip
        print(f"  its parts (medians): spawn to the request of page 1 {start:.2f} s; the poll, "
              f"page 1 asked to page {pages} answered {poll:.2f} s; from there to the first "
              f"row printed {output:.2f} s")  # fmt: skip
        if not summary:
            split = [round(x, 3) for x in (start, poll, output)]
            summary = {"first_row_s": round(wall, 3), "first_row_cpu_s": round(cpu, 3),
                       "first_row_parts_s": split}  # fmt: skip
    if records_per_s is not None:
        summary = {"records_per_s": round(records_per_s),
                   "poll_cpu_s": round(statistics.median(poll_cpus), 3), **summary}  # fmt: skip
    print(json.dumps(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--per-page", type=int, default=1000)
    parser.add_argument(
        "--first-row-only",
        action="store_true",
        help="time only the first row after `run` (no in-process poll, no dlt)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        help="also time the first row of the arroyo_lite package in DIR (such "
        "as main's, from `git archive main arroyo_lite`), alternated with this one",
    )
    args = parser.parse_args(argv)
    total = args.pages * args.per_page
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.pages), str(args.per_page)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        version = dlt_available()
        print(f"{args.pages} pages x {args.per_page:,} records from {base} (another process)")
        if version is None:
            print("dlt is NOT installed (pip install 'arroyo-lite[bench]'): no baseline, so no "
                  "ratio; arroyo-lite's figures only")  # fmt: skip
        if args.first_row_only:
            first_rows(base, args.pages, args.repeat, args.against, None, [])
            return 0
        ours(base, args.pages, total)  # warm-up: imports, first connections
        if version is not None:
            theirs(base, total)
        our_times, our_cpus, their_times = [], [], []
        for _ in range(args.repeat):
            elapsed, cpu = ours(base, args.pages, total)
            our_times.append(elapsed)
            our_cpus.append(cpu)
            if version is not None:
                their_times.append(theirs(base, total))
        mine = statistics.median(our_times)
        print(f"arroyo-lite: {mine:.3f} s median, {total / mine:,.0f} records/s "
              f"(runs: {', '.join(f'{t:.3f}' for t in our_times)}); "
              f"{statistics.median(our_cpus):.3f} CPU s median "
              f"(runs: {', '.join(f'{c:.3f}' for c in our_cpus)})")  # fmt: skip
        if version is not None:
            dlts = statistics.median(their_times)
            ratio = dlts / mine
            print(f"dlt {version} rest_api: {dlts:.3f} s median, {total / dlts:,.0f} records/s "
                  f"(runs: {', '.join(f'{t:.3f}' for t in their_times)})")  # fmt: skip
            verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
            print(f"ratio: arroyo-lite {ratio:.2f}x dlt's records/s "
                  f"(target >= {TARGET_RATIO:.0f}x): {verdict}")  # fmt: skip
        first_rows(base, args.pages, args.repeat, args.against, total / mine, our_cpus)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
