"""WAL checkpoints run off the commit path: a background round copies committed pages back into the database
file, a database that is gone is dropped, and a forked child starts its own thread (the parent's is not there)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from smartcustoms.platform import db


def test_commits_leave_the_checkpoint_to_the_background(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            auto = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            conn.execute(text("CREATE TABLE t (x TEXT)"))
            conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 500} for _ in range(2000)])
        assert auto == db.FALLBACK_CHECKPOINT_PAGES  # a commit checkpoints only far behind
        assert str(path) in db._CHECKPOINTS._paths
        db._CHECKPOINTS.checkpoint_all()  # what the thread does every CHECKPOINT_EVERY_S
        # ~1 MB committed, far below the commit's own mark (FALLBACK_CHECKPOINT_PAGES): only the checkpointer
        # (this call or its thread, whichever came first) can have copied it into the database file
        assert path.stat().st_size > 1_000_000
        with sqlite3.connect(path) as check:
            assert check.execute("SELECT count(*) FROM t").fetchone() == (2000,)
    finally:
        engine.dispose()


def test_a_vanished_database_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    key = str(path)
    db._CHECKPOINTS.checkpoint_all()
    assert key in db._CHECKPOINTS._paths
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db._CHECKPOINTS.checkpoint_all()
    assert key not in db._CHECKPOINTS._paths
    assert not path.exists()  # the checkpointer never creates a database


def test_a_forked_child_starts_its_own_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    engine = db.make_engine(f"sqlite:///{path}")
    engine.dispose()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's thread did not survive the fork; the state says so
        ok = db._CHECKPOINTS._thread is None and not db._CHECKPOINTS._paths
        child = db.make_engine(f"sqlite:///{tmp_path / 'child.db'}")
        ok = ok and db._CHECKPOINTS._thread is not None and db._CHECKPOINTS._thread.is_alive()
        child.dispose()
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)


def test_a_fork_waits_for_a_checkpoint_round_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child forked while the thread is inside SQLite inherits SQLite's mutexes locked and hangs on its first
    connect (seen once in CI: `declarations ingest` workers); so a fork waits for the round to end."""
    cp = db._CHECKPOINTS
    inside, leave, forked = threading.Event(), threading.Event(), threading.Event()

    def slow_round() -> None:  # stands for a round that is inside sqlite3 when the fork comes
        inside.set()
        leave.wait(60)

    monkeypatch.setattr(cp, "checkpoint_all", slow_round)
    pids: list[int] = []

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pids.append(pid)
        forked.set()

    rounds = threading.Thread(target=cp.round)
    rounds.start()
    assert inside.wait(60)
    forker = threading.Thread(target=fork)
    forker.start()
    held_back = not forked.wait(0.5)  # outcome, not timing: with the round in progress the fork cannot return
    leave.set()
    rounds.join(60)
    forker.join(60)
    assert held_back and forked.is_set()
    assert os.waitpid(pids[0], 0)[1] == 0


@pytest.mark.parametrize("how", ["reset_engines", "dispose"])
def test_a_disposed_engine_leaves_the_whole_database_in_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Tests copy a migrated template file (migrations dispose their engine, tests reset the cached ones);
    with the checkpointer's connection still open, the last commits stayed in the log and the copy missed
    them (CI: 'no such column' of the newest migration)."""
    path = tmp_path / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    if how == "reset_engines":
        monkeypatch.setitem(db._ENGINES, f"sqlite:///{path}", engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    db._CHECKPOINTS.round()  # the checkpointer now holds a connection to the database
    monkeypatch.setattr(db._CHECKPOINTS, "checkpoint_all", lambda: None)  # and its thread copies nothing more
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE t ADD COLUMN newest TEXT"))  # in the log only
    if how == "reset_engines":
        db.reset_engines()
    else:
        db.dispose(engine)
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())  # the file alone, as the tests' template copy
    with sqlite3.connect(copy) as check:
        assert [row[1] for row in check.execute("PRAGMA table_info(t)")] == ["x", "newest"]
