from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.risk.kcs import from_kcs_frame
from smartcustoms.risk.model import (
    RuleError,
    RuleHit,
    backtest,
    combine_lane,
    derive,
    evaluate_rules,
    parse_rules,
    parse_rules_text,
    rule_masks,
)
from smartcustoms.risk.rules import backtest as backtest_declarations
from smartcustoms.risk.rules import load_rules_file, with_derived
from tests.risk.conftest import make_kcs

YAML = """
rules:
  - id: ELEC-CN-LOW
    version: 3
    valid_from: 2020-01-01
    valid_to: 2020-12-31
    when:
      all:
        - {field: hs4, op: in, value: ["8517", "8471"]}
        - {field: origin, op: eq, value: CN}
        - {field: value_per_kg, op: lt, value: 100}
    lane: C3
    reason: Electronics from CN declared far below usual prices
  - id: NEW-IMPORTER
    when: {field: first_time_importer, op: eq, value: true}
    score: 0.3
    reason: First declaration of this importer
  - id: FISH
    when:
      any:
        - {field: HS6 Code, op: startswith, value: "03"}
        - not: {field: tax_rate, op: le, value: 10}
    lane: C2
    reason: Fish or high duty
"""


def test_parse_yaml_and_evaluate() -> None:
    rs = parse_rules_text(YAML)
    assert [r.ref for r in rs.rules] == ["ELEC-CN-LOW@v3", "NEW-IMPORTER@v1", "FISH@v1"]
    assert len(rs.version) == 12
    decl = {"hs_code": "851762", "origin": "CN", "net_mass_kg": 10, "value": 500, "tax_rate": 8, "date": "2020-05-01"}
    hits = evaluate_rules(rs, decl)
    assert hits == [RuleHit("ELEC-CN-LOW", 3, "C3", None, "Electronics from CN declared far below usual prices")]
    assert evaluate_rules(rs, {**decl, "date": "2021-02-01"}) == []  # outside the validity period
    assert [h.rule_id for h in evaluate_rules(rs, {**decl, "importer_history": 0, "tax_rate": 13})] == [
        "ELEC-CN-LOW",
        "NEW-IMPORTER",
        "FISH",
    ]
    assert evaluate_rules(rs, {"hs_code": "030487", "tax_rate": 0}, on=date(2020, 3, 1))[0].rule_id == "FISH"


def test_json_is_accepted_too() -> None:
    doc = {
        "rules": [{"id": "R1", "when": {"field": "origin", "op": "in", "value": ["KP"]}, "lane": "C3", "reason": "x"}]
    }
    rs = parse_rules_text(json.dumps(doc))
    assert evaluate_rules(rs, {"origin": "KP"})[0].lane == "C3"


def test_problems_are_exact() -> None:
    doc = {
        "rules": [
            {"id": "A", "when": {"field": "orign", "op": "eq", "value": "CN"}, "lane": "C2", "reason": "r"},
            {
                "id": "B",
                "when": {"all": [{"field": "value", "op": "gt", "value": "lots"}]},
                "lane": "C4",
                "reason": "r",
            },
            {"id": "A", "when": {"field": "origin", "op": "like", "value": "C"}, "score": 2, "reason": ""},
            {"id": "C", "when": {"field": "origin", "op": "lt", "value": 3}, "lane": "C2", "reason": "r", "colour": 1},
        ]
    }
    with pytest.raises(RuleError) as exc:
        parse_rules(doc)
    got = {(p.code, ".".join(map(str, p.path))) for p in exc.value.problems}
    assert ("unknown_field", "rules.0.when.field") in got
    assert ("invalid", "rules.1.when.all.0.value") in got
    assert ("invalid", "rules.1.lane") in got
    assert ("duplicate", "rules.2.id") in got
    assert ("unknown_op", "rules.2.when.op") in got
    assert ("invalid", "rules.2.score") in got
    assert ("missing", "rules.2.reason") in got
    assert ("invalid", "rules.3.when.op") in got  # numeric comparison on a text field
    assert ("unknown_key", "rules.3.colour") in got
    msg = str(exc.value)
    assert "unknown field 'orign'" in msg


def test_syntax_errors() -> None:
    with pytest.raises(RuleError, match="does not parse"):
        parse_rules_text("rules: [ {id: x,")
    with pytest.raises(RuleError, match="list of rules"):
        parse_rules_text("rules: 3")
    with pytest.raises(RuleError, match="only key"):
        parse_rules({"rules": [{"id": "x", "when": {"all": [], "any": []}, "lane": "C2", "reason": "r"}]})


def test_combine_lane_takes_the_strictest() -> None:
    assert combine_lane("C1", []) == "C1"
    assert combine_lane("C2", [RuleHit("a", 1, "C3", None, ""), RuleHit("b", 1, None, 0.5, "")]) == "C3"
    assert combine_lane("C3", [RuleHit("a", 1, "C1", None, "")]) == "C3"


def test_derive_adds_hs_levels_and_value_per_kg() -> None:
    d = derive({"HS6 Code": "851762", "Net Mass": 4, "Item Price": 10})
    assert (d["hs2"], d["hs4"], d["hs6"], d["value_per_kg"]) == ("85", "8517", "851762", 2.5)


def test_backtest_counts_hits_and_frauds(tmp_path: Path) -> None:
    frame = with_derived(from_kcs_frame(make_kcs(800, seed=4), require_labels=True))
    assert {"price_ratio", "first_time_importer", "importer_history"} <= set(frame.columns)
    rs = parse_rules_text(
        """
rules:
  - id: UNDERVALUED
    when: {field: price_ratio, op: lt, value: 0.5}
    lane: C3
    reason: under half the reference price
  - id: EVERYTHING
    when: {field: value, op: ge, value: 0}
    lane: C2
    reason: all
"""
    )
    res = backtest(rs, frame)
    under, everything = res.iloc[0], res.iloc[1]
    assert everything["hits"] == len(frame) and everything["fraud_share"] == 1.0
    assert 0 < under["hits"] < len(frame)
    assert under["precision"] > everything["precision"]  # the planted signal
    path = tmp_path / "rules.yaml"
    path.write_text(YAML)
    out = backtest_declarations(load_rules_file(path), from_kcs_frame(make_kcs(300, seed=8), require_labels=True))
    assert list(out["rule"]) == ["ELEC-CN-LOW", "NEW-IMPORTER", "FISH"]


_values = st.fixed_dictionaries(
    {
        "origin": st.sampled_from(["CN", "US", None]),
        "hs_code": st.sampled_from(["851762", "030487", "610910"]),
        "tax_rate": st.one_of(st.none(), st.sampled_from([0.0, 8.0, 13.0])),
        "value": st.floats(0, 1e6),
        "net_mass_kg": st.floats(0.1, 1e4),
        "aeo": st.booleans(),
    }
)
_leaf = st.one_of(
    st.builds(lambda v: {"field": "origin", "op": "eq", "value": v}, st.sampled_from(["CN", "US"])),
    st.builds(
        lambda v: {"field": "hs2", "op": "in", "value": v}, st.lists(st.sampled_from(["85", "03", "61"]), min_size=1)
    ),
    st.builds(lambda v: {"field": "tax_rate", "op": "gt", "value": v}, st.sampled_from([0, 5, 10])),
    st.builds(
        lambda lo, w: {"field": "value_per_kg", "op": "between", "value": [lo, lo + w]},
        st.floats(0, 100),
        st.floats(0, 1000),
    ),
    st.just({"field": "tax_rate", "op": "is_null"}),
    st.just({"field": "aeo", "op": "eq", "value": True}),
    st.builds(lambda v: {"field": "hs_code", "op": "startswith", "value": v}, st.sampled_from(["85", "0304"])),
)
_cond = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(cond=_cond, rows=st.lists(_values, min_size=1, max_size=8))
def test_vectorised_backtest_agrees_with_single_evaluation(cond: dict, rows: list[dict]) -> None:  # type: ignore[type-arg]
    rs = parse_rules({"rules": [{"id": "R", "when": cond, "lane": "C2", "reason": "r"}]})
    frame = pd.DataFrame([derive(r) for r in rows])
    mask = rule_masks(rs, frame)["R@v1"]
    single = np.array([bool(evaluate_rules(rs, r)) for r in rows])
    np.testing.assert_array_equal(mask, single)
