"""Items and events always belong to a stored declaration, on both databases.

On PostgreSQL the guarantee comes from statement-level triggers (migration clearance_0003) instead of
per-row foreign keys; these tests hold both databases to the same behaviour a foreign key gives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from smartcustoms.clearance import ingest
from smartcustoms.clearance.store import DeclarationRow, EventRow, ItemRow
from smartcustoms.platform import db
from smartcustoms.platform.db import bulk_insert, unit_of_work
from tests.clearance.conftest import Env, declaration

AT = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _filed(n: int) -> list[int]:
    """File `n` declarations through batch ingest (the bulk path the triggers serve); their ids."""
    report = ingest.ingest([declaration(lrn=f"REF-{i}") for i in range(n)], "trader", workers=1)
    assert len(report.accepted) == n
    with unit_of_work(read_only=True) as s:
        return list(s.scalars(select(DeclarationRow.id).order_by(DeclarationRow.id)))


def _event(decl_id: int, note: str = "test") -> dict[str, Any]:
    return {
        "declaration_id": decl_id,
        "at": AT,
        "actor": "officer",
        "role": "officer",
        "action": "note",
        "from_status": "released",
        "to_status": "released",
        "note": note,
        "detail": None,
    }


def _item(decl_id: int, line_no: int) -> dict[str, Any]:
    return {
        "declaration_id": decl_id,
        "line_no": line_no,
        "tariff_code": "610910",
        "hs_chapter": "61",
        "origin": "VN",
        "description": "T-shirts",
        "value": "10.00",
        "net_mass_kg": "1.0",
        "duty": "0",
    }


def _count(model: type) -> int:
    with unit_of_work(read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_filing_stores_items_and_events_of_its_declaration(env: Env) -> None:
    ids = _filed(3)
    with unit_of_work(read_only=True) as s:
        assert set(s.scalars(select(ItemRow.declaration_id))) == set(ids)
        assert set(s.scalars(select(EventRow.declaration_id))) == set(ids)


@pytest.mark.parametrize("model", [EventRow, ItemRow])
def test_a_row_for_no_declaration_is_refused_with_its_whole_statement(env: Env, model: type) -> None:
    """One row among many naming a declaration that does not exist: the bulk statement (COPY on
    PostgreSQL) is refused as a foreign key refuses it, and nothing of it is written."""
    ids = _filed(2)
    before = _count(model)
    missing = max(ids) + 1000
    make = _event if model is EventRow else _item
    rows = [make(i, n) for n, i in enumerate([*ids * 300, missing, ids[0]], start=10)]
    with pytest.raises(IntegrityError) as refused, unit_of_work() as s:
        bulk_insert(s, model.__table__, rows)  # type: ignore[attr-defined]
    if env.url.startswith("postgresql"):
        assert refused.value.orig is not None
        assert getattr(refused.value.orig, "sqlstate", None) == "23503"
        assert f"({missing})" in str(refused.value.orig)
    assert _count(model) == before


def test_a_single_orm_insert_for_no_declaration_is_refused(env: Env) -> None:
    ids = _filed(1)
    with pytest.raises(IntegrityError), unit_of_work() as s:
        s.add(EventRow(**_event(ids[0] + 99)))
    with unit_of_work() as s:  # the same insert for a stored declaration is fine
        s.add(EventRow(**_event(ids[0], "kept")))
    with unit_of_work(read_only=True) as s:
        assert s.scalar(select(func.count()).where(EventRow.note == "kept")) == 1


def test_moving_rows_to_no_declaration_is_refused(env: Env) -> None:
    ids = _filed(1)
    with pytest.raises(IntegrityError), unit_of_work() as s:
        s.execute(update(ItemRow).where(ItemRow.declaration_id == ids[0]).values(declaration_id=ids[0] + 99))
    with unit_of_work(read_only=True) as s:
        assert set(s.scalars(select(ItemRow.declaration_id))) == {ids[0]}


def test_a_declaration_with_items_or_events_cannot_be_deleted(env: Env) -> None:
    ids = _filed(2)
    with pytest.raises(IntegrityError), unit_of_work() as s:
        s.execute(delete(DeclarationRow).where(DeclarationRow.id.in_(ids)))
    assert _count(DeclarationRow) == 2
    with unit_of_work() as s:  # without its items and events it could be (no code path does it)
        s.execute(delete(ItemRow).where(ItemRow.declaration_id == ids[1]))
        s.execute(delete(EventRow).where(EventRow.declaration_id == ids[1]))
        s.execute(delete(DeclarationRow).where(DeclarationRow.id == ids[1]))
    assert _count(DeclarationRow) == 1


def test_a_declarations_id_cannot_change_under_its_items(env: Env) -> None:
    ids = _filed(1)
    with pytest.raises(IntegrityError), unit_of_work() as s:
        s.execute(update(DeclarationRow).where(DeclarationRow.id == ids[0]).values(id=ids[0] + 500))
    with unit_of_work(read_only=True) as s:
        assert s.scalar(select(DeclarationRow.id)) == ids[0]


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_adding_rows_locks_the_declaration_against_deletion_until_commit(env: Env) -> None:
    """As a foreign key's check does: while a transaction adds an event to a declaration, another cannot
    take the declaration for deletion (NOWAIT answers at once, so the test waits on nothing)."""
    ids = _filed(1)
    engine = db.get_engine()
    with unit_of_work() as s:
        bulk_insert(s, EventRow.__table__, [_event(ids[0])])
        with engine.connect() as other:
            with pytest.raises(DBAPIError) as busy:
                other.exec_driver_sql(f"SELECT id FROM clearance_declaration WHERE id = {ids[0]} FOR UPDATE NOWAIT")
            assert getattr(busy.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
            other.rollback()
    with engine.connect() as other:  # committed: the lock is gone
        assert other.exec_driver_sql(f"SELECT id FROM clearance_declaration WHERE id = {ids[0]} FOR UPDATE NOWAIT")
        other.rollback()
