"""Group commit: concurrent filings share a transaction, each answered after commit, none failing another."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from smartcustoms.clearance import checks
from smartcustoms.clearance.checks import Stored
from smartcustoms.clearance.committer import GroupCommitter
from smartcustoms.clearance.lifecycle import Action, Status
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.clearance.store import DeclarationRow, EventRow
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, DomainError, Problem
from tests.clearance.conftest import Env, declaration


def _trader() -> auth.Principal:
    with unit_of_work() as s:
        return auth.principal_of(auth.find_user(s, "trader"))


def _count(model: type) -> int:
    with unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_concurrent_filings_each_stored_once_with_repeats_and_conflicts(env: Env) -> None:
    writer = GroupCommitter(env.url)
    who = _trader()
    docs: list[dict[str, Any]] = [declaration(lrn=f"GC-{i % 40}") for i in range(80)]  # every LRN twice
    clash = declaration(lrn="GC-7")
    clash["invoice_total"] = "10001.00"
    docs.append(clash)

    def file(doc: dict[str, Any]) -> tuple[str, bool] | str:
        try:
            out, created = writer.submit(who, DeclarationIn.model_validate(doc))
            return out["reference"], created
        except DomainError as exc:
            return exc.problems[0].code

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(file, docs))
    refused = [a for a in answers if isinstance(a, str)]
    filed = [a for a in answers if not isinstance(a, str)]
    assert refused == ["duplicate_lrn"]
    assert sum(1 for _, created in filed if created) == 40
    assert len({ref for ref, _ in filed}) == 40
    assert _count(DeclarationRow) == 40 and _count(EventRow) == 120


class RefuseLrn:
    """A lifecycle hook refusing one filing, as a permit allowance already used up would."""

    name = "test-refuse"

    def stored(self, session: Any, who: Any, declarations: Sequence[Stored]) -> None:
        for d in declarations:
            if d.decl.lrn == "GC-BAD":
                raise Conflict(Problem("allowance_exceeded", ("items", 0, "permits"), "allowance used up"))

    def moved(self, session: Any, row: Any, action: Action, frm: Status, to: Status) -> None:
        pass


def test_one_refused_filing_does_not_fail_its_group(env_sqlite: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "_hooks", [RefuseLrn()])
    monkeypatch.setattr(checks, "_checks", [])
    monkeypatch.setattr(checks, "_loaded", True)
    writer = GroupCommitter(env_sqlite.url)
    who = _trader()
    docs = [declaration(lrn=f"GC-{i}") for i in range(30)] + [declaration(lrn="GC-BAD")]

    def file(doc: dict[str, Any]) -> str:
        try:
            return writer.submit(who, DeclarationIn.model_validate(doc))[0]["status"]
        except DomainError as exc:
            return exc.problems[0].code

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(file, docs))
    assert answers.count("released") == 30 and answers[-1] == "allowance_exceeded"
    assert _count(DeclarationRow) == 30
