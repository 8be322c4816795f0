"""Stored targeting rules (versioned, audited, run at filing) and inspection outcomes as labels, on
SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, DomainError, Forbidden
from smartcustoms.platform.store import AuditRow
from smartcustoms.risk import service
from smartcustoms.risk.labels import export_labels, read_platform
from smartcustoms.risk.service import RuleForm
from tests.clearance.conftest import Env, declaration
from tests.risk.test_cli import run

PHONES_CN = RuleForm(
    rule_id="PHONES-CN",
    reason="Phones from CN: physical inspection",
    when="all:\n  - {field: hs4, op: eq, value: '8517'}\n  - {field: origin, op: eq, value: CN}\n",
    lane="C3",
    note="first cut",
)


def _user(role: str) -> auth.Principal:
    with unit_of_work() as s:
        row = auth.create_user(s, f"risk-{role}", role)
        s.flush()
        return auth.principal_of(row)


def _problems(exc: DomainError) -> dict[str, str]:
    return {".".join(str(x) for x in p.path): p.code for p in exc.problems}


def test_rules_are_versioned_validated_audited_and_run_at_filing(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    analyst, officer = _user("analyst"), _user("officer")
    with unit_of_work() as s:
        created = service.save_rule(s, analyst, PHONES_CN)
    assert created["ref"] == "PHONES-CN@v1" and created["enabled"]

    # Every problem at once, keyed by the form field it belongs to.
    bad = RuleForm(rule_id="bad id!", reason="", when="{field: orign, op: eq, value: CN}", lane="C9", score="high")
    with pytest.raises(DomainError) as caught, unit_of_work() as s:
        service.save_rule(s, analyst, bad)
    got = _problems(caught.value)
    assert got == {
        "rule_id": "invalid",
        "score": "invalid",
        "reason": "missing",
        "lane": "invalid",
        "when.field": "unknown_field",
    }
    with pytest.raises(Conflict), unit_of_work() as s:
        service.save_rule(s, analyst, PHONES_CN)
    with pytest.raises(Forbidden), unit_of_work() as s:
        service.save_rule(s, officer, PHONES_CN, editing="PHONES-CN")

    # At filing: the rule's lane, reason and version are on the declaration.
    r = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    caught_ref = r.json()["reference"]
    d = env.client.get(f"/declarations/{caught_ref}", headers=env.h("officer")).json()
    assert d["lane"] == "C3"
    assert "PHONES-CN@v1" in d["lane_versions"]
    assert any(x.startswith("Targeting rule PHONES-CN v1: Phones from CN") for x in d["lane_reasons"])

    # Edit (v2) and disable (v3): the history keeps every version; a disabled rule no longer fires.
    with unit_of_work() as s:
        edited = service.save_rule(s, analyst, RuleForm(**{**PHONES_CN.__dict__, "lane": "C2"}), editing="PHONES-CN")
        service.set_enabled(s, analyst, "PHONES-CN", False, note="too many hits")
    assert edited["ref"] == "PHONES-CN@v2"
    with unit_of_work() as s:
        history = service.rule_history(s, officer, "PHONES-CN")
        assert [(h["version"], h["enabled"], h["lane"]) for h in history] == [
            (3, False, "C2"),
            (2, True, "C2"),
            (1, True, "C3"),
        ]
        assert service.active_rules(s).rules == ()
        with pytest.raises(Conflict):
            service.set_enabled(s, analyst, "PHONES-CN", False)
        actions = [
            a.action
            for a in s.scalars(select(AuditRow).where(AuditRow.entity == "targeting_rule").order_by(AuditRow.id))
        ]
    assert actions == ["create_rule", "edit_rule", "disable_rule"]
    r = env.client.post("/declarations", json=declaration(lrn="LRN-0002"), headers=env.h("trader"))
    assert "PHONES-CN@v3" not in r.json().get("lane_versions", []) and r.json()["lane"] == "C1"

    # The officer inspects the caught declaration: its outcome becomes a label with the duty recovered.
    r = env.client.post(
        f"/declarations/{caught_ref}/inspection",
        json={"result": "found", "findings": "undervalued phones", "additional_duty": "1234.50"},
        headers=env.h("officer"),
    )
    assert r.status_code == 200, r.text
    with unit_of_work() as s:
        labels = export_labels(s)
    by_ref: dict[str, Any] = {ref: g for ref, g in labels.groupby("declaration_id")}
    caught_rows = by_ref[caught_ref]
    assert len(caught_rows) == 2, "one row per item"
    assert set(caught_rows["hs_code"]) == {"851713", "610910"}
    assert (caught_rows["fraud"] == 1.0).all() and (caught_rows["additional_duty"] == 1234.5).all()
    assert caught_rows["value"].min() > 6000, "customs value in national currency, not the invoice amount"
    released = next(g for ref, g in by_ref.items() if ref != caught_ref)
    assert math.isnan(released["fraud"].iloc[0]), "never inspected: outcome unknown"

    # The same export from the command line, read back as training data of format 'platform'.
    out = tmp_path / "labels.csv"
    assert run(monkeypatch, "risk", "export-labels", "--out", str(out)) == 0
    assert "2 declarations (4 items) ->" in capsys.readouterr().out
    back = read_platform([out], require_labels=False)
    assert list(back["hs_code"]) == list(labels["hs_code"]) and back["fraud"].notna().sum() == 2
    assert run(monkeypatch, "risk", "export-labels", "--out", str(out), "--since", "yesterday") == 2
