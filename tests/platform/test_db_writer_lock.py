"""SQLite writers take turns across threads and processes on the writer lock (no busy sleeping)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

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


def test_a_unit_that_may_not_wait_is_refused_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    with db.unit_of_work(url) as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    # another process's writer: the lock file held through another open file description
    fd = os.open(f"{tmp_path}/w.db-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(db.WriterBusy), db.unit_of_work(url, immediate=True, wait=False) as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    # another thread's writer
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:
        with db.unit_of_work(url) as s:
            s.execute(text("INSERT INTO t VALUES (2)"))
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(30)
    try:
        with pytest.raises(db.WriterBusy), db.unit_of_work(url, wait=False):
            pass
    finally:
        done.set()
        thread.join(30)
    with db.unit_of_work(url, immediate=True, wait=False) as s:  # free again: it goes through
        s.execute(text("INSERT INTO t VALUES (3)"))
    with db.unit_of_work(url, read_only=True) as s:
        assert [r[0] for r in s.execute(text("SELECT x FROM t ORDER BY x"))] == [2, 3]
    assert not _locked_elsewhere(f"{tmp_path}/w.db-writer.lock")  # a refused unit left nothing held
