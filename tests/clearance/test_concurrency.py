"""Concurrent filings of the same LRN create exactly one declaration, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from smartcustoms.clearance import service
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from tests.clearance.conftest import Env, declaration


def test_same_lrn_concurrently_yields_one_declaration(env: Env) -> None:
    decl = DeclarationIn.model_validate(declaration(lrn="RACE-1"))
    with unit_of_work() as s:
        who = auth.principal_of(auth.find_user(s, "trader"))

    def file_once(_: int) -> str:
        with unit_of_work() as s:
            row, _created = service.submit(s, who, decl)
            return row.reference

    with ThreadPoolExecutor(max_workers=6) as pool:
        refs = list(pool.map(file_once, range(12)))
    assert len(set(refs)) == 1
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(DeclarationRow)) == 1


def test_failed_submission_leaves_nothing(env: Env) -> None:
    bad = DeclarationIn.model_validate(declaration(lrn="BAD-1", currency="EUR"))
    with unit_of_work() as s:
        who = auth.principal_of(auth.find_user(s, "trader"))
    try:
        with unit_of_work() as s:
            service.submit(s, who, bad)
    except DomainError:
        pass
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(DeclarationRow)) == 0
