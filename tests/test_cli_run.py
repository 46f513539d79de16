"""``arroyo-lite run`` in a subprocess against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import signal

import orjson
import pytest

from tests.support import cli

SECRET = "s3cr3t-token-value"


def sql_for(base: str) -> str:
    return f"""
-- items: three NDJSON rows per poll
CREATE TABLE items (id BIGINT, name TEXT) WITH (
    connector = 'polling_http',
    endpoint = '{base}/ndjson?n=3',
    format = 'json',
    framing = 'newline',
    poll_interval_ms = 100
);

-- always failing, with a secret header that must never be printed
CREATE TABLE broken (value TEXT) WITH (
    connector = 'polling_http',
    endpoint = '{base}/status/500',
    headers = 'Authorization: Bearer {{{{ DEMO_TOKEN }}}}',
    format = 'raw_string',
    poll_interval_ms = 100
);

SELECT id, name FROM items;
SELECT count(*) AS n FROM items;
"""



def healthy_sql_for(base: str) -> str:
    """:func:`sql_for` without the always-failing table (a run of it succeeds)."""
    text = sql_for(base)
    head, rest = text.split("-- always failing")
    return head + rest[rest.index("SELECT id") :]


FATAL = """
-- not JSON: with bad_data = 'fail' (the default) this table stops for good
CREATE TABLE fatal (id BIGINT) WITH (
    connector = 'polling_http',
    endpoint = '{base}/invalid',
    format = 'json',
    poll_interval_ms = 100
);
"""


async def test_jsonl_rows_arrive_while_failing_sources_are_reported(server, tmp_path):
    base = str(server.make_url("")).rstrip("/")
    path = tmp_path / "pipeline.sql"
    path.write_text(FATAL.format(base=base) + sql_for(base))

    def polled_six_times(out: str) -> bool:
        rows = [orjson.loads(line) for line in out.splitlines() if line.endswith("}")]
        counts = [r["n"] for r in rows if r.get("_query") == 2]
        return sum(r.get("_query") == 1 for r in rows) >= 6 and bool(counts) and counts[-1] >= 6

    # Stopped (SIGTERM) once the good source has delivered twice, however slow the machine:
    # not after a fixed --for, which a loaded machine may fill with fewer polls.
    done = await cli.run_until(
        "run",
        str(path),
        "--format",
        "jsonl",
        until=polled_six_times,
        until_stderr=lambda err: "warning: source 'broken'" in err
        and "error: source 'fatal' stopped" in err,
        DEMO_TOKEN=SECRET,
    )
    # Two sources never delivered: the run is not a success, and its last line says why.
    assert done.code == 1, done.stderr
    assert done.stderr.splitlines()[-1] == "run ended with 2 failed sources: 'fatal', 'broken'"
    assert "error: source 'broken' never succeeded (" in done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    # stdout holds data only: every line is a JSON object tagged with its SELECT.
    plain = [r for r in rows if r["_query"] == 1]
    counts = [r["n"] for r in rows if r["_query"] == 2]
    assert {(r["id"], r["name"]) for r in plain} == {(i, f"item-{i}") for i in range(3)}
    # Several polls of the good source happened while the bad one kept failing.
    assert len(plain) >= 6 and len(plain) % 3 == 0
    assert counts == sorted(counts) and counts[-1] >= 6
    assert "warning: source 'broken'" in done.stderr
    assert done.stderr.count("error: source 'fatal' stopped: invalid JSON") == 1
    assert "500" in done.stderr
    assert SECRET not in done.stdout + done.stderr


#: A progress line once 'items' has rows and 'broken' has failed.
DRAWN_WITH_ROWS_AND_A_FAILURE = (
    r"items: [1-9]\d* polls, ([3-9]|\d\d+) rows.*broken: \d+ polls, 0 rows, [1-9]"
)


async def test_progress_line_shows_each_source_on_stderr_only(server, tmp_path):
    base = str(server.make_url("")).rstrip("/")
    path = tmp_path / "pipeline.sql"
    path.write_text(sql_for(base))
    done = await cli.run_until(
        "run",
        str(path),
        "--format",
        "jsonl",
        "--progress",
        until_stderr=lambda err: bool(re.search(DRAWN_WITH_ROWS_AND_A_FAILURE, err)),
        DEMO_TOKEN=SECRET,
    )
    assert done.code == 1, done.stderr  # 'broken' never succeeded
    # Redrawn in place: each drawing starts with a carriage return and an erase-line.
    drawn = [part for part in done.stderr.split("\r\x1b[K") if part.startswith("items: ")]
    assert drawn, done.stderr
    last = drawn[-1]
    items = re.search(r"items: (\d+) polls, (\d+) rows", last)
    assert items and int(items.group(1)) >= 1 and int(items.group(2)) >= 3, last
    assert re.search(r"broken: \d+ polls, 0 rows, \d+ failed", last), last
    assert "\x1b" not in done.stdout  # stdout stays pure data
    assert all(orjson.loads(line) for line in done.stdout.splitlines())


async def test_one_select_has_no_query_tag_and_csv_has_one_header(server, tmp_path):
    base = str(server.make_url("")).rstrip("/")
    path = tmp_path / "one.sql"
    path.write_text(sql_for(base).split("-- always failing")[0] + "SELECT id, name FROM items;\n")
    done = await cli.run_until(
        "run", str(path), "--format", "csv", until=lambda out: out.count("\n") >= 7
    )  # the header and two polls
    assert done.code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == '"id","name"'
    assert lines.count('"id","name"') == 1
    assert set(lines[1:]) == {'0,"item-0"', '1,"item-1"', '2,"item-2"'}


async def test_table_format_labels_each_select(server, tmp_path):
    path = tmp_path / "pipeline.sql"
    path.write_text(healthy_sql_for(str(server.make_url("")).rstrip("/")))
    done = await cli.run_until(
        "run",
        str(path),
        "--no-progress",
        until=lambda out: "item-2" in out and "[2] SELECT count(*)" in out,
        DEMO_TOKEN=SECRET,
    )
    assert done.code == 0, done.stderr
    assert "[1] SELECT id, name FROM items" in done.stdout
    assert "[2] SELECT count(*) AS n FROM items" in done.stdout
    assert re.search(r"item-2", done.stdout)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_ctrl_c_or_sigterm_stops_cleanly_with_exit_0(server, tmp_path, signum):
    path = tmp_path / "pipeline.sql"
    path.write_text(healthy_sql_for(str(server.make_url("")).rstrip("/")))
    proc = await cli.start("run", str(path), "--format", "jsonl", DEMO_TOKEN=SECRET)
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert orjson.loads(first)["_query"] in (1, 2)
    proc.send_signal(signum)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    for line in out.splitlines():
        orjson.loads(line)  # still only data, even when interrupted


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        (
            "CREATE TABLE t (a TEXT) WITH (\n  connector = 'polling_http',\n"
            "  endpoint = 'http://127.0.0.1:9/x',\n  format = 'json',\n  method = 'get'\n);\n",
            ":5:",
        ),
        ("SELECT FROM WHERE;\n", ":1:"),
    ],
)
async def test_bad_sql_exits_1_with_position(tmp_path, sql, where):
    path = tmp_path / "bad.sql"
    path.write_text(sql)
    done = await cli.run("run", str(path), "--for", "1")
    assert done.code == 1
    assert re.search(rf"{re.escape(str(path))}{where}\d+: error: ", done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


async def test_a_select_duckdb_rejects_exits_1(tmp_path):
    path = tmp_path / "bad.sql"
    path.write_text("SELECT nope FROM missing_table;\n")
    done = await cli.run("run", str(path), "--for", "1", "--format", "jsonl")
    assert done.code == 1
    assert "missing_table" in done.stderr and "error:" in done.stderr
    assert "Traceback" not in done.stderr


async def test_state_dir_keeps_rows_across_runs(server, tmp_path):
    base = str(server.make_url("")).rstrip("/")
    path = tmp_path / "count.sql"
    items = sql_for(base).split("-- always failing")[0]
    path.write_text(items + "SELECT count(*) AS n FROM items;\n")
    state = tmp_path / "state"

    def counts_of(out: str) -> list[int]:
        # Whole lines only: the output is read while the command is still writing.
        lines = out.splitlines(keepends=True)
        return [orjson.loads(line)["n"] for line in lines if line.endswith("\n")]

    args = ("run", str(path), "--format", "jsonl", "--state-dir", str(state))
    first = await cli.run_until(*args, until=lambda out: any(n >= 3 for n in counts_of(out)))
    assert first.code == 0, first.stderr
    before = counts_of(first.stdout)[-1]
    assert before >= 3
    second = await cli.run_until(*args, until=lambda out: any(n > before for n in counts_of(out)))
    assert second.code == 0, second.stderr
    counts = counts_of(second.stdout)
    # The restarted run starts from every row the first one received.
    assert counts[0] >= before and counts[-1] > before


async def test_status_table_is_queryable_from_a_file(server, tmp_path):
    path = tmp_path / "status.sql"
    path.write_text(
        sql_for(str(server.make_url("")).rstrip("/")).split("SELECT id")[0]
        + 'SELECT "table", failures > 0 AS failing FROM arroyo_status ORDER BY 1;\n'
    )
    done = await cli.run_until(
        "run",
        str(path),
        "--format",
        "jsonl",
        "--no-changes",
        until=lambda out: '"failing":true' in out and '"failing":false' in out,
        DEMO_TOKEN=SECRET,
    )
    assert done.code == 1, done.stderr  # 'broken' never succeeded
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    latest = max(r["_update"] for r in rows)  # a consumer keeps the newest whole result
    last = [{k: v for k, v in r.items() if k != "_update"} for r in rows if r["_update"] == latest]
    assert last == [{"table": "broken", "failing": True}, {"table": "items", "failing": False}]
