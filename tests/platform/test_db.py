"""Units of work: prepared bulk inserts keep column types; read-only units write nothing; immediate ones lock first."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from smartcustoms.clearance.store import FxRateRow
from smartcustoms.platform import audit
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import bulk_insert, unit_of_work
from smartcustoms.platform.store import AuditRow

AWKWARD = ["tab\there", "line\nbreak", "back\\slash", "\\N", "", None, "報單 ünïcode", "quote ' and \""]
"""Text that PostgreSQL's COPY format must escape (tab, newline, backslash, its NULL marker)."""


def test_bulk_insert_converts_like_the_orm(db_url: str) -> None:
    when = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    rows = [
        audit.row(SYSTEM, "test", "thing", str(i), note=note, detail={"n": i, "amount": "1.10", "zh": note})
        | {"at": when}
        for i, note in enumerate(AWKWARD)
    ]
    with unit_of_work() as s:
        bulk_insert(s, cast(Table, AuditRow.__table__), rows)
    with unit_of_work() as s:
        got = s.scalars(select(AuditRow).where(AuditRow.action == "test").order_by(AuditRow.id)).all()
    assert [g.note for g in got] == AWKWARD
    assert [g.detail for g in got] == [{"n": i, "amount": "1.10", "zh": note} for i, note in enumerate(AWKWARD)]
    assert got[0].at.replace(tzinfo=UTC) == when


def test_bulk_insert_stores_a_missing_json_value_as_the_orm_does(db_url: str) -> None:
    """PostgreSQL's COPY gets JSON as text, bypassing the type's own processor: a None must still end up
    as the ORM stores it (JSON null), so queries on the column see the same thing either way."""
    with unit_of_work() as s:
        bulk_insert(s, cast(Table, AuditRow.__table__), [audit.row(SYSTEM, "bulk", "thing", "1", detail=None)])
        s.add(AuditRow(**audit.row(SYSTEM, "orm", "thing", "1", detail=None)))
    with unit_of_work(read_only=True) as s:
        stored = {
            action: (detail, is_null)
            for action, detail, is_null in s.execute(
                select(AuditRow.action, AuditRow.detail, AuditRow.detail.is_(None)).where(
                    AuditRow.action.in_(["bulk", "orm"])
                )
            )
        }
    assert stored["bulk"] == stored["orm"], stored


def test_bulk_insert_refusal_is_an_integrity_error_and_writes_nothing(db_url: str) -> None:
    """The group committer and `submit` recognise a lost race by SQLAlchemy's IntegrityError, on both
    databases (PostgreSQL's rows go by COPY, outside SQLAlchemy's own statement execution)."""
    row = {"currency": "USD", "valid_from": datetime(2026, 1, 1).date(), "rate": Decimal("32.1"), "source": "t"}
    with unit_of_work() as s:
        bulk_insert(s, cast(Table, FxRateRow.__table__), [row])
    with pytest.raises(IntegrityError), unit_of_work() as s:
        bulk_insert(s, cast(Table, AuditRow.__table__), [audit.row(SYSTEM, "lost", "thing", "1")])
        bulk_insert(s, cast(Table, FxRateRow.__table__), [row | {"source": "again"}])
    with unit_of_work() as s:
        assert s.scalar(select(AuditRow).where(AuditRow.action == "lost")) is None
        assert s.scalars(select(FxRateRow.source)).all() == ["t"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("99999999"), places=6),
    as_text=st.booleans(),
)
def test_bulk_insert_keeps_money_exact(db_url: str, rate: Decimal, as_text: bool) -> None:
    """Each example replaces the one rate row, so sharing the database between examples is safe. A `Decimal`
    goes to PostgreSQL as it is; any other value (here its text) through the column type, as the ORM would."""
    with unit_of_work() as s:
        s.execute(FxRateRow.__table__.delete())  # type: ignore[attr-defined]
        bulk_insert(
            s,
            cast(Table, FxRateRow.__table__),
            [
                {
                    "currency": "USD",
                    "valid_from": datetime(2026, 1, 1).date(),
                    "rate": str(rate) if as_text else rate,
                    "source": "t",
                }
            ],
        )
    with unit_of_work() as s:
        assert s.scalar(select(FxRateRow.rate)) == rate


ZONES = [None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.datetimes(datetime(1971, 1, 1), datetime(2199, 12, 31), timezones=st.sampled_from(ZONES)))
def test_bulk_insert_stores_time_stamps_as_the_orm_does(db_url: str, at: datetime) -> None:
    """PostgreSQL's COPY gets time stamps as ISO 8601 text, not through the driver: the same instant must be
    stored either way, whatever the zone (or none) and the microseconds."""
    example = secrets.token_hex(8)  # the audit log is append-only: each example reads back its own rows
    with unit_of_work() as s:
        bulk_insert(s, cast(Table, AuditRow.__table__), [audit.row(SYSTEM, "bulk", "thing", example) | {"at": at}])
        s.add(AuditRow(**(audit.row(SYSTEM, "orm", "thing", example) | {"at": at})))
    with unit_of_work(read_only=True) as s:
        rows = s.execute(select(AuditRow.action, AuditRow.at).where(AuditRow.entity_id == example))
        stored = {action: stamp for action, stamp in rows}
    assert stored["bulk"] == stored["orm"]
    if stored["bulk"].tzinfo is not None and at.tzinfo is not None:  # PostgreSQL keeps the instant
        assert stored["bulk"] == at


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


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_postgres_connections_compress_large_values_with_lz4(db_url: str) -> None:
    """Every pooled connection, including one whose first transaction was rolled back, stores large values
    (a filing's payload) compressed with LZ4."""
    with pytest.raises(RuntimeError), unit_of_work() as s:
        s.connection()
        raise RuntimeError("rolled back")
    detail = {"goods": [f"line {i}: {'cotton knitted shirts ' * 3}{i * 7919}" for i in range(300)]}
    with unit_of_work() as s:
        assert s.connection().exec_driver_sql("SHOW default_toast_compression").scalar() == "lz4"
        audit.record(s, SYSTEM, "test", "declaration", "BIG-1", detail=detail)
    with unit_of_work(read_only=True) as s:
        method = s.connection().exec_driver_sql(
            "SELECT pg_column_compression(detail) FROM platform_audit WHERE entity_id = 'BIG-1'"
        )
        assert method.scalar() == "lz4"
        assert s.scalar(select(AuditRow.detail).where(AuditRow.entity_id == "BIG-1")) == detail
