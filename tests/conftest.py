"""Shared fixtures: a migrated database on SQLite and on PostgreSQL (started here on loopback)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.migrate import upgrade
from tests import pg_harness

# No test depends on timing: hypothesis's per-example deadline (200 ms) failed property tests on a
# loaded machine (speed lives in bench/).
hypothesis_settings.register_profile("smartcustoms", deadline=None)
hypothesis_settings.load_profile("smartcustoms")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_counter = itertools.count()


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data set not present: {path}")
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server: SMARTCUSTOMS_TEST_PG_URL, or one started from Debian's package."""
    given = os.environ.get("SMARTCUSTOMS_TEST_PG_URL")
    if given:
        yield given
        return
    if pg_harness.find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed on CI; .ci/run installs it")
        pytest.skip("PostgreSQL not installed here (apt-get install postgresql)")
    server = pg_harness.start()
    try:
        yield server.url
    finally:
        server.stop()


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SMARTCUSTOMS_DATABASE_URL", url)
    platform_settings.get_settings.cache_clear()
    platform_db.reset_engines()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A freshly migrated database, once on SQLite and once on PostgreSQL; it becomes the configured one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        url = pg_harness.create_database(server, f"t{os.getpid()}_{next(_counter)}")
    _use_database(monkeypatch, url)
    upgrade(url)
    yield url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()
    if request.param == "postgresql":
        pg_harness.drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A freshly migrated SQLite database only (fast tests that do not need both engines)."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    _use_database(monkeypatch, url)
    upgrade(url)
    yield url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()
