"""Service on SQLite and PostgreSQL: allowance reserved at filing, final on release, given back on rejection
and amendment; concurrent filings never draw the same allowance twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import select

from smartcustoms.clearance import service as clearance
from smartcustoms.clearance.schema import DecisionIn, DeclarationIn
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.singlewindow.permits import service
from smartcustoms.singlewindow.permits.model import PermitInput
from smartcustoms.singlewindow.permits.store import PermitRow, UsageRow
from tests.clearance.conftest import Env
from tests.singlewindow.permits.conftest import TODAY, meat_declaration

QC = PermitInput(
    "QC-001", "quarantine_certificate", "import", "TW10000001", ["0201"], TODAY, TODAY, Decimal(1000), "kg"
)
FI = PermitInput("FI-001", "food_import_permit", "import", "TW10000001", ["02"], TODAY, TODAY)


def _who(name: str) -> auth.Principal:
    with unit_of_work() as s:
        return auth.principal_of(auth.find_user(s, name))


def _issue(*permits: PermitInput) -> None:
    with unit_of_work() as s:
        for p in permits:
            service.issue_permit(s, auth.SYSTEM, p, agency="BAPHIQ" if p.number.startswith("QC") else "TFDA")


def _file(lrn: str, kg: str, who: auth.Principal) -> tuple[str, str, list[str]]:
    decl = DeclarationIn.model_validate(meat_declaration(lrn, kg))
    with unit_of_work() as s:
        row, _ = clearance.submit(s, who, decl)
        return row.reference, row.status, [f["code"] for f in row.findings or []]


def _qc() -> tuple[Decimal, list[tuple[str, str]]]:
    with unit_of_work() as s:
        permit = s.scalar(select(PermitRow).where(PermitRow.number == "QC-001"))
        assert permit is not None
        uses = [
            (u.reference, u.state)
            for u in s.scalars(select(UsageRow).where(UsageRow.permit_id == permit.id).order_by(UsageRow.id))
        ]
        return permit.quantity_used, uses


def test_reserve_release_reject_and_exceed(sw: Env) -> None:
    _issue(QC, FI)
    trader, officer = _who("trader"), _who("officer")
    ref1, status1, codes1 = _file("A-1", "600", trader)
    assert (status1, codes1) == ("released", [])
    assert _qc() == (Decimal(600), [(ref1, "final")])
    _ref2, status2, codes2 = _file("A-2", "500", trader)
    assert status2 == "held" and codes2 == ["permit_allowance_exceeded"]
    assert _qc()[0] == Decimal(600), "a held line reserves nothing"
    # route everything to C2: reservations wait for the officer
    with unit_of_work() as s:
        from smartcustoms.clearance import config

        config.put(s, auth.SYSTEM, "lane_rules", {"random_c2_share": 1.0, "random_c3_share": 0, "high_value_c2": None})
        config.forget()
    ref3, status3, _ = _file("A-3", "300", trader)
    assert status3 == "under_check"
    assert _qc() == (Decimal(900), [(ref1, "final"), (ref3, "reserved")])
    with unit_of_work() as s:
        clearance.decide(s, officer, ref3, DecisionIn(action="reject", reason="wrong goods"))
    assert _qc() == (Decimal(600), [(ref1, "final"), (ref3, "returned")])
    ref4, _s, _ = _file("A-4", "400", trader)
    with unit_of_work() as s:
        clearance.decide(s, officer, ref4, DecisionIn(action="release"))
    assert _qc() == (Decimal(1000), [(ref1, "final"), (ref3, "returned"), (ref4, "final")])
    # the permit's issuing agency cannot shrink it below what was drawn
    with unit_of_work() as s:
        try:
            service.amend_permit(s, auth.SYSTEM, "QC-001", {"quantity_allowance": Decimal(900)}, "cut")
            raise AssertionError("allowed")
        except service.PermitError as exc:
            assert exc.problems[0].code == "allowance_below_use"
    with unit_of_work() as s:
        service.amend_permit(s, auth.SYSTEM, "QC-001", {"quantity_allowance": Decimal(2000)}, "new quota")
    # an amendment gives back the earlier draw and draws again; its own draw does not count against it
    ref5, status5, _ = _file("A-5", "900", trader)
    assert status5 == "under_check" and _qc()[0] == Decimal(1900)
    amended = DeclarationIn.model_validate(meat_declaration("A-5", "1000"))
    with unit_of_work() as s:
        row = clearance.amend(s, trader, ref5, amended, "weight corrected")
        assert not row.findings
    used, uses = _qc()
    assert used == Decimal(2000) and [u[1] for u in uses if u[0] == ref5] == ["returned", "reserved"]


def test_concurrent_filings_never_share_an_allowance(sw: Env) -> None:
    """10 filings of 300 kg against 1000 kg: exactly 3 pass, the others are held; nothing drawn twice."""
    _issue(QC, FI)
    trader = _who("trader")

    def file_once(n: int) -> str:
        return _file(f"RACE-{n}", "300", trader)[1]

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(file_once, range(10)))
    assert sorted(statuses).count("released") == 3, statuses
    assert statuses.count("held") == 7
    used, uses = _qc()
    assert used == Decimal(900) and len(uses) == 3
