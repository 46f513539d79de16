"""``arroyo-lite test`` and :func:`~arroyo_lite.connectors.polling_http.probe.probe` on loopback.

The command runs its own event loop (``asyncio.run``), so the tests call it through click's
CliRunner on a worker thread while the test loop keeps serving the aiohttp app.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from arroyo_lite.cli import main
from arroyo_lite.connectors.polling_http.probe import ProbeStage, probe
from arroyo_lite.sql import compile_sql
from tests.support.polling import polling_table
from tests.support.stream_app import STREAM_STATE, make_stream_app

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t,with:colon"



def table_sql(name: str, endpoint: str, *, fmt: str = "raw_string", extra: str = "") -> str:
    return f"""
CREATE TABLE {name} (value TEXT) WITH (
  connector = 'polling_http',
  endpoint = '{endpoint}',
  headers = 'Authorization: Bearer {{{{ PROBE_TOKEN }}}}, X-Plain: visible',
  format = '{fmt}'{extra}
);
"""


async def invoke(tmp_path: Path, sql: str, *args: str, env: dict[str, str] | None = None) -> Result:
    path = tmp_path / "tables.sql"
    path.write_text(sql, encoding="utf-8")
    runner = CliRunner()
    environment = {"PROBE_TOKEN": SECRET} if env is None else env
    return await asyncio.to_thread(
        runner.invoke, main, ["test", str(path), *args], env=environment
    )


async def test_success_shows_request_response_and_rows(server: Any, tmp_path: Path) -> None:
    sql = table_sql("things", str(server.make_url("/ndjson?n=3")), extra=",\n  framing = 'newline'")
    result = await invoke(tmp_path, sql)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"GET {server.make_url('/ndjson?n=3')}" in out
    assert "Authorization: Bearer ****" in out
    assert "X-Plain: visible" in out
    assert "200 OK" in out
    assert "application/x-ndjson" in out
    assert '{"id":2,"name":"item-2"}' in out
    assert "3 row(s) decoded" in out
    assert "1 of 1 tested table(s) OK" in out
    assert SECRET not in out and "s3cr3t" not in out


async def test_non_2xx_fails_with_arroyo_wording(server: Any, tmp_path: Path) -> None:
    result = await invoke(tmp_path, table_sql("down", str(server.make_url("/status/503"))))
    assert result.exit_code == 1
    assert "503 Service Unavailable" in result.output
    assert "HTTP request failed: http server responded with 503" in result.output
    assert "body: status" in result.output
    assert "0 of 1 tested table(s) OK" in result.output


async def test_refused_connection_is_reported(tmp_path: Path) -> None:
    result = await invoke(tmp_path, table_sql("nowhere", "http://127.0.0.1:1/x"))
    assert result.exit_code == 1
    assert "HTTP request failed: error connecting to 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


async def test_table_filter_and_unknown_table(server: Any, tmp_path: Path) -> None:
    sql = table_sql("good", str(server.make_url("/fixed"))) + table_sql(
        "bad", str(server.make_url("/status/404"))
    )
    only_good = await invoke(tmp_path, sql, "--table", "good")
    assert only_good.exit_code == 0, only_good.output
    assert "bad (polling_http)" not in only_good.output
    both = await invoke(tmp_path, sql)
    assert both.exit_code == 1
    assert "1 of 2 tested table(s) OK" in both.output
    typo = await invoke(tmp_path, sql, "--table", "goood")
    assert typo.exit_code == 1
    assert "no source table 'goood'" in typo.output
    assert "did you mean 'good'?" in typo.output


async def test_impulse_tables_are_skipped_with_a_note(server: Any, tmp_path: Path) -> None:
    sql = table_sql("web", str(server.make_url("/fixed")))
    sql += "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '10');\n"
    result = await invoke(tmp_path, sql)
    assert result.exit_code == 0, result.output
    assert "skipped: 'impulse' generates its rows locally" in result.output


async def test_sql_errors_and_missing_variables_exit_1(tmp_path: Path) -> None:
    result = await invoke(tmp_path, table_sql("t", "http://127.0.0.1:1/x"), env={})
    assert result.exit_code == 1
    assert "Environment variable PROBE_TOKEN not found" in result.output
    assert "Traceback" not in result.output
    missing = await asyncio.to_thread(
        CliRunner().invoke, main, ["test", str(tmp_path / "absent.sql")]
    )
    assert missing.exit_code == 1
    assert f"{tmp_path / 'absent.sql'}: error: cannot read file" in missing.output


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(main, ["test", "--help"])
    assert result.exit_code == 0
    for option in ("--table", "--rows", "--timeout"):
        assert option in result.output


async def test_probe_reports_everything(server: Any) -> None:
    config = polling_table(
        str(server.make_url("/echo")),
        method="POST",
        body="hello",
        headers=(("X-Key", "{{ KEY }}"),),
    )
    result = await probe(config, {"KEY": SECRET}, max_rows=1)
    assert result.ok
    assert result.stage is ProbeStage.DONE
    assert (result.method, result.status, result.reason) == ("POST", 200, "OK")
    assert result.headers == (("X-Key", "****"),)
    assert result.size is not None and result.size > 0
    assert result.latency_s is not None and result.latency_s >= 0
    assert result.content_type is not None and result.content_type.startswith("application/json")
    assert result.rows is not None and result.rows.num_rows == 1
    assert result.error is None
    # The server echoed the secret into the body; the rows shown are output too: masked.
    [value] = result.rows.column("value").to_pylist()
    assert json.loads(value)["headers"]["X-Key"] == "****"
    assert "s3cr3t" not in value


async def test_probe_masks_secrets_in_nested_row_values(httpbin: Any) -> None:
    sql = f"""
CREATE TABLE echoed (headers STRUCT<Token TEXT, Host TEXT>, tags TEXT[]) WITH (
  connector = 'polling_http',
  endpoint = '{httpbin.url}/headers',
  headers = 'Token: x-{{{{ PROBE_TOKEN }}}}-y',
  format = 'json'
);
"""
    [config] = compile_sql(sql, env={"PROBE_TOKEN": SECRET}).tables
    result = await probe(config, {"PROBE_TOKEN": SECRET})
    assert result.ok, result.error
    assert result.rows is not None
    [row] = result.rows.drop_columns(["_timestamp"]).to_pylist()
    assert row["headers"]["Token"] == "x-****-y"
    assert row["headers"]["Host"] == httpbin.url.split("//")[1]
    assert row["tags"] is None
    assert result.rows.schema == config.output_schema()


def test_row_masking_keeps_lists_and_nulls() -> None:
    from arroyo_lite.connectors.polling_http.http import HttpRequest
    from arroyo_lite.connectors.polling_http.probe import _mask_rows
    from arroyo_lite.secrets import Secrets

    request = HttpRequest("GET", "http://h/", (), None, 1.0, 10, secrets=Secrets.of(["k3y"]))
    rows = pa.table(
        {
            "tags": pa.array([["a-k3y", None], None, ["k3yk3y"]], pa.list_(pa.string())),
            "s": pa.array([{"t": "k3y"}, None, {"t": None}], pa.struct([("t", pa.string())])),
            "n": [1, 2, 3],
        }
    ).slice(1)
    masked = _mask_rows(rows, request)
    assert masked.to_pylist() == [
        {"tags": None, "s": None, "n": 2},
        {"tags": ["********"], "s": {"t": None}, "n": 3},
    ]


async def test_probe_timeout_override(server: Any) -> None:
    config = polling_table(str(server.make_url("/sleep?seconds=60")))
    result = await probe(config, {}, timeout=0.2)
    assert not result.ok
    assert result.stage is ProbeStage.REQUEST
    assert result.error == "HTTP request failed: operation timed out after 200 ms"
    assert result.status is None


async def test_probe_missing_variable(server: Any) -> None:
    config = polling_table(str(server.make_url("/fixed")), headers=(("X", "{{ NOPE_VAR }}"),))
    result = await probe(config, {})
    assert result.stage is ProbeStage.CONFIG
    assert result.error == "Environment variable NOPE_VAR not found"


def json_sql(name: str, endpoint: str, extra: str = "") -> str:
    return f"""
CREATE TABLE {name} (id BIGINT, name TEXT) WITH (
  connector = 'polling_http',
  endpoint = '{endpoint}',
  format = 'json'{extra}
);
"""


async def test_decoding_failure_is_explained(server: Any, tmp_path: Path) -> None:
    result = await invoke(tmp_path, json_sql("broken", str(server.make_url("/invalid"))))
    assert result.exit_code == 1
    assert "200 OK" in result.output
    assert "error (decoding): invalid JSON" in result.output


async def test_dropped_records_fail_the_test(server: Any, tmp_path: Path) -> None:
    sql = json_sql(
        "mixed", str(server.make_url("/mixed")), ",\n  framing = 'newline',\n  bad_data = 'drop'"
    )
    result = await invoke(tmp_path, sql)
    assert result.exit_code == 1
    assert "1 record(s) do not match the table's schema" in result.output
    assert "2 row(s) decoded" in result.output


async def test_structured_rows_are_shown(server: Any, tmp_path: Path) -> None:
    result = await invoke(tmp_path, json_sql("items", str(server.make_url("/array?n=8"))))
    assert result.exit_code == 0, result.output
    assert "item-4" in result.output and "item-5" not in result.output  # --rows 5 by default
    assert "8 row(s) decoded, first 5 shown" in result.output
    # One count line, not also the table's own "5 rows" (which counts only those shown).
    assert not re.search(r"^\s*5 rows\s*$", result.output, re.M), result.output


def test_quickstart_tables_all_probe_ok_against_the_demo_api(tmp_path: Path) -> None:
    from arroyo_lite.demo import quickstart_sql, retarget
    from arroyo_lite.demo.api import DemoServer

    with DemoServer(port=0, seed=1) as demo:
        path = tmp_path / "quickstart.sql"
        path.write_text(retarget(quickstart_sql(), demo.port), encoding="utf-8")
        result = CliRunner().invoke(main, ["test", str(path), "--rows", "2"])
    assert result.exit_code == 0, result.output
    summary = re.search(r"(\d+) of (\d+) tested table\(s\) OK", result.output)
    assert summary is not None and summary.group(1) == summary.group(2) != "0"


async def test_values_are_printed_verbatim(server: Any, tmp_path: Path) -> None:
    # ':b:' and ':smile:' are rich emoji codes and '[bold]' is rich markup: none may be
    # interpreted in a header value, a URL or an error message.
    endpoint = str(server.make_url("/status/404")) + "?q=:smile:"
    sql = f"""
CREATE TABLE odd (value TEXT) WITH (
  connector = 'polling_http',
  endpoint = '{endpoint}',
  headers = 'X-Odd: a:b:c [bold]x[/bold]',
  format = 'raw_string'
);
"""
    result = await invoke(tmp_path, sql, env={})
    assert result.exit_code == 1
    assert "X-Odd: a:b:c [bold]x[/bold]" in result.output
    assert f"GET {endpoint}" in result.output


# --- sse and websocket tables --------------------------------------------------------------


@pytest.fixture
async def stream_server(aiohttp_server: Any) -> Any:
    return await aiohttp_server(make_stream_app())


async def test_sse_table_shows_its_first_events(stream_server: Any, tmp_path: Path) -> None:
    endpoint = stream_server.make_url("/sse?n=4")
    sql = f"""
CREATE TABLE changes (n BIGINT) WITH (
  connector = 'sse', endpoint = '{endpoint}', format = 'json',
  headers = 'Authorization: Bearer {{{{ PROBE_TOKEN }}}}'
);
"""
    result = await invoke(tmp_path, sql, "--rows", "3")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"GET {endpoint}" in out
    assert "Authorization: Bearer ****" in out and SECRET not in out
    assert "200 OK" in out and "text/event-stream" in out
    assert "received 3 message(s)" in out
    assert "3 row(s) decoded, first 3 shown" in out
    assert "1 of 1 tested table(s) OK" in out
    assert stream_server.app[STREAM_STATE].requests[0][1]["Accept"] == "text/event-stream"


async def test_websocket_table_sends_subscriptions_and_shows_messages(
    stream_server: Any, tmp_path: Path
) -> None:
    endpoint = str(stream_server.make_url("/ws/subscribe")).replace("http", "ws", 1)
    sql = f"""
CREATE TABLE feed (sub TEXT) WITH (
  connector = 'websocket', endpoint = '{endpoint}', format = 'json',
  'subscription_messages.0' = 'hello', 'subscription_messages.1' = 'world'
);
"""
    result = await invoke(tmp_path, sql, "--rows", "2")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"WEBSOCKET {endpoint}" in out
    assert "101 Switching Protocols" in out
    assert "sent subscription message: hello" in out
    assert "sent subscription message: world" in out
    assert "received 2 message(s)" in out
    assert "hello" in out and "world" in out
    assert "2 row(s) decoded" in out


async def test_stream_failures_are_explained(stream_server: Any, tmp_path: Path) -> None:
    sse = stream_server.make_url("/sse/status/401")
    ws = str(stream_server.make_url("/ws/status/403")).replace("http", "ws", 1)
    quiet = stream_server.make_url("/sse?n=0")
    sql = f"""
CREATE TABLE a (n INT) WITH (connector = 'sse', endpoint = '{sse}', format = 'json');
CREATE TABLE b (n INT) WITH (connector = 'websocket', endpoint = '{ws}', format = 'json');
CREATE TABLE c (n INT) WITH (connector = 'sse', endpoint = '{quiet}', format = 'json');
CREATE TABLE d (n INT) WITH (connector = 'sse', endpoint = '{stream_server.make_url("/sse/raw")}',
                             format = 'json');
"""
    stream_server.app[STREAM_STATE].raw_body = b"data: not json\n\n"
    result = await invoke(tmp_path, sql, "--timeout", "0.5")
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"SSE server '{sse}' responded with 401: nope" in out
    assert "Failed to connect to websocket server: server responded with 403" in out
    assert "Did not receive any messages after 0.5 seconds" in out
    assert "error (decoding): invalid JSON" in out
    assert "first: not json" in out
    assert "0 of 4 tested table(s) OK" in out
