"""The filing check that runs stored targeting rules: findings with lane, score, reason and version."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from smartcustoms.clearance.checks import CheckContext
from smartcustoms.clearance.lanes import DeclarationFacts, ItemFacts
from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.risk import checks, service
from smartcustoms.risk.model import parse_rules_text
from smartcustoms.risk.selectivity import SelectivityModel

RULES = """
rules:
  - {id: SCORED, version: 2, when: {field: risk_score, op: ge, value: 0}, score: 0.8, reason: any model score}
  - {id: TEXTILES, version: 1, when: {field: hs2, op: eq, value: "61"}, lane: C3, reason: textiles}
  - {id: LATER, version: 1, valid_from: 2999-01-01, when: {field: hs2, op: eq, value: "61"}, lane: C2, reason: not yet}
"""


def facts() -> DeclarationFacts:
    items = (
        ItemFacts(1, "851762", "CN", Decimal("12.5"), Decimal("3750")),
        ItemFacts(2, "610910", "VN", Decimal("40"), Decimal("800")),
    )
    return DeclarationFacts("K1", "import", "30", "DEC1", "IMP001", None, "40", "CN", Decimal("4550"), False, items)


def _ctx() -> CheckContext:
    return CheckContext(session=None, who=SYSTEM, on=date(2021, 1, 5), cache={})  # type: ignore[arg-type]


def test_rule_hits_become_findings(monkeypatch: pytest.MonkeyPatch, fitted_model: SelectivityModel) -> None:
    monkeypatch.setattr(service, "active_rules", lambda session: parse_rules_text(RULES))
    monkeypatch.setattr(service, "_safe_active_model", lambda: fitted_model)
    ctx = _ctx()
    found = {f.code: f for f in checks.TargetingRuleCheck().check(ctx, None, facts())}  # type: ignore[arg-type]
    assert set(found) == {"SCORED", "TEXTILES"}, "a rule not yet valid does not fire"
    t = found["TEXTILES"]
    assert (t.lane, t.score, t.version, t.path) == (Lane.C3, 0.0, "TEXTILES@v1", ("items", 1))
    assert t.message == "Targeting rule TEXTILES v1: textiles (item 2)"
    s = found["SCORED"]
    assert (s.lane, s.score, s.version) == (None, 0.8, "SCORED@v2"), "model-derived fields come from the active model"
    assert "risk.rules" in ctx.cache


def test_without_a_model_model_fields_do_not_fire_and_faults_do_not_stop_filing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "active_rules", lambda session: parse_rules_text(RULES))
    monkeypatch.setattr(service, "_safe_active_model", lambda: None)
    found = checks.TargetingRuleCheck().check(_ctx(), None, facts())  # type: ignore[arg-type]
    assert [f.code for f in found] == ["TEXTILES"]

    def broken(session: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(service, "active_rules", broken)
    assert checks.TargetingRuleCheck().check(_ctx(), None, facts()) == []  # type: ignore[arg-type]


def test_rule_form_is_stored_as_plain_json() -> None:
    import json

    form = service.RuleForm(
        rule_id="NEW-YEAR",
        reason="filed on or after new year",
        when="{field: declaration_id, op: eq, value: 2021-01-01}",
        score="0.4",
        valid_from="2021-01-01",
    )
    body = service._body(form, 1, True)
    assert body["when"] == {"field": "declaration_id", "op": "eq", "value": "2021-01-01"}
    assert body["score"] == 0.4 and body["valid_from"] == "2021-01-01"
    json.dumps(body)
