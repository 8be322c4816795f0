"""The commands evaluations use: synth, train, detect (with bad inputs: clear message, exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartcustoms.xray.cli import app
from smartcustoms.xray.detector import CARD_FILE
from smartcustoms.xray.model import THREATS

runner = CliRunner()


def test_synth_is_reproducible(tmp_path: Path) -> None:
    for name in ("a", "b"):
        r = runner.invoke(app, ["synth", "--out", str(tmp_path / name), "--n", "2", "--seed", "4", "--size", "128"])
        assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "annotations.json").read_text() == (tmp_path / "b" / "annotations.json").read_text()
    r = runner.invoke(app, ["synth", "--out", str(tmp_path / "c"), "--n", "1", "--difficulty", "insane"])
    assert r.exit_code == 2 and "bad_difficulty" in r.output


def test_train_then_detect(tiny_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    model = tmp_path / "model"
    r = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(tiny_data),
            "--format",
            "coco",
            "--out",
            str(model),
            "--epochs",
            "1",
            "--input-size",
            "64",
            "--width",
            "4",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["version"].startswith("xray-centernet-")
    images = sorted((tiny_data / "images").iterdir())[:2]
    bad = tmp_path / "bad.png"
    bad.write_bytes(images[0].read_bytes()[:200])
    out = tmp_path / "d.jsonl"
    r = runner.invoke(app, ["detect", "--model", str(model), *map(str, images), "--out", str(out), "--min-score", "0"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["image"] for x in lines] == [str(p) for p in images]
    assert all(x["model_version"] == json.loads((model / CARD_FILE).read_text())["version"] for x in lines)
    threshold = json.loads((model / CARD_FILE).read_text())["operating_point"]["alarm_threshold"]
    assert all(x["alarm_threshold"] == threshold for x in lines)
    assert all(
        d["alarm"] == (d["label"] in THREATS and d["score"] >= threshold) for x in lines for d in x["detections"]
    )
    r = runner.invoke(app, ["detect", "--model", str(model), str(images[0]), str(bad), "--out", str(out)])
    assert r.exit_code == 2 and "corrupt_image" in r.output and len(out.read_text().splitlines()) == 1


def test_other_model_version_and_bad_data_exit_2(tiny_model: Path, tmp_path: Path) -> None:
    other = tmp_path / "m"
    shutil.copytree(tiny_model, other)
    card = json.loads((other / CARD_FILE).read_text())
    (other / CARD_FILE).write_text(json.dumps(card | {"format_version": 99}))
    r = runner.invoke(app, ["detect", "--model", str(other), "x.png", "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "model_version" in r.output and "not supported" in r.output
    r = runner.invoke(
        app, ["train", "--data", str(tmp_path / "none"), "--format", "sixray", "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 2 and "missing_data" in r.output


def test_registry_register_activate_and_service_picks_it(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartcustoms.platform import settings
    from smartcustoms.xray import service

    monkeypatch.setenv("SMARTCUSTOMS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("SMARTCUSTOMS_XRAY_MODEL", raising=False)
    settings.get_settings.cache_clear()
    try:
        r = runner.invoke(app, ["register", str(tiny_model)])
        assert r.exit_code == 0, r.output
        version = json.loads(r.output)["registered"]
        assert service.model_dir() == tmp_path / "var" / "xray" / "models" / version
        assert service.detector().version_ == version
        listed = json.loads(runner.invoke(app, ["models"]).output)
        assert listed["active"] == version and listed["versions"][0]["version"] == version
        assert 0 < listed["versions"][0]["operating_point"]["alarm_threshold"] < 1
        r = runner.invoke(app, ["activate", "nope"])
        assert r.exit_code == 2 and "unknown_model" in r.output
    finally:
        service.forget_model()
        settings.get_settings.cache_clear()


def test_calibrate_writes_a_new_version_with_its_alarm_threshold(
    tiny_model: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartcustoms.xray import service

    out = tmp_path / "recalibrated"
    r = runner.invoke(
        app,
        ["calibrate", "--model", str(tiny_model), "--data", str(tiny_data), "--false-alarms", "5", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.output.strip().splitlines()[-1])
    card = json.loads((out / CARD_FILE).read_text())
    assert got["version"] == card["version"] != json.loads((tiny_model / CARD_FILE).read_text())["version"]
    assert card["operating_point"]["false_alarm_budget_per_100_benign"] == 5.0
    assert card["operating_point"]["validation"]["false_alarms_per_100_benign"] <= 5.0
    monkeypatch.setenv("SMARTCUSTOMS_XRAY_MODEL", str(out))
    try:
        assert service.alarm_threshold() == card["operating_point"]["alarm_threshold"]
    finally:
        service.forget_model()
    r = runner.invoke(app, ["calibrate", "--model", str(tmp_path / "none"), "--data", str(tiny_data)])
    assert r.exit_code == 2 and "missing_model" in r.output
