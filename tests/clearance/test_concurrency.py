"""Concurrent filings of the same LRN create exactly one declaration, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
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


def test_a_reference_drawn_twice_is_drawn_again(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Time-ordered references can collide (odds 2**-35 within a millisecond); the unique index refuses the
    second and the filing is stored under a fresh one, not answered with an error."""
    with unit_of_work() as s:
        who = auth.principal_of(auth.find_user(s, "trader"))
        first, _ = service.submit(s, who, DeclarationIn.model_validate(declaration(lrn="REF-1")))
        taken = first.reference
    real = service.new_references
    draws: list[int] = []

    def collide_once(at: Any, count: int, country: str = "TW") -> list[str]:
        draws.append(count)
        return [taken] if len(draws) == 1 else real(at, count, country)

    monkeypatch.setattr(service, "new_references", collide_once)
    with unit_of_work() as s:
        second, created = service.submit(s, who, DeclarationIn.model_validate(declaration(lrn="REF-2")))
        assert created and second.reference != taken
    assert len(draws) == 2
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(DeclarationRow)) == 2
