"""Manifests against declarations on SQLite and PostgreSQL: findings at filing and late, amendments, follow-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, NotFound
from smartcustoms.singlewindow.manifests import service
from smartcustoms.singlewindow.manifests.model import ManifestError
from smartcustoms.singlewindow.manifests.store import DeclaredRow, LineRow, ManifestRow
from tests.clearance.conftest import Env, declaration
from tests.singlewindow.manifests.conftest import manifest


def _who(name: str) -> auth.Principal:
    with unit_of_work() as s:
        return auth.principal_of(auth.find_user(s, name))


def _codes(env: Env, ref: str) -> list[str]:
    got = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    return sorted(f["code"] for f in got["findings"] if f["source"] == "manifests")


def test_manifest_first_then_declarations_are_checked_at_filing(env: Env) -> None:
    carrier = _who("carrier")
    with unit_of_work() as s:
        row, summary = service.file_manifest(s, carrier, manifest())
        ref = row.reference
    assert summary.matched_lines == 0 and summary.lines == 2
    r = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "released" and _codes(env, r.json()["reference"]) == []
    with unit_of_work() as s:
        _, lines = service.read_manifest(s, carrier, ref)
        assert [ln.declared for ln in lines] == [True, False]
        assert lines[0].declarations == [r.json()["reference"]]

    bad = declaration(lrn="LRN-2", transport_documents=[{"type": "BL", "reference": "EGLV000999999"}])
    r2 = env.client.post("/declarations", json=bad, headers=env.h("trader")).json()
    assert r2["lane"] == "C3", r2
    assert _codes(env, r2["reference"]) == ["consignee_differs", "description_mismatch", "weight_differs"]
    assert "manifest-rules-v1" in r2["lane_versions"]

    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    missing = declaration(
        lrn="LRN-3",
        transport={"mode": "sea", "arrival_date": two_days_ago},
        transport_documents=[{"type": "BL", "reference": "NOPE1"}],
    )
    r3 = env.client.post("/declarations", json=missing, headers=env.h("trader")).json()
    assert r3["lane"] == "C2" and _codes(env, r3["reference"]) == ["manifest_missing"]


def test_declaration_first_then_a_late_manifest_raises_findings(env: Env) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    d = declaration(transport={"mode": "sea", "means_id": "EVER ACE", "arrival_date": future})
    filed = env.client.post("/declarations", json=d, headers=env.h("trader")).json()
    assert filed["status"] == "released" and _codes(env, filed["reference"]) == [], "pre-arrival: not missing yet"
    body = manifest()
    body["lines"][0]["gross_weight_kg"] = "900"
    with unit_of_work() as s:
        row, summary = service.file_manifest(s, _who("carrier"), body)
        ref = row.reference
    assert summary.raised == {filed["reference"]: 1}
    assert _codes(env, filed["reference"]) == ["weight_differs"]
    tl = env.client.get(f"/declarations/{filed['reference']}/timeline", headers=env.h("officer")).json()
    assert tl["events"][-1]["action"] == "flag" and ref in tl["events"][-1]["note"]
    # matching again does not raise the same discrepancy twice
    body["lines"][1]["packages"] = 13
    with unit_of_work() as s:
        _, again = service.replace_manifest(s, _who("carrier"), ref, body, reason="packages corrected")
    assert again.raised == {} and again.matched_lines == 1
    assert _codes(env, filed["reference"]) == ["weight_differs"]


def test_missing_manifest_sweep_after_arrival(env: Env) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    late = env.client.post(
        "/declarations",
        json=declaration(
            lrn="P1",
            transport={"mode": "air", "arrival_date": future},
            transport_documents=[{"type": "AWB", "reference": "297-12345675"}],
        ),
        headers=env.h("trader"),
    ).json()
    with unit_of_work() as s:
        assert service.flag_missing(s) == []
        assert service.flag_missing(s, on=datetime.now(UTC).date() + timedelta(days=3)) == [late["reference"]]
        assert service.flag_missing(s, on=datetime.now(UTC).date() + timedelta(days=4)) == []
    assert _codes(env, late["reference"]) == ["manifest_missing"]
    assert past  # filed with a past arrival it would have been flagged at filing (see the first test)


def test_replace_before_arrival_only_and_versions_kept(env: Env) -> None:
    carrier = _who("carrier")
    with unit_of_work() as s:
        row, _ = service.file_manifest(s, carrier, manifest())
        ref = row.reference
    second = declaration(lrn="R-2", transport_documents=[{"type": "BL", "reference": "EGLV000999999"}])
    second_ref = env.client.post("/declarations", json=second, headers=env.h("trader")).json()["reference"]
    with unit_of_work() as s:
        assert s.scalar(select(DeclaredRow.matched).where(DeclaredRow.reference == second_ref)) is True
    with unit_of_work() as s:
        row, _ = service.replace_manifest(s, carrier, ref, manifest(lines=manifest()["lines"][:1]), reason="one B/L")
        assert row.version == 2 and row.line_count == 1
    with unit_of_work() as s:
        assert s.scalar(select(DeclaredRow.matched).where(DeclaredRow.reference == second_ref)) is False
    with unit_of_work() as s:
        assert [v.version for v in service.versions(s, carrier, ref)] == [1, 2]
        assert s.scalar(select(func.count()).select_from(LineRow)) == 1
        service.record_arrival(s, _who("officer"), ref)
    with unit_of_work() as s, pytest.raises(Conflict):
        service.replace_manifest(s, carrier, ref, manifest())
    with unit_of_work() as s, pytest.raises(Conflict, match="already filed"):
        service.file_manifest(s, carrier, manifest())


def test_bad_manifest_writes_nothing(env: Env) -> None:
    body: dict[str, Any] = manifest()
    body["lines"][1]["doc_ref"] = body["lines"][0]["doc_ref"]
    with pytest.raises(ManifestError), unit_of_work() as s:
        service.file_manifest(s, _who("carrier"), body)
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(ManifestRow)) == 0
        assert s.scalar(select(func.count()).select_from(LineRow)) == 0


def test_carriers_see_only_their_manifests_and_follow_up(env: Env) -> None:
    with unit_of_work() as s:
        other = auth.create_user(s, "carrier2", "carrier", party_id="MAEU")
        other_who = auth.principal_of(other)
    arrived = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    with unit_of_work() as s:
        row, _ = service.file_manifest(s, _who("carrier"), manifest(expected_arrival=arrived))
        ref = row.reference
        service.file_manifest(s, other_who, manifest(voyage="MAE1"))
    env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    with unit_of_work() as s:
        with pytest.raises(NotFound):
            service.get_row(s, other_who, ref)
        mine, total = service.list_manifests(s, _who("carrier"))
        assert total == 1 and mine[0][1] == 1
        assert service.list_manifests(s, _who("officer"))[1] == 2
        due = service.follow_up(s, _who("officer"))
        assert [(m.reference, ln.doc_ref) for m, ln, _ in due] == [(ref, "EGLV000999999")]
        assert due[0][2] >= 9
        assert service.follow_up(s, other_who) == []
        assert service.follow_up(s, _who("officer"), days=30) == []


def test_a_rejected_declaration_no_longer_covers_its_line(env: Env) -> None:
    from smartcustoms.clearance import config
    from smartcustoms.clearance import service as clearance
    from smartcustoms.clearance.schema import DecisionIn

    with unit_of_work() as s:
        config.put(s, auth.SYSTEM, "lane_rules", {"random_c2_share": 1.0, "random_c3_share": 0, "high_value_c2": None})
    config.forget()
    with unit_of_work() as s:
        row, _ = service.file_manifest(s, _who("carrier"), manifest())
        ref = row.reference
    filed = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()
    assert filed["status"] == "under_check", filed
    with unit_of_work() as s:
        assert service.read_manifest(s, _who("officer"), ref)[1][0].declared
        clearance.decide(s, _who("officer"), filed["reference"], DecisionIn(action="reject", reason="wrong goods"))
    with unit_of_work() as s:
        first = service.read_manifest(s, _who("officer"), ref)[1][0]
        assert not first.declared and first.declarations == []
