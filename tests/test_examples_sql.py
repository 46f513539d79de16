"""Every file in sql_examples/ validates, and its queries run on DuckDB over empty tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from arroyo_lite.config import TableKind
from arroyo_lite.sql import compile_file
from arroyo_lite.sql.statements import CreateView, Insert, Query

EXAMPLES = sorted((Path(__file__).parents[1] / "sql_examples").glob("*.sql"))
ENV = {"GITHUB_TOKEN": "ghp_example_token_for_tests", "SHOP_TOKEN": "shop-token-for-tests",
       "STRIPE_API_KEY": "sk_test_for_tests", "ORDERS_CLIENT_ID": "demo-client",
       "ORDERS_CLIENT_SECRET": "demo-client-secret"}  # fmt: skip


def test_examples_exist() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"price_ticker", "weather", "earthquakes", "github_events", "ndjson_logs",
            "node_metrics", "wikimedia_recent_changes", "bluesky_jetstream"} <= names  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("--"), "each example opens with a comment saying what it shows"
    program = compile_file(path, env=ENV)
    assert program.tables, "each example defines at least one table"
    for table in program.tables:
        if table.kind is TableKind.SINK:
            assert table.connector in ("filesystem", "webhook", "stdout", "blackhole")
        else:
            assert table.kind is TableKind.SOURCE
            assert table.connector in ("polling_http", "sse", "websocket")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_queries_run_on_duckdb(path: Path) -> None:
    from arroyo_lite.sql.aggregates import install as install_functions
    from arroyo_lite.sql.transpile import to_duckdb

    program = compile_file(path, env=ENV)
    con = duckdb.connect()
    install_functions(con)  # DataFusion's functions the translations call (arroyo_sum...)
    try:
        for table in program.tables:
            if table.kind is TableKind.SOURCE:
                con.register(table.name, table.output_schema().empty_table())
        for statement in program.statements:
            if isinstance(statement, CreateView):
                con.execute(f"CREATE VIEW {statement.name} AS {to_duckdb(statement.query)}")
            elif isinstance(statement, Query | Insert):
                cursor = con.execute(to_duckdb(statement.query))
                rows = cursor.fetchall()
                # Over empty tables: no rows, or one row of a global aggregate (count = 0).
                assert rows in ([], [(0,)])
                assert cursor.description
    finally:
        con.close()


def test_github_example_needs_its_token() -> None:
    from arroyo_lite.errors import ValidationErrors

    path = next(p for p in EXAMPLES if p.stem == "github_events")
    with pytest.raises(ValidationErrors) as info:
        compile_file(path, env={})
    [error] = info.value
    assert error.message == "Environment variable GITHUB_TOKEN not found"
    assert error.position is not None and error.position.line == 18


def test_price_pipeline_runs_against_the_demo_api(tmp_path: Path) -> None:
    """The pipeline example polls the demo API, aggregates, and writes Parquet files
    (partitioned by symbol) and webhook posts to the demo API's /hooks."""
    import json
    import urllib.request

    import pyarrow.parquet as pq

    from arroyo_lite import Session
    from arroyo_lite.demo import retarget
    from arroyo_lite.demo.api import SYMBOLS, DemoServer
    from tests.support.threaded_server import wait_for

    path = next(p for p in EXAMPLES if p.stem == "price_pipeline")
    out = tmp_path / "price_ticks"
    with DemoServer(port=0, seed=7) as demo:
        sql = retarget(path.read_text(encoding="utf-8"), demo.port)
        sql = sql.replace("path = 'price_ticks'", f"path = '{out}'")
        sql = sql.replace("volume > 400", "volume > 250")  # (more posts, sooner)

        def hooks() -> list[dict[str, object]]:
            with urllib.request.urlopen(f"{demo.url}/hooks", timeout=10) as answer:
                received: list[dict[str, object]] = json.loads(answer.read())
                return received

        with Session() as session:
            session.execute(sql)
            wait_for(lambda: session.query("SELECT count(*) FROM prices")[0][0].as_py() >= 20)
            wait_for(lambda: len(hooks()) >= 2)
            live = session.query(
                "SELECT symbol, count(*) AS ticks, avg(price) AS avg_price, sum(volume) AS volume"
                " FROM prices GROUP BY symbol ORDER BY symbol"
            )
            assert live.column("symbol").to_pylist() == sorted(SYMBOLS)
            polled = session.query("SELECT count(*) FROM prices")[0][0].as_py()
        # Closed: every polled row up to the close is in a committed file.
        posts = hooks()
    files = sorted(p for p in out.rglob("*.parquet") if "__in_progress" not in p.parts)
    assert {p.parent.name for p in files} == {f"symbol={s}" for s in SYMBOLS}
    ticks = pq.read_table(files, partitioning=None)  # type: ignore[arg-type]
    assert ticks.num_rows >= polled
    assert ticks.column_names == ["symbol", "price", "volume", "notional", "ts"]
    assert all(isinstance(p["volume"], int) and p["volume"] > 250 for p in posts)
    assert set(posts[0]) == {"symbol", "price", "volume"}
