"""The hook other slices plug into: findings raise the lane or hold a filing; lifecycle hooks see every move."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from smartcustoms.clearance import checks, service
from smartcustoms.clearance.checks import CheckContext, Finding, Stored
from smartcustoms.clearance.lanes import DeclarationFacts, LaneDecision
from smartcustoms.clearance.lifecycle import Action, Lane, Status
from smartcustoms.platform.db import unit_of_work
from tests.clearance.conftest import Env, declaration


class NeedsPermitForPhones:
    """Line with code 8517* needs a permit number starting with 'NCC-'."""

    name = "test-permits"

    def check(self, ctx: CheckContext, decl: Any, facts: DeclarationFacts) -> Sequence[Finding]:
        out = []
        for i, item in enumerate(decl.items):
            if item.tariff_code.startswith("8517") and not any(p.startswith("NCC-") for p in item.permits):
                out.append(
                    Finding(
                        "test-permits",
                        "permit_missing",
                        f"Item {item.line_no}: telecom equipment needs an NCC permit",
                        ("items", i, "permits"),
                        hold=True,
                        score=0.6,
                        version="permit-rules-test",
                    )
                )
        return out


class Recorder:
    name = "test-recorder"

    def __init__(self) -> None:
        self.seen: list[Stored] = []
        self.moves: list[tuple[str, Action, Status, Status]] = []

    def stored(self, session: Any, who: Any, declarations: Sequence[Stored]) -> None:
        self.seen.extend(declarations)

    def seen_(self) -> list[tuple[str, str, int]]:
        return [(s.reference, s.status.value, s.version) for s in self.seen]

    def moved(self, session: Any, row: Any, action: Action, frm: Status, to: Status) -> None:
        self.moves.append((row.reference, action, frm, to))


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    monkeypatch.setattr(checks, "_checks", [NeedsPermitForPhones()])
    monkeypatch.setattr(checks, "_hooks", [recorder])
    monkeypatch.setattr(checks, "_loaded", True)
    yield recorder


def test_fold_keeps_strictest_lane_every_reason_and_version() -> None:
    base = LaneDecision(Lane.C1, 0.1, ("No rule selected this declaration: paperless release",), ("lane-rules-1",))
    f1 = Finding("permits", "permit_expired", "expired", lane=None, hold=True, score=0.7, version="p-1")
    f2 = Finding("xray", "conflict", "meat seen", lane=Lane.C3, score=0.9, version="x-1")
    out = checks.fold(base, [f1, f2])
    assert out.lane is Lane.C3 and out.score == 0.9
    assert out.reasons == ("expired [permits: permit_expired]", "meat seen [xray: conflict]")
    assert out.versions == ("lane-rules-1", "p-1", "x-1")
    held = checks.fold(base, [f1])
    assert held.lane is Lane.C2, "a hold is at least a documentary check"
    assert checks.fold(base, []) is base
    assert Finding.from_dict(f2.as_dict()) == f2


def test_finding_holds_the_filing_and_a_fixed_amendment_passes(env_sqlite: Env, hooked: Recorder) -> None:
    env = env_sqlite
    r = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    got = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert got["status"] == "held" and got["lane"] == "C2"
    assert got["findings"][0]["code"] == "permit_missing" and got["findings"][0]["path"] == ["items", 0, "permits"]
    assert any("NCC permit" in reason for reason in got["lane_reasons"])
    assert "permit-rules-test" in got["lane_versions"]
    tl = env.client.get(f"/declarations/{ref}/timeline", headers=env.h("officer")).json()
    assert [e["action"] for e in tl["events"]][-1] == "hold"
    assert hooked.seen_() == [(ref, "held", 1)]

    fixed = declaration()
    fixed["items"][0]["permits"] = ["NCC-2026-001"]
    r = env.client.put(
        f"/declarations/{ref}", json={"declaration": fixed, "reason": "permit added"}, headers=env.h("trader")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released" and r.json()["findings"] == []
    assert hooked.seen_()[-1] == (ref, "released", 2)
    assert (ref, Action.ROUTE_C1, Status.ASSESSED, Status.RELEASED) in hooked.moves


def test_batch_filings_are_checked_too(env_sqlite: Env, hooked: Recorder) -> None:
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.platform import auth

    ok = declaration(lrn="B-1")
    ok["items"][0]["permits"] = ["NCC-1"]
    with unit_of_work() as s:
        trader = auth.principal_of(auth.find_user(s, "trader"))
        result = service.submit_batch(
            s, trader, [DeclarationIn.model_validate(d) for d in (ok, declaration(lrn="B-2"))]
        )
    assert len(result.accepted) == 2
    assert [s.status for s in hooked.seen] == [Status.RELEASED, Status.HELD]


def test_late_finding_escalates_a_documentary_check_and_flags_a_released_one(env_sqlite: Env, hooked: Recorder) -> None:
    env = env_sqlite
    hooked_checks: list[Any] = []
    checks._checks[:] = hooked_checks  # no check at filing time
    released = env.client.post("/declarations", json=declaration(lrn="L-1"), headers=env.h("trader")).json()
    assert released["status"] == "released"
    late = Finding(
        "xray",
        "declared_vs_seen",
        "meat detected with confidence 0.91; declared: phones",
        lane=Lane.C3,
        score=0.91,
        version="xray-1",
    )
    with unit_of_work() as s:
        row = service.raise_findings(s, released["reference"], [late])
        assert row.status == "released" and row.risk_score == 0.91
    got = env.client.get(f"/declarations/{released['reference']}", headers=env.h("officer")).json()
    assert got["findings"][0]["code"] == "declared_vs_seen"

    env.client.put(
        "/admin/settings/lane_rules",
        json={"random_c2_share": 1.0, "random_c3_share": 0, "high_value_c2": None},
        headers=env.h("admin"),
    )
    from smartcustoms.clearance import config

    config.forget()
    checked = env.client.post("/declarations", json=declaration(lrn="L-2"), headers=env.h("trader")).json()
    assert checked["status"] == "under_check", checked
    with unit_of_work() as s:
        row = service.raise_findings(s, checked["reference"], [late])
        assert row.status == "under_inspection" and row.lane == "C3"
    tl = env.client.get(f"/declarations/{checked['reference']}/timeline", headers=env.h("officer")).json()
    assert [e["action"] for e in tl["events"]][-2:] == ["flag", "escalate"]
    with unit_of_work() as s, pytest.raises(Exception, match="No declaration"):
        service.raise_findings(s, "NOPE", [late])
