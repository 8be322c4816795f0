"""SQLite writers take turns across threads and processes on the writer lock (no busy sleeping)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
from pathlib import Path

from smartcustoms.platform import db


def _locked_elsewhere(lock_path: str) -> bool:
    """Whether another process holds the lock file (asked from a child process: flock is per process)."""
    ctx = multiprocessing.get_context("fork")
    answer = ctx.Queue()

    def probe() -> None:
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            answer.put(False)
        except BlockingIOError:
            answer.put(True)
        finally:
            os.close(fd)

    child = ctx.Process(target=probe)
    child.start()
    child.join(30)
    return bool(answer.get(timeout=30))


def test_the_file_lock_is_held_for_the_outermost_unit_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    lock_path = f"{tmp_path}/w.db-writer.lock"
    with db.unit_of_work(url):
        assert _locked_elsewhere(lock_path)
        with db.unit_of_work(url):  # nested in the same thread: no deadlock
            pass
        assert _locked_elsewhere(lock_path)  # the inner unit did not let go of the outer's lock
    assert not _locked_elsewhere(lock_path)
    with db.unit_of_work(url, read_only=True):  # readers never take it
        assert not _locked_elsewhere(lock_path)


def _increment(url: str, counter: str, times: int) -> None:
    db.forget_engines_after_fork()
    for _ in range(times):
        with db.unit_of_work(url):
            value = int(Path(counter).read_text())
            Path(counter).write_text(str(value + 1))


def test_processes_take_turns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    counter = tmp_path / "counter"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_increment, args=(url, str(counter), 150)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    assert int(counter.read_text()) == 450  # no read-modify-write was interleaved
