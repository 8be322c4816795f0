"""Group commit: concurrent filings share a transaction, each answered after commit, none failing another."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from smartcustoms.clearance import checks
from smartcustoms.clearance.checks import CheckContext, Stored
from smartcustoms.clearance.committer import GroupCommitter, _Request
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


class BoomOnLrn:
    """A check that fails unexpectedly on one filing, and counts how often it reads ahead."""

    name = "test-boom"

    def __init__(self) -> None:
        self.prefetched: list[list[str]] = []

    def prefetch(self, ctx: CheckContext, decls: Sequence[DeclarationIn]) -> None:
        self.prefetched.append([d.lrn for d in decls])

    def check(self, ctx: CheckContext, decl: DeclarationIn, facts: Any) -> Sequence[Any]:
        if decl.lrn == "PL-BOOM":
            raise RuntimeError("check failed")
        return []


def test_a_planned_group_reads_ahead_once_and_answers_each_filing_alone(
    env_sqlite: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    boom = BoomOnLrn()
    monkeypatch.setattr(checks, "_checks", [boom])
    monkeypatch.setattr(checks, "_hooks", [])
    monkeypatch.setattr(checks, "_loaded", True)
    writer = GroupCommitter(env_sqlite.url)
    trader = _trader()
    with unit_of_work() as s:
        trader2 = auth.principal_of(auth.find_user(s, "trader2"))
    first, created = writer.submit(trader, DeclarationIn.model_validate(declaration(lrn="PL-OLD")))
    assert created
    boom.prefetched.clear()
    other_party = {"id": "TW20000002", "name": "Keelung Imports", "country": "TW"}
    bad = declaration(lrn="PL-BAD")
    bad["items"][0]["tariff_code"] = "770100"  # chapter 77 is reserved
    group = [
        _Request(trader, DeclarationIn.model_validate(declaration(lrn="PL-1")), None, None),
        _Request(
            trader2,
            DeclarationIn.model_validate(declaration(lrn="PL-2", declarant=other_party, importer=other_party)),
            None,
            None,
        ),
        _Request(trader, DeclarationIn.model_validate(bad), None, None),
        _Request(trader, DeclarationIn.model_validate(declaration(lrn="PL-OLD")), None, None),
        _Request(trader, DeclarationIn.model_validate(declaration(lrn="PL-BOOM")), None, None),
    ]
    ready = writer._plan(group)

    assert boom.prefetched == [["PL-1", "PL-2", "PL-BAD", "PL-BOOM"]]  # one read-ahead, the stored one left out
    assert [w.filing.prepared.decl.lrn for w in ready] == ["PL-1", "PL-2"]
    with pytest.raises(DomainError) as refused:
        group[2].answer.result(timeout=0)
    assert refused.value.problems[0].path == ("items", 0, "tariff_code")
    assert group[3].answer.result(timeout=0) == (first, False)  # already filed: the first filing
    with pytest.raises(RuntimeError):
        group[4].answer.result(timeout=0)
    assert _count(DeclarationRow) == 1  # planning writes nothing

    writer._store_group(ready)
    stored = [group[0].answer.result(timeout=0), group[1].answer.result(timeout=0)]
    assert [created for _, created in stored] == [True, True]
    assert [out["lrn"] for out, _ in stored] == ["PL-1", "PL-2"]
    assert _count(DeclarationRow) == 3
