"""PostgreSQL pool: a connection is pinged only after sitting idle, and one the server dropped is replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from smartcustoms.platform import db
from tests import pg_harness

pytestmark = pytest.mark.postgres


def test_busy_connections_are_not_pinged_idle_ones_are_and_dropped_ones_are_replaced(
    pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_harness.create_database(pg_server, "ping_check")
    engine, admin = db.make_engine(url), create_engine(url, poolclass=NullPool)
    pings: list[int] = []
    real_ping = engine.dialect.do_ping

    def counted(dbapi: object) -> bool:
        pings.append(1)
        return bool(real_ping(dbapi))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    try:
        for _ in range(5):  # reused at once: no round trip spent on a ping
            with engine.connect() as conn:
                pid = conn.execute(text("select pg_backend_pid()")).scalar_one()
        assert pings == []
        with admin.connect() as other:  # the server drops the pooled connection while it sits in the pool
            assert other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # it now counts as idle
        with engine.connect() as conn:
            assert conn.execute(text("select pg_backend_pid()")).scalar_one() != pid
        assert pings  # pinged, found dead and replaced before use: the caller never saw the dead one
    finally:
        engine.dispose()
        admin.dispose()
