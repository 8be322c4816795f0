"""Tracking fixtures: a NATS JetStream server on loopback for the stream tests (skipped when `nats-server` is
absent), and `db_url` databases copied from one migrated template instead of migrated for every test."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.migrate import upgrade
from tests import pg_harness
from tests.conftest import _use_database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh `nats-server -js` (Debian's package) on a free loopback port."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        pytest.skip("nats-server not installed (apt-get install nats-server)")
    port = _free_port()
    store = tmp_path_factory.mktemp("nats")
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("nats-server did not start")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- databases: migrated once per session, copied for each test ----------------------------------------
# The root `db_url` migrates a new database for every test (all slices' revisions: 0.3 s on SQLite, over 1 s
# on PostgreSQL). Here each test still gets a database of its own, fresh and fully migrated, but as a copy of
# one migrated once: a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL.
_copies = itertools.count()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tracking-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    platform_db.reset_engines()
    return path


@pytest.fixture(scope="session")
def _pg_template(pg_server: str) -> str:
    name = f"tracking_template_{os.getpid()}"
    url = pg_harness.create_database(pg_server, name)
    upgrade(url)
    platform_db.reset_engines()
    with psycopg.connect(_plain(pg_server), autocommit=True) as conn:  # a template must have no sessions
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    return name


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _copy(request: pytest.FixtureRequest, engine: str, folder: Path) -> str:
    """URL of a new database copied from the migrated template of `engine`."""
    if engine == "sqlite":
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), folder / "test.db")
        return f"sqlite:///{folder / 'test.db'}"
    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("_pg_template")
    name = f"t{os.getpid()}_tracking_{next(_copies)}"
    with psycopg.connect(_plain(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A freshly migrated database, once on SQLite and once on PostgreSQL; it becomes the configured one."""
    url = _copy(request, request.param, tmp_path)
    _use_database(monkeypatch, url)
    yield url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()
    if request.param == "postgresql":
        pg_harness.drop_database(url)


@pytest.fixture(scope="module", params=ENGINES)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per test module and engine (SQLite, PostgreSQL), for tests that start from empty
    tracking tables (`clean_tracking_tables`) but need no new database each: a PostgreSQL copy costs
    0.4-0.5 s, emptying five tables a few milliseconds. Rows of other slices (users, audit) stay."""
    with pytest.MonkeyPatch.context() as mp:
        url = _copy(request, request.param, tmp_path_factory.mktemp("tracking-module"))
        _use_database(mp, url)
        yield url
        platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()
    if request.param == "postgresql":
        pg_harness.drop_database(url)


TRACKING_TABLES = ("tracking_alert", "tracking_position", "tracking_trip", "tracking_route", "tracking_zone")


def clean_tracking_tables() -> None:
    """Every tracking row gone (children first), as in a new database."""
    with platform_db.unit_of_work() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"TRUNCATE {', '.join(TRACKING_TABLES)} RESTART IDENTITY"))
        else:
            for table in TRACKING_TABLES:
                s.execute(text(f"DELETE FROM {table}"))
