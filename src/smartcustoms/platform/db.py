"""Database engine, declarative base and unit of work: one transaction per use case."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from sqlalchemy import JSON, Date, DateTime, MetaData, Table, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from smartcustoms.platform.settings import get_settings
from smartcustoms.platform.types import ExactDecimal

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every slice's tables (one metadata, so Alembic sees them all)."""

    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    if _CHECKPOINTS.background:
        # the checkpointer thread copies the WAL back; a commit checkpoints only if it falls far behind
        cur.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
    cur.close()


CHECKPOINT_EVERY_S = (
    0.05  # small, frequent copies: 0.05 s beat 0.1, 0.25 and 1 s on commit p99 (bench/clearance_commit.py)
)
FALLBACK_CHECKPOINT_PAGES = 8000  # ~32 MB of WAL: the bound if the checkpointer thread falls behind


class _Checkpointer:
    """Copies each SQLite database's write-ahead log back into the database file from a background thread.

    With `synchronous=NORMAL` a commit does not wait for the disk, except the commit that crosses SQLite's
    auto-checkpoint mark (1,000 pages): it copies the log and syncs both files while holding the writer lock,
    and every filing queued behind it waits (tens of ms on a shared VM's disk: the p99 of the API). A PASSIVE
    checkpoint runs beside writers and readers, so doing it here keeps the syncs off every request's path.
    `SMARTCUSTOMS_SQLITE_CHECKPOINT=inline` leaves it to SQLite's commits (the previous behaviour).
    """

    def __init__(self) -> None:
        self.background = os.environ.get("SMARTCUSTOMS_SQLITE_CHECKPOINT", "background") != "inline"
        self._paths: dict[str, sqlite3.Connection | None] = {}
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        # held for a whole round: a fork waits for it, so the thread is never inside SQLite when the process is
        # copied (SQLite's own mutexes would stay locked in the child, and its first connect would hang)
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None
        self._orphans: list[sqlite3.Connection] = []

    def watch(self, path: str) -> None:
        if not self.background:
            return
        with self._lock:
            self._paths.setdefault(path, None)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def checkpoint_all(self) -> None:
        """One PASSIVE checkpoint of every watched database with a log; a database that is gone is dropped."""
        with self._lock:
            paths = list(self._paths.items())
        for path, conn in paths:
            if not os.path.exists(path):
                if path in self._seen:  # it existed and was removed (a test's or a benchmark's database)
                    with self._lock:
                        self._paths.pop(path, None)
                    self._seen.discard(path)
                    if conn is not None:
                        conn.close()
                continue  # an engine whose database is not created yet is kept
            self._seen.add(path)
            if not os.path.exists(f"{path}-wal"):
                continue
            try:
                if conn is None:
                    uri = f"file:{quote(os.path.abspath(path))}?mode=rw"  # never creates a database
                    conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False)
                    with self._lock:
                        self._paths[path] = conn
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                continue  # busy (another process checkpoints) or not a WAL database: try again next round

    def release(self, path: str) -> None:
        """Close this thread's connection to `path` (its engine is disposed). Being the last connection, its
        close copies the whole log into the database file and removes the log, as SQLite does when a
        database's last connection closes: the file alone is then the whole database (a test copies a
        migrated template file; without this the copy missed the last migration when no round had run)."""
        with self._busy:
            with self._lock:
                conn = self._paths.get(path)
                if conn is not None:
                    self._paths[path] = None  # still watched: another engine may use it (reopened when needed)
            if conn is not None:
                conn.close()

    def _run(self) -> None:
        while True:
            time.sleep(CHECKPOINT_EVERY_S)
            self.round()

    def round(self) -> None:
        with self._busy:
            self.checkpoint_all()

    def before_fork(self) -> None:
        """Wait for a round in progress to end and hold the next one until the fork is done."""
        self._busy.acquire()

    def after_fork_in_parent(self) -> None:
        self._busy.release()

    def after_fork(self) -> None:
        """In a forked child the thread is gone; the parent's connections are kept (closing them would be
        the parent's business) and a new thread starts with the next engine."""
        self._orphans.extend(c for c in self._paths.values() if c is not None)
        self._paths = {}
        self._seen = set()
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._thread = None


_CHECKPOINTS = _Checkpointer()
os.register_at_fork(
    before=_CHECKPOINTS.before_fork,
    after_in_parent=_CHECKPOINTS.after_fork_in_parent,
    after_in_child=_CHECKPOINTS.after_fork,
)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys, PostgreSQL a pool sized for a 2-core box."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        # a file database gets enough pooled connections for every thread of a busy server: opening one
        # (with its pragmas) costs far more than keeping it, and overflow connections close after each use
        pool: dict[str, Any] = {}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            pool = {"pool_size": 20, "max_overflow": 20}
            _CHECKPOINTS.watch(path.split("?", 1)[0])
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            **pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )
    event.listen(engine, "connect", _postgres_session)
    _ping_when_idle(engine)
    return engine


_LZ4_WHERE_BUILT = (
    "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings"
    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    """Each new connection compresses large values (a filing's payload and assessment) with LZ4 where the
    server was built with it (PostgreSQL 14 on; pglz otherwise): pglz was a tenth of the server's CPU in
    batch ingest, and LZ4 reads back faster too."""
    dbapi_connection.execute(_LZ4_WHERE_BUILT)
    dbapi_connection.commit()  # a session setting made in a transaction that is rolled back would be undone


PING_AFTER_IDLE_S = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for PING_AFTER_IDLE_S: `pool_pre_ping` pinged
    on every checkout, a third of a filing's round trips to PostgreSQL under load. A connection the server
    dropped while idle is replaced before use; one lost mid-burst fails that unit of work (rolled back, nothing
    acknowledged), and SQLAlchemy then invalidates the rest of the pool."""
    from sqlalchemy import exc

    @event.listens_for(engine.pool, "checkin")
    def _checkin(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except Exception as error:  # any failure: discard it, the pool retries with a fresh connection
            raise exc.DisconnectionError(str(error)) from error


_ENGINES: dict[str, Engine] = {}
_FACTORIES: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for a database URL (the configured one by default)."""
    url = url or get_settings().database_url
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


_KEYS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def database_key(session: Session) -> str:
    """The database a session works on, as a string for per-database caches (with the password, so two
    databases never share a key). Rendering a URL is slow enough to show on the filing path: kept per engine."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    key = _KEYS.get(engine)
    if key is None:
        key = _KEYS[engine] = engine.url.render_as_string(hide_password=False)
    return key


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    url = url or get_settings().database_url
    if url not in _FACTORIES:
        _FACTORIES[url] = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    return _FACTORIES[url]


class _WriterLock:
    """Takes turns among one SQLite database's writers: threads of this process, then other processes.

    SQLite allows one writer; a writer that finds the database locked sleeps in its busy handler (up to
    100 ms a time), which wrecked tail latency with two server processes. Here the threads of a process
    queue on a lock and the process then queues on an advisory lock file beside the database
    (`flock`: the kernel wakes the next waiter the moment the holder lets go, no sleeping and polling).
    Re-entrant within a thread; only the outermost unit takes and drops the file lock.
    """

    def __init__(self, url: str) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0
        path = url.split("///", 1)[-1].split("?", 1)[0] if "///" in url else ""
        self._file_path = f"{path}-writer.lock" if path and path != ":memory:" and "mode=memory" not in url else None
        self._fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; with `wait` false, give up at once (False) if another thread or process holds it."""
        if not self._thread_lock.acquire(blocking=wait):
            return False
        self._depth += 1
        if self._depth == 1 and self._file_path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._file_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held by another process, and asked not to wait
                self._depth -= 1
                self._thread_lock.release()
                return False
            except OSError:  # a read-only directory: SQLite's own busy handler still keeps writes apart
                self._file_path = None
        return True

    def release(self) -> None:
        try:
            if self._depth == 1 and self._fd is not None and self._file_path is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._thread_lock.release()

    def forget(self) -> None:
        """In a forked child: the parent's descriptor shares the parent's lock; open a new one on next use."""
        self._fd = None


_SQLITE_LOCKS: dict[str, _WriterLock] = {}


class WriterBusy(Exception):
    """Another writer holds the SQLite database's writer lock (raised only by `unit_of_work(wait=False)`)."""


@contextmanager
def unit_of_work(
    url: str | None = None,
    *,
    read_only: bool = False,
    immediate: bool = False,
    wait: bool = True,
    durable: bool = True,
) -> Iterator[Session]:
    """Yield a session inside one transaction: committed on success, rolled back on any error.

    SQLite allows one writer at a time and its busy handler backs off for up to 100 ms, so on SQLite
    writing transactions take turns on a writer lock instead (threads, then processes: `_WriterLock`).
    A `read_only` unit (reads that precede a write done elsewhere) skips that lock and is rolled back.
    An `immediate` unit takes SQLite's write lock before its first read, so a write after reading never
    finds its snapshot overtaken by another process's commit (several server or ingest processes).
    With `wait` false a writing unit on SQLite raises `WriterBusy` instead of queueing for the writer lock
    (the caller has other work to do meanwhile); PostgreSQL has no such lock and never raises it.
    With `durable` false, PostgreSQL acknowledges the commit before its log reaches the disk
    (`synchronous_commit` off for this transaction): only for a caller that commits a durable unit before it
    reports anything, since that commit flushes the log up to itself, and so every commit before it (batch
    ingest). A server crash in between loses such commits whole, never half of one. SQLite is unchanged.
    """
    url = url or get_settings().database_url
    sqlite = url.startswith("sqlite") and not read_only
    lock: _WriterLock | None = None
    if sqlite:
        lock = _SQLITE_LOCKS.get(url) or _SQLITE_LOCKS.setdefault(url, _WriterLock(url))
        if not lock.acquire(wait=wait):
            raise WriterBusy(url)
    try:
        session = session_factory(url)()
        try:
            if immediate and sqlite:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            elif not durable and not read_only and url.startswith("postgresql"):
                session.connection().exec_driver_sql("SET LOCAL synchronous_commit TO off")
            yield session
            if not read_only:
                session.commit()
            # a read-only unit is simply closed: its connection goes back to the pool, which rolls it back
            # (an explicit rollback first cost a third of a filing's read unit in SQLAlchemy bookkeeping)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    finally:
        if lock is not None:
            lock.release()


def forget_engines_after_fork() -> None:
    """In a forked worker: drop the parent's engines without closing its connections, and its locks. New
    engines are made on first use rather than keeping the parent's: their caches' locks are copied as they
    were at the fork, and a thread of the parent that held one then would leave it held here."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()
    _FACTORIES.clear()
    _SQLITE_LOCKS.clear()


def dispose(engine: Engine) -> None:
    """Close an engine's pooled connections; a SQLite database is then left whole in its file once no other
    connection is open (the checkpointer's own is closed too)."""
    engine.dispose()
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        _CHECKPOINTS.release(database.split("?", 1)[0])


def reset_engines() -> None:
    """Dispose and forget cached engines (tests switch databases between runs); a SQLite database is left
    whole in its file once no connection is checked out."""
    for engine in _ENGINES.values():
        dispose(engine)
    _ENGINES.clear()
    _FACTORIES.clear()


_InsertPlan = tuple[str, tuple[str, ...], tuple[Any, ...]]
_PLANS: dict[tuple[str, str, tuple[str, ...]], _InsertPlan] = {}


def _plan(table: Table, dialect: Dialect, columns: tuple[str, ...]) -> _InsertPlan:
    key = (table.name, dialect.name, columns)
    plan = _PLANS.get(key)
    if plan is None:
        quote = dialect.identifier_preparer.quote
        names = f"{quote(table.name)} ({', '.join(quote(c) for c in columns)})"
        if dialect.name == "postgresql":  # rows go by COPY (see bulk_insert)
            sql = f"COPY {names} FROM STDIN"
        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            sql = f"INSERT INTO {names} VALUES ({', '.join(mark for _ in columns)})"
        processors = tuple(_bind_processor(table.c[c].type, dialect) for c in columns)
        plan = _PLANS[key] = (sql, columns, processors)
    return plan


def _bind_processor(column_type: Any, dialect: Dialect) -> Any:
    """How `bulk_insert` converts a column's values: as the type itself would, except for COPY
    - JSON, which takes its text as is (the driver's JSON wrapper and its dumper, per value, were a tenth of
      COPY's time); like the JSON type, a Python None becomes JSON null;
    - dates and time stamps, which COPY takes as ISO 8601 text, as the driver would write them: a group's rows
      share one time stamp, which `_convert` then writes once instead of the driver once per row (1.8 us
      each, seven times per filing);
    - exact decimals, which the type passes on unchanged on PostgreSQL when they are already `Decimal`: its
      processor made a copy of each through two calls (232 ns against 71, eleven values per filing)."""
    processor = column_type._cached_bind_processor(dialect)
    if dialect.name == "postgresql":
        if isinstance(column_type, JSON) and not column_type.none_as_null:
            return _json_dumps
        if isinstance(column_type, Date | DateTime):
            return _iso_text
        if isinstance(column_type, ExactDecimal) and processor is not None:
            return _decimal_as_is(processor)
    return processor


def _decimal_as_is(processor: Any) -> Any:
    def convert(value: Any) -> Any:
        return value if type(value) is Decimal else processor(value)

    return convert


def _iso_text(value: Any) -> Any:
    """A date or time stamp as ISO 8601 text (with its UTC offset when it has one); anything else as it is."""
    return value.isoformat() if isinstance(value, date) else value


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows, converting values with the columns' own SQLAlchemy types: one prepared statement on
    SQLite, COPY on PostgreSQL (a refusal is raised as SQLAlchemy's `IntegrityError` either way).

    Hot paths (filing thousands of declarations) spend most of their time in SQLAlchemy's per-row parameter
    bookkeeping; this keeps the types' conversions (JSON, exact decimals, time stamps) and skips the rest.
    Every row must carry the same keys, and every column without a server default.
    """
    if not rows:
        return
    session.flush()  # pending ORM changes first, as session.execute would (foreign keys, ordering)
    connection = session.connection()
    sql, columns, processors = _plan(table, connection.dialect, tuple(rows[0]))
    converted: list[list[Any]] = []
    for c, proc in zip(columns, processors, strict=True):
        values = [row[c] for row in rows]
        if proc is not None:
            values = _convert(proc, values)
        converted.append(values)
    params = list(zip(*converted, strict=True))
    if connection.dialect.name != "postgresql":
        connection.exec_driver_sql(sql, params)
        return
    # PostgreSQL: COPY, in the transaction of the unit of work. Sent one by one (psycopg's pipelined
    # executemany), each row cost a message exchange, an executor start on the server and psycopg's
    # per-statement bookkeeping in Python: most of the writer's time for a group of filings.
    raw: Any = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in params:
                copy.write_row(row)
    except dbapi.Error as exc:  # as SQLAlchemy would raise it: a unique violation is an IntegrityError
        raise DBAPIError.instance(sql, None, exc, dbapi.Error, dialect=connection.dialect) from exc


def _convert(proc: Any, values: list[Any]) -> list[Any]:
    """A column's values through its type's bind processor; a value that is the very object of the row
    before (the group's time stamp, a shared status) is converted once."""
    out: list[Any] = []
    last: Any = _UNSET
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, proc(value)
        out.append(done)
    return out


_UNSET = object()
