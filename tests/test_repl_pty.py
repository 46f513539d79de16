"""The REPL driven through a pseudo-terminal (pexpect), and its script mode (stdin a pipe).

Data comes from the real demo API on a background thread (port 0); waits are bounded by
pexpect timeouts, never fixed sleeps.
"""

from __future__ import annotations

import re
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from arroyo_lite.demo import quickstart_sql, retarget
from arroyo_lite.demo.api import HEADLINES, DemoServer
from tests.support.cli import CLI, cli_env

PROMPT = "arroyo>"
#: Bound of each wait (an expect, a script run): generous, since CI runs the suite with two
#: workers on two cores and a REPL start (imports, DuckDB) can take seconds when loaded.
WAIT = 60


@pytest.fixture(scope="module")
def demo_api() -> Iterator[DemoServer]:
    with DemoServer(port=0) as server:
        yield server


def prices_sql(url: str) -> str:
    return f"""
CREATE TABLE prices (symbol TEXT, price DOUBLE, volume BIGINT) WITH (
    connector = 'polling_http',
    endpoint = '{url}/prices?format=ndjson',
    format = 'json',
    framing = 'newline',
    poll_interval_ms = 100
);
"""


#: Whitespace as rich prints it on a terminal: may carry colour/style escape sequences.
GAP = r"(?:\s|\x1b\[[0-9;?]*[A-Za-z])+"


def loose(pattern: str) -> str:
    """``pattern`` with every ``\\s+`` allowing ANSI escapes too."""
    return pattern.replace(r"\s+", GAP)


def spawn(args: list[str], tmp_path: Path) -> pexpect.spawn:
    env = cli_env(
        ARROYO_LITE_HISTORY=str(tmp_path / "history"),
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
        COLUMNS="200",
    )
    child = pexpect.spawn(
        CLI[0], CLI[1:] + args, env=env, encoding="utf-8", timeout=WAIT, dimensions=(50, 200)
    )
    child.expect_exact(PROMPT)
    return child


def wait_for_signals(child: pexpect.spawn) -> None:
    """Wait (bounded) until the terminal turns Ctrl-C into SIGINT again.

    While prompt_toolkit reads a line the terminal is in raw mode and Ctrl-C is a keystroke;
    when it returns, ISIG is back on. Checked on the pty itself, so no guessing with sleeps.
    """
    deadline = time.monotonic() + WAIT
    while not termios.tcgetattr(child.child_fd)[3] & termios.ISIG:
        assert time.monotonic() < deadline, "the prompt never returned"
        time.sleep(0.01)


def wait_for_raw_input(child: pexpect.spawn) -> None:
    """Wait (bounded) until the prompt reads keys raw (Ctrl-C and Ctrl-D are keystrokes)."""
    deadline = time.monotonic() + WAIT
    while termios.tcgetattr(child.child_fd)[3] & termios.ISIG:
        assert time.monotonic() < deadline, "the prompt never came back"
        time.sleep(0.01)


def command(child: pexpect.spawn, line: str) -> None:
    child.send(line + "\r")


def wait_for_rows(child: pexpect.spawn, table: str, at_least: int) -> None:
    """Query until ``table`` has ``at_least`` rows (bounded by the pexpect timeout)."""
    for _ in range(200):
        command(child, f"SELECT count(*) AS n FROM {table};")
        child.expect(loose(r"\n\s+(\d+)\s*\r?\n"))
        n = int(child.match.group(1))
        child.expect_exact(PROMPT)
        if n >= at_least:
            return
    raise AssertionError(f"{table} never reached {at_least} rows")


def test_repl_session_through_a_pty(demo_api, tmp_path):
    sql = tmp_path / "prices.sql"
    sql.write_text(prices_sql(demo_api.url))
    child = spawn(["repl", str(sql)], tmp_path)

    command(child, "\\tables")
    child.expect(loose(r"prices\s+source\s+polling_http"))
    child.expect_exact(PROMPT)

    command(child, "\\d prices")
    child.expect(loose(r"symbol\s+string\s+yes"))
    child.expect(loose(r"price\s+double"))
    child.expect(loose(r"_timestamp\s+timestamp\[ns\]\s+no"))
    child.expect_exact(PROMPT)

    wait_for_rows(child, "prices", 10)

    # A statement over two lines: Enter before the ';' continues it.
    command(child, "SELECT symbol, max(price) AS high FROM prices")
    child.expect_exact("...>")
    command(child, "GROUP BY symbol ORDER BY symbol;")
    child.expect(loose(r"ACME\s+\d+\.\d+"))
    child.expect_exact("5 rows")
    child.expect_exact(PROMPT)

    # An error is printed and the session goes on.
    command(child, "SELECT nope FROM prices;")
    child.expect(r"error: .*nope")
    child.expect_exact(PROMPT)
    command(child, "\\d nosuch")
    child.expect_exact("no table or view named 'nosuch'")
    child.expect_exact(PROMPT)

    # Tab completes a column name.
    child.send("SELECT sym\t")
    child.expect(r"sym(?:\x1b\[[0-9;?]*[A-Za-z])*bol")  # drawn in pieces
    command(child, " FROM prices LIMIT 1;")
    child.expect_exact("1 row")
    child.expect_exact(PROMPT)

    command(child, "\\status")
    child.expect(loose(r"prices\s+polling_http\s+running"))
    child.expect_exact(PROMPT)

    # DDL typed here starts a new source at once.
    command(
        child,
        "CREATE TABLE news (id BIGINT, headline TEXT) WITH (connector = 'polling_http', "
        f"endpoint = '{demo_api.url}/news', format = 'json', poll_interval_ms = 100);",
    )
    child.expect_exact("source started")
    child.expect_exact(PROMPT)
    wait_for_rows(child, "news", 1)

    # \live runs until Ctrl-C, which returns to the prompt, not out of the session.
    command(child, "\\live SELECT symbol, price FROM prices;")
    child.expect(r"\d+ rows? so far\)")  # the live view, on a terminal
    child.sendintr()
    child.expect_exact(PROMPT)
    # An aggregate's live view redraws its whole result ("updated ...").
    command(child, "\\live SELECT count(*) AS n FROM news;")
    child.expect_exact("updated")
    child.sendintr()
    child.expect_exact(PROMPT)
    # With a duration, \live returns to the prompt by itself (whether or not its first result
    # was ready in that time: on a loaded machine it may not be, so only the return is checked).
    command(child, "\\live 1 SELECT count(*) AS n FROM news;")
    child.expect_exact("live for 1s")
    child.expect_exact(PROMPT)

    command(child, "\\q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "history").read_text()
    assert "\\tables" in history and "GROUP BY symbol ORDER BY symbol;" in history


def test_ctrl_c_at_the_prompt_clears_the_line(tmp_path):
    child = spawn(["repl"], tmp_path)
    child.send("SELECT 1")
    child.sendintr()
    child.expect_exact(PROMPT)
    command(child, "SELECT 41 + 1 AS answer;")
    child.expect(r"answer.*\n.*42")
    child.expect_exact(PROMPT)
    # Ctrl-C during a query that would run for minutes cancels it, not the session.
    command(child, "SELECT sum(i) AS s FROM range(100000000000) t(i);")
    child.expect(r"t\(i\);(?:\x1b\[[0-9;?]*[A-Za-z])*\r")
    wait_for_signals(child)  # the prompt is (about to be) done: the statement runs
    for _ in range(WAIT):
        # A Ctrl-C in the instant before the prompt returns is ignored; then press again.
        child.sendintr()
        if child.expect_exact(["cancelled", pexpect.TIMEOUT], timeout=1) == 0:
            break
    else:
        raise AssertionError("Ctrl-C never cancelled the query")
    child.expect_exact(PROMPT)
    wait_for_raw_input(child)
    command(child, "SELECT 'still here' AS s;")
    child.expect(loose(r"still here\s+1 row"))  # the result, not the echo
    child.expect_exact(PROMPT)
    wait_for_raw_input(child)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def run_script(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + ["repl", *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=WAIT,
        env=cli_env(),
        check=False,
    )


def test_script_mode_reads_statements_from_stdin():
    done = run_script("\\tables\nSELECT 1 AS x,\n  'a;b' AS y;\n\\help\n\\d arroyo_status\n")
    assert done.returncode == 0, done.stderr
    assert re.search(r"consecutive_failures\s+int64", done.stdout)
    assert re.search(r"x\s+y", done.stdout) and "a;b" in done.stdout
    assert "\\watch" in done.stdout  # the help text
    assert "Traceback" not in done.stderr


def test_script_mode_reports_errors_and_exits_1():
    done = run_script("SELECT nope;\n\\bogus\nSELECT 2 AS two;\n")
    assert done.returncode == 1
    assert "error:" in done.stderr and "nope" in done.stderr
    assert "unknown command \\bogus" in done.stderr
    assert "two" in done.stdout  # later statements still ran
    assert "Traceback" not in done.stderr


def test_repl_with_bad_file_exits_1_with_position(tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE t (a TEXT) WITH (connector = 'nope', format = 'json');\n")
    done = run_script("", str(bad))
    assert done.returncode == 1
    assert re.search(rf"{re.escape(str(bad))}:1:\d+: error: ", done.stderr), done.stderr
    assert "Traceback" not in done.stderr


def readme_repl_example() -> list[str]:
    """The input lines of the README's REPL example (prompts stripped)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("<!-- section: cli -->")[1].split("<!-- /section: cli -->")[0]
    block = section.split("$ arroyo-lite repl sql_examples/quickstart.sql\n")[1].split("```")[0]
    lines = []
    for line in block.splitlines():
        for prompt in ("arroyo> ", "   ...> "):
            if line.startswith(prompt):
                lines.append(line[len(prompt) :])
    return lines


def test_the_readme_repl_example_runs(demo_api, tmp_path):
    lines = readme_repl_example()
    assert lines[0] == "\\tables" and lines[-1] == "\\q"
    quickstart = tmp_path / "quickstart.sql"
    quickstart.write_text(retarget(quickstart_sql(), demo_api.port))
    script = retarget("\n".join(lines) + "\n", demo_api.port)
    done = run_script(script, str(quickstart))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("prices", "news", "weather"):
        assert re.search(rf"{name}\s+polling_http", out)
    assert re.search(r"symbol\s+high", out)
    # \watch printed the headlines (the module's demo API is shared: any story).
    watched = out.split("SELECT id, headline FROM news")[1]
    assert re.search(r"\(\+\d+ rows?\)", watched)
    assert any(headline in watched for headline in HEADLINES), out
    # psql's \watch with c=2: the count, twice, each titled with the time.
    assert out.count("(every 1s)") == 2
    assert re.search(r"\(every 1s\)\s+n\s+─+\s+\d+", out)
    assert "CREATE TABLE metrics: source started (polling_http)" in out
    assert re.search(r"metrics\s+polling_http", out.split("CREATE TABLE metrics")[1])
    assert "Traceback" not in done.stderr


def test_a_failing_source_is_reported_and_the_session_goes_on(demo_api, tmp_path):
    child = spawn(["repl"], tmp_path)
    command(
        child,
        "CREATE TABLE bad (id BIGINT) WITH (connector = 'polling_http', "
        f"endpoint = '{demo_api.url}/metrics', format = 'json');",
    )
    # Printed by the runtime thread, before or above the next prompt (patch_stdout).
    child.expect(r"error: source 'bad' failed: invalid JSON")
    command(child, "SELECT 1 AS kept;")
    child.expect(loose(r"kept\s+─+\s+1\s+1 row"))
    child.expect_exact(PROMPT)
    command(child, "\\status")
    child.expect(loose(r"bad\s+polling_http\s+failed"))
    child.expect_exact(PROMPT)
    command(child, "\\q")
    child.expect(pexpect.EOF)
    assert "Traceback" not in (child.before or "")
