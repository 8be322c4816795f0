from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smartcustoms.risk.kcs import RiskInputError, from_kcs_frame
from smartcustoms.risk.selectivity import SelectivityModel, metrics_at_k


@pytest.fixture(scope="module")
def later(kcs_later):  # type: ignore[no-untyped-def]
    return from_kcs_frame(kcs_later, require_labels=True)


def test_learns_the_planted_signal(fitted_model: SelectivityModel, later) -> None:  # type: ignore[no-untyped-def]
    p = fitted_model.score(later)
    assert p.shape == (len(later),) and ((p >= 0) & (p <= 1)).all()
    m = metrics_at_k(later["fraud"].to_numpy(), p)
    assert m["auc"] > 0.7
    proba = fitted_model.predict_proba(later)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_manifest_records_window_params_and_validation(fitted_model: SelectivityModel) -> None:
    man = fitted_model.manifest
    assert man["format"] == "kcs"
    assert man["training_window"]["from"] <= man["training_window"]["to"]
    assert man["params"]["n_estimators"] == 40
    assert 0 <= man["validation"]["auc"] <= 1 and "precision@10%" in man["validation"]


def test_assess_gives_lanes_and_reasons(fitted_model: SelectivityModel, later) -> None:  # type: ignore[no-untyped-def]
    out = fitted_model.assess(later.drop(columns=["fraud"]), explain="all")
    assert list(out.columns[:3]) == ["declaration_id", "score", "lane"]
    assert set(out["lane"]) <= {"C1", "C2", "C3"}
    assert (out["lane"] != "C1").any()
    assert out["reasons"].str.len().gt(0).all()
    top = out.sort_values("score").iloc[-1]
    assert "past fraud rate" in top["reasons"] or "unit price" in top["reasons"]
    explored = out[out["explored"]]
    assert (explored["lane"] == "C2").all()
    assert explored["reasons"].str.contains("at random").all()


def test_reasons_name_importer_rate_and_reference_price(fitted_model: SelectivityModel, later) -> None:  # type: ignore[no-untyped-def]
    reasons = [r for rs in fitted_model.explain(later) for r in rs]
    assert any(r.startswith("importer's past fraud rate") and "% average" in r for r in reasons)
    assert any(r.startswith("unit price") and "below the reference for HS" in r for r in reasons)


def test_lanes_are_reproducible_and_aeo_gets_relief(fitted_model: SelectivityModel, later) -> None:  # type: ignore[no-untyped-def]
    a = fitted_model.assess(later, explain="none")
    b = fitted_model.assess(later, explain="none")
    assert a.equals(b)
    aeo = later.assign(aeo=True)
    c = fitted_model.assess(aeo, explain="none")
    rank = {"C1": 1, "C2": 2, "C3": 3}
    assert (c["lane"].map(rank) <= a["lane"].map(rank)).all()
    assert (c["score"] == a["score"]).all()


def test_score_one_matches_batch(fitted_model: SelectivityModel, later) -> None:  # type: ignore[no-untyped-def]
    batch = fitted_model.assess(later.iloc[:40], explain="all")
    for i, row in enumerate(later.iloc[:40].to_dict("records")):
        one = fitted_model.score_one(row)
        assert one["score"] == pytest.approx(batch["score"].iloc[i], rel=1e-9)
        assert one["lane"] == batch["lane"].iloc[i]
        assert "; ".join(one["reasons"]) == batch["reasons"].iloc[i]


def test_save_load_roundtrip_and_hash(fitted_model: SelectivityModel, later, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = fitted_model.save(tmp_path / "m")
    man = json.loads((d / "manifest.json").read_text())
    assert man["version"].startswith("selectivity-kcs-") and len(man["hash"]) == 64
    loaded = SelectivityModel.load(d, expected_format="kcs")
    np.testing.assert_allclose(loaded.score(later), fitted_model.score(later))
    assert loaded.version == man["version"]
    with pytest.raises(RiskInputError, match="built for format 'kcs', not 'platform'"):
        SelectivityModel.load(d, expected_format="platform")
    (d / "booster.txt").write_text((d / "booster.txt").read_text().replace("tree", "tree ", 1))
    with pytest.raises(RiskInputError, match="hash mismatch"):
        SelectivityModel.load(d)


def test_unknown_outcomes_are_allowed_in_training(kcs_train) -> None:  # type: ignore[no-untyped-def]
    frame = from_kcs_frame(kcs_train, require_labels=True)
    frame.loc[frame.index % 3 == 0, "fraud"] = np.nan
    model = SelectivityModel(n_estimators=10).fit(frame)
    assert model.manifest["training_window"]["labelled"] < len(frame)


def test_assess_with_rules_takes_strictest_lane(fitted_model: SelectivityModel, later) -> None:  # type: ignore[no-untyped-def]
    from smartcustoms.risk.model import parse_rules_text

    rules = parse_rules_text(
        "rules:\n  - id: FISH\n    version: 4\n    when: {field: hs2, op: eq, value: '03'}\n    lane: C3\n    reason: fish under watch\n"
        "  - id: NEWCO\n    when: {field: first_time_importer, op: eq, value: true}\n    score: 0.2\n    reason: new importer\n"
    )
    out = fitted_model.assess(later, rules=rules)
    fish = later["hs_code"].str.startswith("03").to_numpy()
    assert fish.any() and (out.loc[fish, "lane"] == "C3").all()
    assert out.loc[fish, "reasons"].str.startswith("rule FISH v4: fish under watch").all()
    plain = fitted_model.assess(later)
    assert (out.loc[~fish, "lane"] == plain.loc[~fish, "lane"]).all()
