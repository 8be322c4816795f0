"""Units of work: prepared bulk inserts keep column types; read-only units write nothing; immediate ones lock first."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, select

from smartcustoms.clearance.store import FxRateRow
from smartcustoms.platform import audit
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import bulk_insert, unit_of_work
from smartcustoms.platform.store import AuditRow


def test_bulk_insert_converts_like_the_orm(db_url: str) -> None:
    when = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    rows = [
        audit.row(SYSTEM, "test", "thing", str(i), detail={"n": i, "amount": "1.10", "zh": "報單"}) | {"at": when}
        for i in range(3)
    ]
    with unit_of_work() as s:
        bulk_insert(s, cast(Table, AuditRow.__table__), rows)
    with unit_of_work() as s:
        got = s.scalars(select(AuditRow).where(AuditRow.action == "test").order_by(AuditRow.id)).all()
    assert [g.detail for g in got] == [{"n": i, "amount": "1.10", "zh": "報單"} for i in range(3)]
    assert got[0].at.replace(tzinfo=UTC) == when


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("99999999"), places=6))
def test_bulk_insert_keeps_money_exact(sqlite_url: str, rate: Decimal) -> None:
    """Each example replaces the one rate row, so sharing the database between examples is safe."""
    with unit_of_work() as s:
        s.execute(FxRateRow.__table__.delete())  # type: ignore[attr-defined]
        bulk_insert(
            s,
            cast(Table, FxRateRow.__table__),
            [{"currency": "USD", "valid_from": datetime(2026, 1, 1).date(), "rate": rate, "source": "t"}],
        )
    with unit_of_work() as s:
        assert s.scalar(select(FxRateRow.rate)) == rate


def test_read_only_unit_writes_nothing(db_url: str) -> None:
    with unit_of_work(read_only=True) as s:
        audit.record(s, SYSTEM, "ghost", "thing", "1")
    with unit_of_work() as s:
        assert s.scalar(select(AuditRow).where(AuditRow.action == "ghost")) is None


def test_immediate_units_of_two_threads_take_turns(db_url: str) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                with unit_of_work(immediate=True) as s:
                    s.scalars(select(AuditRow.id).limit(1)).all()  # read first, then write
                    audit.record(s, SYSTEM, "turn", "thread", f"{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work() as s:
        assert len(s.scalars(select(AuditRow.id).where(AuditRow.action == "turn")).all()) == 60
