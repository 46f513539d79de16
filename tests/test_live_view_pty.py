"""The live view of ``run`` and ``demo`` on a terminal (a pseudo-terminal here): each query's
table redrawn in place above the sources' status line; with ``--format`` (or on a pipe, as the
tests in test_cli_run.py check) the output stays the log it was."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.live_capture import final_frame, redraws, run_in_pty

PIPELINE = """
CREATE TABLE imp WITH (connector = 'impulse', event_rate = '50');
SELECT counter FROM imp;
SELECT count(*) AS n FROM imp;
"""


def skeleton(line: str) -> str:
    """A line with its numbers and times masked and its spacing collapsed."""
    return re.sub(r"\d+", "9", " ".join(line.split()))


def test_run_on_a_terminal_redraws_each_query_in_place(tmp_path):
    sql = tmp_path / "pipeline.sql"
    sql.write_text(PIPELINE)
    raw = run_in_pty(
        ["run", str(sql)],
        rows=30,
        cols=100,
        until=lambda raw: redraws(raw) >= 3 and "(updated " in raw and "rows so far" in raw,
    )
    assert redraws(raw) >= 2, raw[-2000:]
    frame = final_frame(raw).splitlines()
    assert len(frame) <= 30  # never taller than the terminal: it does not scroll
    title = next(line for line in frame if line.startswith("[1] SELECT counter FROM imp"))
    total = int(re.search(r"\((\d+) rows so far\)", title).group(1))
    assert total > 0
    # The append-only query shows its latest rows (the tail of the counter) and the count.
    shown = re.search(r"latest (\d+) of (\d+) rows", "\n".join(frame))
    if shown is not None:
        assert int(shown.group(2)) == total
        start = frame.index(title) + 3
        counters = [int(line) for line in frame[start : start + int(shown.group(1))]]
        assert counters == list(range(total - len(counters), total))
    assert any(re.match(r"\[2\] SELECT count\(\*\) AS n FROM imp  \(updated ", ln) for ln in frame)
    assert re.match(r"imp: \d+ polls, \d+ rows$", frame[-1]), frame[-1]
    assert "Traceback" not in raw


def test_with_format_the_terminal_gets_the_log_as_before(tmp_path):
    sql = tmp_path / "pipeline.sql"
    sql.write_text(PIPELINE)
    raw = run_in_pty(
        ["run", str(sql), "--format", "table", "--no-progress"],
        until=lambda raw: bool(re.search(r"\[1\] SELECT counter FROM imp  \(\+\d+ rows?\)", raw)),
    )
    assert redraws(raw) == 0
    assert re.search(r"\[1\] SELECT counter FROM imp  \(\+\d+ rows?\)", raw)
    assert "rows so far" not in raw


def readme_capture() -> list[str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- live-view-capture -->")[1].split("```text\n")[1]
    return block.split("```")[0].rstrip("\n").splitlines()


def test_the_readme_capture_matches_a_fresh_demo_run():
    """The README's capture was made by ``python -m tests.support.live_capture``; a fresh run
    (values and times differ) has the same titles, columns, counts and status line."""
    expected = readme_capture()
    titles = [skeleton(line) for line in expected if line.startswith(("[", " symbol"))]

    def shows_every_title(raw: str) -> bool:
        kept = {skeleton(line) for line in final_frame(raw).splitlines()}
        return all(title in kept for title in titles)

    frame = final_frame(run_in_pty(["demo", "--port", "0"], until=shows_every_title)).splitlines()
    kept = {skeleton(line) for line in frame}
    for line in expected:
        if line.startswith("[") or line.startswith(" symbol"):
            assert skeleton(line) in kept, (line, frame)
    # The status line (how many weather polls failed so far varies): up to that source.
    status = skeleton(expected[-1]).split(" weather:")[0]
    assert skeleton(frame[-1]).startswith(status), frame[-1]
    heads = [line.split()[0] for line in expected if line.startswith("[")]
    assert heads == ["[1]", "[2]", "[3]"]
