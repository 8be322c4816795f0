from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from smartcustoms.platform.errors import NotFound
from smartcustoms.risk.assessor import LaneDecision, ModelLaneAssessor
from smartcustoms.risk.kcs import RiskInputError
from smartcustoms.risk.model import parse_rules_text
from smartcustoms.risk.registry import ModelRegistry
from smartcustoms.risk.selectivity import SelectivityModel

DECL = {
    "importer_id": "IMP001",
    "declarant_id": "DEC1",
    "seller_id": None,
    "items": [
        {"hs_code": "851762", "origin": "CN", "net_mass_kg": Decimal("12.5"), "value": Decimal("3750"), "tax_rate": 8},
        {"hs_code": "610910", "origin": "CN", "net_mass_kg": Decimal("40"), "value": Decimal("800")},
    ],
    "office": "30",
    "transport_mode": "40",
    "aeo": False,
}


def test_assess_returns_lane_decision(fitted_model: SelectivityModel) -> None:
    decision = ModelLaneAssessor(fitted_model).assess(DECL)
    assert isinstance(decision, LaneDecision)
    assert decision.lane in ("C1", "C2", "C3")
    assert 0 <= decision.score <= 1
    assert decision.reasons and decision.versions == [fitted_model.version]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.lane = "C1"  # type: ignore[misc]


def test_rules_force_lane_and_are_versioned(fitted_model: SelectivityModel) -> None:
    rules = parse_rules_text(
        """
rules:
  - id: TEXTILE-CN
    version: 2
    when: {all: [{field: hs2, op: eq, value: "61"}, {field: origin, op: eq, value: CN}]}
    lane: C3
    reason: textiles from CN under watch
"""
    )
    decision = ModelLaneAssessor(fitted_model, rules).assess(DECL)
    assert decision.lane == "C3"
    assert decision.reasons[0] == "rule TEXTILE-CN v2: textiles from CN under watch (item 2)"
    assert "TEXTILE-CN@v2" in decision.versions and decision.versions[1] == f"rules@{rules.version}"


def test_aeo_never_raises_the_lane(fitted_model: SelectivityModel) -> None:
    rank = {"C1": 1, "C2": 2, "C3": 3}
    a = ModelLaneAssessor(fitted_model)
    assert rank[a.assess({**DECL, "aeo": True}).lane] <= rank[a.assess(DECL).lane]


def test_bad_declaration(fitted_model: SelectivityModel) -> None:
    with pytest.raises(RiskInputError):
        ModelLaneAssessor(fitted_model).assess({**DECL, "items": []})


def test_registry_register_list_rollback(fitted_model: SelectivityModel, tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    v1 = reg.save_and_register(fitted_model)
    assert reg.active_version() == v1
    other = SelectivityModel(n_estimators=5, seed=9)
    other._fitted = dataclasses.replace(
        fitted_model.fitted, manifest={**fitted_model.manifest, "created_at": "2099-01-01T00:00:00Z"}
    )
    v2 = reg.save_and_register(other)
    assert v2 != v1 and reg.active_version() == v2
    assert reg.versions()[0]["version"] == v2
    reg.activate(v1)
    assert reg.load().version == v1
    with pytest.raises(NotFound):
        reg.activate("selectivity-kcs-nope")
    assert (tmp_path / "reg" / "history.jsonl").read_text().count("activate") == 3
