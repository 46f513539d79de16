"""State directory edge cases (issue 8, item 6): read-only, the lock, a full disk.

Real directories, a real read-only mount (``unshare -m`` + a read-only bind mount, as root
here), a real ``flock``, and real write failures (``RLIMIT_FSIZE`` in a child process: every
write past the limit fails with EFBIG, as on a full disk).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.runtime.persist import StateError
from tests.support.cli import CLI, cli_env
from tests.support.full_disk import run_with_failing_writes
from tests.support.threaded_server import wait_for

pytestmark = pytest.mark.timeout(120)

IMPULSE = "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '5');"


def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind -o ro / / 2>/dev/null || exit 1"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_read_only(), reason="needs unshare -m and mount (root)")
def test_a_read_only_state_dir_is_a_clean_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Session(state_dir=state) as session:  # a real state directory, with a table in it
        session.execute(IMPULSE)
    sql = tmp_path / "p.sql"
    sql.write_text(IMPULSE)
    command = " ".join(
        [f"mount --bind -o ro {state} {state} &&", "exec", *(repr(a) for a in CLI)]
        + ["run", "--for", "0", "--state-dir", str(state), str(sql)]
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", command],
        capture_output=True, text=True, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"error: cannot use state directory '{state}': Read-only file system" in done.stderr
    assert "hint: make the directory writable, or choose another --state-dir" in done.stderr


def test_a_state_dir_that_is_a_file_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match="cannot use state directory .*: Not a directory"):
        Session(state_dir=tmp_path / "file")


def test_deleting_files_in_the_state_dir_does_not_release_the_lock(tmp_path: Path) -> None:
    with Session(state_dir=tmp_path) as first:
        first.execute(IMPULSE)
        for path in tmp_path.iterdir():
            if path.is_file():
                path.unlink()  # what the old lock file was: its existence proved nothing
        with pytest.raises(StateError, match="is in use by another session"):
            Session(state_dir=tmp_path)
    with Session(state_dir=tmp_path):  # released on close
        pass


def test_the_lock_holds_across_processes(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from arroyo_lite import Session
            with Session(state_dir={str(tmp_path)!r}):
                print("locked", flush=True)
                sys.stdin.read()
            """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(StateError, match="is in use by another session"):
            Session(state_dir=tmp_path)
    finally:
        holder.communicate("", timeout=60)
    with Session(state_dir=tmp_path):  # the holder exited: free again
        pass


def test_failed_flushes_leave_no_segment_behind(tmp_path: Path) -> None:
    # The child fails every write for a while and lists the table's directory after each
    # failure; then it lifts the limit and the rows are saved once.
    done = run_with_failing_writes(
        f"""
        table = {str(tmp_path / "tables" / "imp")!r}
        with Session(state_dir={str(tmp_path)!r}, flush_interval=0.02) as s:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
            s.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', "
                      "message_count = '300');")
            deadline = time.monotonic() + 60
            while len(failures) < 5:
                assert time.monotonic() < deadline, "no failed write seen"
                time.sleep(0.01)
            print("during:", sorted(os.listdir(table)) if os.path.isdir(table) else [])
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        print("after:", sorted(os.listdir(table)))
        """
    )
    assert done.returncode == 0, done.stderr
    assert "during: []" in done.stdout  # five failed flushes, not five segment files
    assert "after: ['seg-000001.arrows']" in done.stdout
    with Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE.replace("'5'", "'300'"))
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
        counted = session.query("SELECT count(*) AS n, count(DISTINCT counter) AS d FROM imp")
        assert counted.to_pylist() == [{"n": 300, "d": 300}]
