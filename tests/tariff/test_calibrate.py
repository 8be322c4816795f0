"""Calibrated confidence: fit/save/load, hash tie to the classifier config, fallback, valid confidences, versions."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from smartcustoms.tariff.classifier import calibrate as cal_mod
from smartcustoms.tariff.classifier import service as classifier
from smartcustoms.tariff.classifier.corpus import leaf_documents
from smartcustoms.tariff.classifier.model import TariffClassifier
from smartcustoms.tariff.cli import app as tariff_cli
from tests.tariff.test_classifier import SMALL, TERMS


@pytest.fixture(scope="module")
def small() -> TariffClassifier:
    return TariffClassifier().fit(leaf_documents(SMALL), TERMS)


def _fitted(config: str = "abc") -> cal_mod.ConfidenceCalibrator:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(cal_mod.FEATURES)))
    y = (x[:, 1] + 0.5 * x[:, 3] + rng.normal(scale=0.7, size=400)) > 0
    return cal_mod.ConfidenceCalibrator().fit(x, y, config)


@pytest.fixture(scope="module")
def calibrated(small: TariffClassifier) -> TariffClassifier:
    model = TariffClassifier().fit(leaf_documents(SMALL), TERMS)
    assert model.use_calibrator(_fitted(cal_mod.config_hash(model)))
    return model


def test_fit_save_load_round_trip_and_version_check(tmp_path: Path) -> None:
    cal = _fitted()
    path = cal.save(tmp_path / "c.json")
    back = cal_mod.ConfidenceCalibrator.load(path)
    x = np.random.default_rng(1).normal(size=(20, len(cal_mod.FEATURES)))
    assert back.version == cal.version and np.allclose(back.predict_proba(x), cal.predict_proba(x))
    d = json.loads(path.read_text())
    d["coef"][0] += 1.0
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="version"):
        cal_mod.ConfidenceCalibrator.load(path)
    with pytest.raises(ValueError):
        cal_mod.ConfidenceCalibrator().fit(x, np.ones(20, dtype=bool))  # one class: nothing to learn


def test_shipped_calibrator_loads_and_is_monotonic_in_the_top1_margin() -> None:
    cal = cal_mod.ConfidenceCalibrator.load(cal_mod.SHIPPED)
    assert cal.version.startswith(cal_mod.CALIBRATOR_FORMAT) and cal.info_["rows"] > 1000
    assert all(w >= 0 for f, w in zip(cal.features, cal.coef_, strict=True) if f in cal_mod.MONOTONE)
    row = np.random.default_rng(2).uniform(0, 1.0, size=300).astype(np.float32)
    row[0] = row.max() + 0.01
    ps = []
    for lift in np.linspace(0, 1.5, 16):
        r = row.copy()
        r[0] += lift
        ps.append(float(cal.predict_proba(cal_mod.row_features(r, "cotton shirt", cal.temperature))[0]))
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(ps)) and ps[-1] > ps[0]


def test_other_config_falls_back_to_the_temperature_and_says_so(small: TariffClassifier) -> None:
    shipped = cal_mod.ConfidenceCalibrator.load(cal_mod.SHIPPED)
    model = TariffClassifier(term_weight=0.5).fit(leaf_documents(SMALL), TERMS)
    assert cal_mod.config_hash(model) != cal_mod.config_hash(small)
    assert not model.use_calibrator(_fitted(cal_mod.config_hash(small)))
    assert model.confidence_source.startswith("softmax temperature") and "fitted for" in model.confidence_source
    before = model.predict(["cotton shirt"], top=3)[0]
    assert model.use_calibrator(shipped) is (shipped.config_hash_ == cal_mod.config_hash(model))
    again = TariffClassifier(term_weight=0.5).fit(leaf_documents(SMALL), TERMS).predict(["cotton shirt"], top=3)[0]
    assert [c.confidence for c in before] == [c.confidence for c in again]
    same_weights = TariffClassifier(temperature=0.2).fit(leaf_documents(SMALL), TERMS)
    assert cal_mod.config_hash(same_weights) == cal_mod.config_hash(small)  # the temperature is not part of it


def test_calibrated_confidences_are_valid_and_keep_the_rank_order(calibrated: TariffClassifier) -> None:
    for text in ["cotton men's shirt, knitted", "smartphone", "hoodie", "zzz"]:
        cands = calibrated.predict([text], top=len(calibrated.codes_))[0]
        conf = [c.confidence for c in cands]
        assert all(0 <= p <= 1 for p in conf) and sum(conf) <= 1 + 1e-3
        assert conf[0] == max(conf)
    _score, conf1, rank = calibrated.score_code("cotton men's shirt, knitted", "61")
    assert 0 <= conf1 <= 1 and rank == 1
    assert calibrated.confidence_source.startswith("tariff-confidence/1:")


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.integers(2, 60), elements=st.floats(-5, 5, width=32)),
    st.text(max_size=30),
)
def test_any_score_row_gives_valid_confidences(row: np.ndarray, text: str) -> None:
    cal = _fitted()
    codes = [f"{i:06d}" for i in range(len(row))]
    conf = cal.confidences(row, text, {}, codes)
    assert conf.shape == row.shape and np.all(np.isfinite(conf))
    assert np.all((conf >= 0) & (conf <= 1)) and conf.sum() <= 1 + 1e-6
    assert conf[int(np.argmax(row))] == conf.max()


def test_api_and_cli_say_where_the_confidence_comes_from(
    sqlite_url: str, calibrated: TariffClassifier, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from smartcustoms.api import create_app
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work

    monkeypatch.setattr(
        classifier, "get_classifier", lambda schedule="hs", **_: classifier.schedule_name(schedule) and calibrated
    )
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "trader8", "trader", party_id="TW12345679"))
    client = TestClient(create_app())
    h = {"Authorization": f"Bearer {token}"}
    got = client.post("/tariff/classify", json={"text": "cotton men's shirt, knitted"}, headers=h).json()
    assert got["confidence_version"] == calibrated.confidence_source and got["model_version"]
    assert got["confidence_version"].startswith("tariff-confidence/1:")
    fit = client.post("/tariff/fit", json={"code": "610510", "description": "cotton shirt"}, headers=h).json()
    assert fit["confidence_version"] == calibrated.confidence_source
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": 1, "text": "cotton men\'s shirt, knitted"}\n')
    out = tmp_path / "p.jsonl"
    res = CliRunner().invoke(tariff_cli, ["classify", "--input", str(q), "--output", str(out)])
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text().splitlines()[0])
    assert set(row) == {"id", "candidates"} and set(row["candidates"][0]) == {"code", "score"}  # the contract
    assert calibrated.confidence_source in res.output  # the versions are said on stderr


def test_service_attaches_the_shipped_calibrator_only_to_its_config(small: TariffClassifier) -> None:
    assert small.info_["zh_leaves"] == 1  # SMALL has one Chinese line text: the zh calibrator is the candidate
    shipped_zh = cal_mod.ConfidenceCalibrator.load(cal_mod.SHIPPED_ZH)
    src = classifier.attach_calibrator(TariffClassifier().fit(leaf_documents(SMALL), TERMS))
    assert src.startswith("softmax temperature") and shipped_zh.config_hash_ in src
    for zh in (False, True):
        shipped = cal_mod.ConfidenceCalibrator.load(cal_mod.SHIPPED_BY_INDEX[zh])
        params = shipped.info_["classifier_params"]
        assert (params["embed_weight"], params["sub_weight"]) == (
            classifier.DEFAULT_EMBED_WEIGHT,
            classifier.DEFAULT_SUB_WEIGHT,
        )
        assert ("Chinese line texts" in shipped.info_["index"]) and (("+ Taiwan" in shipped.info_["index"]) is zh)
        assert "us_hts" not in " ".join(shipped.info_["training_sets"])  # tariff wording is not trader input


def test_an_index_with_chinese_line_texts_needs_its_own_calibrator(small: TariffClassifier) -> None:
    english_only = [replace(line, description_zh=None) for line in SMALL]
    plain = TariffClassifier().fit(leaf_documents(english_only), TERMS)
    assert plain.info_["zh_leaves"] == 0
    assert cal_mod.config_hash(plain) != cal_mod.config_hash(small)
    assert not plain.use_calibrator(_fitted(cal_mod.config_hash(small)))
    assert plain.use_calibrator(_fitted(cal_mod.config_hash(plain)))
