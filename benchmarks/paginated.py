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
printed), timed alternately.

dlt is an optional dependency (``pip install 'arroyo-lite[bench]'``); without it the script
says so and prints arroyo-lite's figures alone.

    .venv/bin/python benchmarks/paginated.py [--repeat 5] [--pages 100] [--per-page 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# benchmarks/ is on sys.path when this runs as a script: first_row.py times a spawned run.
from first_row import FLOOR, compile_package, first_line_cpu

TARGET_RATIO = 3.0
TARGET_FIRST_ROW_S = 1.0

SERVER = textwrap.dedent(
    """
    import asyncio, json, sys
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

    async def items(request):
        page = int(request.query.get("page", "1"))
        headers = {"Content-Type": "application/json"}
        if page < pages:
            headers["Link"] = f'<{request.url.with_query(page=page + 1)}>; rel="next"'
        return web.Response(body=bodies.get(page, b"[]"), headers=headers)

    async def main():
        app = web.Application()
        app.router.add_get("/items", items)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--per-page", type=int, default=1000)
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
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "paginated.sql"
            path.write_text(table_sql(base, args.pages) + "SELECT id FROM items WHERE id = 0;\n")
            run = [sys.executable, "-c", "from arroyo_lite.cli import main; main()",
                   "run", str(path), "--format", "jsonl"]  # fmt: skip
            bare = [sys.executable, "-c", BARE, base + "/items?page=1"]
            runs, bares, floors = [], [], []
            compile_package()
            for _ in range(args.repeat):
                runs.append(first_line_cpu(run))
                bares.append(first_line_cpu(bare))
                floors.append(first_line_cpu([sys.executable, "-c", FLOOR]))
        first = statistics.median(t for t, _ in runs)
        first_cpu = statistics.median(c for _, c in runs)
        floor = statistics.median(t for t, _ in bares)
        floor_cpu = statistics.median(c for _, c in bares)
        verdict = "PASS" if first < TARGET_FIRST_ROW_S else "FAIL"
        print(f"time to first row after `arroyo-lite run` starts (all {args.pages} pages): "
              f"{first:.2f} s median, {first_cpu:.2f} CPU s (target < "
              f"{TARGET_FIRST_ROW_S:.0f} s): {verdict}; bare python + aiohttp GET of page 1 + "
              f"print: {floor:.2f} s, {floor_cpu:.2f} CPU s (ratio {first / floor:.2f}x wall, "
              f"{first_cpu / floor_cpu:.2f}x CPU); floor (pyarrow + duckdb, one query): "
              f"{statistics.median(t for t, _ in floors):.2f} s, "
              f"{statistics.median(c for _, c in floors):.2f} CPU s")  # fmt: skip
        print(json.dumps({"records_per_s": round(total / mine),
                          "poll_cpu_s": round(statistics.median(our_cpus), 3),
                          "first_row_s": round(first, 3),
                          "first_row_cpu_s": round(first_cpu, 3)}))  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
