"""Training (seconds), ONNX export parity with PyTorch, the versioned model directory and its checks."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smartcustoms.xray import imaging
from smartcustoms.xray.datasets import load_coco
from smartcustoms.xray.detector import (
    CARD_FILE,
    FORMAT_VERSION,
    MODEL_FILE,
    SHIPPED,
    Calibration,
    XrayDetector,
    decode_peaks,
    letterbox,
)
from smartcustoms.xray.errors import XrayError


def test_tiny_training_writes_a_versioned_model_directory(tiny_model: Path) -> None:
    card = json.loads((tiny_model / CARD_FILE).read_text())
    assert card["format_version"] == FORMAT_VERSION
    assert card["version"].startswith(f"xray-centernet-{FORMAT_VERSION}-") and len(card["version"].split("-")[-1]) == 8
    point = card["operating_point"]
    assert 0 < point["alarm_threshold"] < 1 and point["false_alarm_budget_per_100_benign"] == 10.0
    assert {"false_alarms_per_100_benign", "threat_recall_at_alarm"} <= set(point["validation"])
    assert card["training_data"]["description"] == "tiny test set"
    assert card["training_data"]["train"]["images"] + card["training_data"]["validation"]["images"] == 10
    assert set(card["metrics"]["validation"]) >= {"ap50", "map50", "ece_raw", "ece_calibrated"}
    assert card["metrics"]["history"][0]["epoch"] == 1


def test_onnx_runtime_matches_pytorch(tiny_data: Path) -> None:
    pytest.importorskip("torch")
    from smartcustoms.xray import training

    det = XrayDetector(input_size=64, width=4, epochs=1, batch_size=4, seed=2)
    det.fit(load_coco(tiny_data))
    chw, _ = letterbox(imaging.read_file(str(next((tiny_data / "images").iterdir()))).rgb, 64)
    ort_out = det.run(chw)
    torch_out = training.torch_outputs(det.net_, chw)
    for name in ("heat", "size", "offset"):
        np.testing.assert_allclose(ort_out[name], torch_out[name], atol=1e-4, rtol=1e-3)
    assert ort_out["heat"].shape == (len(det.classes_), 16, 16)


def test_saved_model_predicts_like_the_loaded_one(tiny_model: Path, tiny_data: Path) -> None:
    det = XrayDetector.load(tiny_model)
    scan = imaging.read_file(str(next((tiny_data / "images").iterdir())))
    dets, heat = det.explain(scan)
    assert heat.shape == (16, 16) and heat.min() >= 0 and heat.max() <= 1
    again = XrayDetector.load(tiny_model).predict(scan)
    assert [d.as_dict() for d in dets] == [d.as_dict() for d in again]
    assert all(0 <= d.box.x1 <= d.box.x2 <= 128 and 0 <= d.score <= 1 for d in dets)


def test_a_model_of_another_version_or_tampered_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    card = json.loads((other / CARD_FILE).read_text())
    (other / CARD_FILE).write_text(json.dumps(card | {"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(XrayError) as err:
        XrayDetector.load(other)
    assert err.value.problems[0].code == "model_version" and "not supported" in err.value.problems[0].message
    (other / CARD_FILE).write_text(json.dumps(card))
    (other / MODEL_FILE).write_bytes((other / MODEL_FILE).read_bytes() + b"x")
    with pytest.raises(XrayError, match="do not match"):
        XrayDetector.load(other)
    with pytest.raises(XrayError) as err:
        XrayDetector.load(tmp_path / "nothing")
    assert err.value.problems[0].code == "missing_model"


def test_shipped_model_loads_and_is_small() -> None:
    if not (SHIPPED / CARD_FILE).exists():
        pytest.skip("no shipped model in this checkout")
    det = XrayDetector.load()
    assert (SHIPPED / MODEL_FILE).stat().st_size < 5 * 1024 * 1024
    assert {"meat", "drugs", "handgun", "knife"} <= set(det.classes_)
    assert det.card_["metrics"]["validation"]["map50"] > 0


def test_decoding_and_calibration() -> None:
    peaks = np.zeros((2, 8, 8), dtype=np.float32)
    peaks[1, 2, 3] = 0.9
    peaks[0, 5, 5] = 0.04
    size = np.zeros((2, 8, 8), dtype=np.float32)
    size[:, 2, 3] = np.log(2.0)
    offset = np.full((2, 8, 8), 0.5, dtype=np.float32)
    (got,) = decode_peaks(peaks, size, offset, floor=0.05, top_k=10)
    assert got == pytest.approx((1, 0.9, 14.0, 10.0, 8.0, 8.0))
    cal = Calibration(2.0, -1.0)
    p = cal(np.array([0.5, 0.9]))
    assert p[0] == pytest.approx(1 / (1 + np.e)) and p[1] > 0.9


def test_calibration_is_per_class_with_the_pooled_fit_for_rare_classes() -> None:
    cal = Calibration(2.0, -1.0, {"meat": (1.0, 1.0)})
    p = cal(np.array([0.5, 0.5]), ["meat", "knife"])
    assert p[0] == pytest.approx(1 / (1 + np.exp(-1.0))), "meat's own scaling"
    assert p[1] == pytest.approx(1 / (1 + np.e)), "knife has too few validation detections: pooled scaling"
    assert Calibration.from_dict(cal.as_dict()) == cal
    assert Calibration.from_dict({"method": "platt", "a": 2.0, "b": -1.0}) == Calibration(2.0, -1.0)


def test_recalibration_stores_the_operating_point_and_keeps_the_weights(
    tiny_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    det = XrayDetector.load(tiny_model)
    before = det.version_
    det.calibrate(load_coco(tiny_data), false_alarm_budget=0.0, description="held-out scans")
    out = det.save(tmp_path / "recalibrated")
    again = XrayDetector.load(out)
    assert again.version_ == det.version_ != before, "what a score means changed: a new version"
    assert again.alarm_threshold_ == det.card_["operating_point"]["alarm_threshold"]
    assert det.card_["operating_point"]["validation"]["false_alarms_per_100_benign"] == 0.0
    assert det.card_["training_data"]["validation"]["description"] == "held-out scans"
    assert (out / "weights.pt").read_bytes() == (tiny_model / "weights.pt").read_bytes()
    trained = json.loads((tiny_model / CARD_FILE).read_text())["params"]
    assert again.card_["params"] == trained | {"false_alarm_budget": 0.0}, "training parameters kept"


def test_a_format_1_model_still_loads_with_the_default_alarm(tiny_model: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(tiny_model, old)
    card = json.loads((old / CARD_FILE).read_text())
    card.pop("operating_point")
    card |= {"format_version": 1, "calibration": {"method": "platt", "a": 1.5, "b": -0.5}}
    (old / CARD_FILE).write_text(json.dumps(card))
    det = XrayDetector.load(old)
    assert det.alarm_threshold_ == 0.5 and det.calibration_ == Calibration(1.5, -0.5)
    for bad in (0, 3, "2", None):
        (old / CARD_FILE).write_text(json.dumps(card | {"format_version": bad}))
        with pytest.raises(XrayError) as err:
            XrayDetector.load(old)
        assert err.value.problems[0].code == "model_version"
    (old / CARD_FILE).write_text(json.dumps(card | {"calibration": {"a": "x"}}))
    with pytest.raises(XrayError) as err:
        XrayDetector.load(old)
    assert err.value.problems[0].code == "bad_model_card"


def test_retraining_starts_from_a_saved_model(tiny_model: Path, tiny_data: Path) -> None:
    pytest.importorskip("torch")
    from smartcustoms.xray.datasets import Sample
    from smartcustoms.xray.model import Box

    card = json.loads((tiny_model / CARD_FILE).read_text())
    assert card["torch_weights"]["file"] == "weights.pt"
    samples = load_coco(tiny_data)
    det = XrayDetector(input_size=64, epochs=1, batch_size=4, init_from=str(tiny_model)).fit(samples)
    assert det.classes_ == tuple(card["classes"]) and det.width == card["params"]["width"]
    assert det.card_["params"]["init_from"] == str(tiny_model)
    zebra = Sample(samples[0].image, (Box(1, 1, 20, 20),), ("zebra",))
    with pytest.raises(XrayError) as err:
        XrayDetector(input_size=64, epochs=1, init_from=str(tiny_model)).fit([zebra, *samples])
    assert err.value.problems[0].code == "new_classes"


def test_a_damaged_model_directory_is_refused_with_a_clear_problem(tiny_model: Path, tmp_path: Path) -> None:
    import hashlib

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    card = json.loads((bad / CARD_FILE).read_text())
    garbage = b"not an onnx graph"
    (bad / MODEL_FILE).write_bytes(garbage)
    (bad / CARD_FILE).write_text(json.dumps(card | {"sha256": hashlib.sha256(garbage).hexdigest()}))
    with pytest.raises(XrayError) as err:
        XrayDetector.load(bad)
    assert err.value.problems[0].code == "bad_model" and "ONNX Runtime cannot load" in err.value.problems[0].message
    (bad / CARD_FILE).write_text("{not json")
    with pytest.raises(XrayError) as err:
        XrayDetector.load(bad)
    assert err.value.problems[0].code == "bad_model_card"
    (bad / CARD_FILE).write_text(json.dumps({k: v for k, v in card.items() if k not in ("classes", "sha256")}))
    with pytest.raises(XrayError) as err:
        XrayDetector.load(bad)
    assert sorted(p.code for p in err.value.problems) == ["bad_model_card", "bad_model_card"]


def test_extreme_aspect_ratios_detect_without_error(tiny_model: Path) -> None:
    det = XrayDetector.load(tiny_model)
    for shape in ((20, 8000), (3000, 16)):
        buf = io.BytesIO()
        Image.fromarray(np.full(shape, 200, dtype=np.uint8)).save(buf, format="PNG")
        dets, heat = det.explain(imaging.decode(buf.getvalue()))
        assert heat.ndim == 2 and min(heat.shape) >= 1
        assert all(d.box.x2 <= shape[1] and d.box.y2 <= shape[0] for d in dets)
