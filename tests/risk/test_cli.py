"""The command-line contract used by evaluations: `risk train` and `risk score`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from smartcustoms.cli import main
from tests.risk.conftest import make_kcs, write_csv


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["smartcustoms", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    a = write_csv(make_kcs(1500, seed=5), tmp / "a.csv")
    b = write_csv(make_kcs(500, seed=6, start="2020-10-20", days=40), tmp / "b.csv")
    mp = pytest.MonkeyPatch()
    try:
        code = run(
            mp,
            "risk",
            "train",
            "--data",
            str(a),
            "--data",
            str(b),
            "--format",
            "kcs",
            "--out",
            str(tmp / "model"),
            "--n-estimators",
            "30",
        )
    finally:
        mp.undo()
    assert code == 0
    return tmp / "model"


def test_train_writes_versioned_model(model_dir: Path) -> None:
    man = json.loads((model_dir / "manifest.json").read_text())
    assert man["training_window"]["rows"] == 2000
    assert man["format"] == "kcs"


def test_score_without_labels(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    later = make_kcs(300, seed=7, start="2020-12-01", days=20).drop(columns=["Fraud", "Critical Fraud"])
    data = write_csv(later, tmp_path / "later.csv")
    out = tmp_path / "scores.csv"
    assert (
        run(
            monkeypatch,
            "risk",
            "score",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--format",
            "kcs",
            "--out",
            str(out),
        )
        == 0
    )
    scores = pd.read_csv(out, dtype={"Declaration ID": str})
    assert list(scores.columns) == ["Declaration ID", "score", "lane", "reasons"]
    assert scores["Declaration ID"].tolist() == later["Declaration ID"].tolist()
    assert scores["lane"].isin(["C1", "C2", "C3"]).all()
    assert scores["reasons"].notna().all()


def test_train_bad_input_names_the_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(make_kcs(100).drop(columns=["Country of Origin"]), tmp_path / "x.csv")
    assert run(monkeypatch, "risk", "train", "--data", str(data), "--format", "kcs", "--out", str(tmp_path / "m")) == 2
    assert "Country of Origin" in capsys.readouterr().err
    df = make_kcs(100)
    df["Fraud"] = 0
    data = write_csv(df, tmp_path / "y.csv")
    assert run(monkeypatch, "risk", "train", "--data", str(data), "--format", "kcs", "--out", str(tmp_path / "m")) == 2
    err = capsys.readouterr().err
    assert "Fraud" in err and "no positive labels" in err


def test_score_bad_input(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    df = make_kcs(50).astype({"Net Mass": object})
    df.loc[2, "Net Mass"] = "heavy"
    data = write_csv(df, tmp_path / "bad.csv")
    assert (
        run(
            monkeypatch,
            "risk",
            "score",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--format",
            "kcs",
            "--out",
            str(tmp_path / "s.csv"),
        )
        == 2
    )
    assert "Net Mass" in capsys.readouterr().err
    assert (
        run(
            monkeypatch,
            "risk",
            "score",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--format",
            "platform",
            "--out",
            str(tmp_path / "s.csv"),
        )
        == 2
    )
    assert (
        run(
            monkeypatch,
            "risk",
            "score",
            "--model",
            str(tmp_path),
            "--data",
            str(data),
            "--format",
            "kcs",
            "--out",
            str(tmp_path / "s.csv"),
        )
        == 2
    )
    assert "not a risk model directory" in capsys.readouterr().err


def test_score_with_model_of_another_format(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    man = json.loads((other / "manifest.json").read_text())
    man["format"] = "platform"
    (other / "manifest.json").write_text(json.dumps(man))
    data = write_csv(make_kcs(20), tmp_path / "d.csv")
    assert (
        run(
            monkeypatch,
            "risk",
            "score",
            "--model",
            str(other),
            "--data",
            str(data),
            "--format",
            "kcs",
            "--out",
            str(tmp_path / "s.csv"),
        )
        == 2
    )
    assert "built for format 'platform', not 'kcs'" in capsys.readouterr().err


def test_backtest_registry_retrain_audit(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(make_kcs(900, seed=9), tmp_path / "past.csv")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - id: CN\n    when: {field: origin, op: eq, value: CN}\n    lane: C2\n    reason: origin CN\n"
    )
    assert run(monkeypatch, "risk", "backtest", "--rules", str(rules), "--data", str(data), "--format", "kcs") == 0
    out = capsys.readouterr().out
    assert "CN" in out and "hits" in out
    rules.write_text("rules:\n  - id: CN\n    when: {field: orign, op: eq, value: CN}\n    lane: C2\n    reason: x\n")
    assert run(monkeypatch, "risk", "backtest", "--rules", str(rules), "--data", str(data), "--format", "kcs") == 2
    assert "unknown field 'orign'" in capsys.readouterr().err

    reg = str(tmp_path / "reg")
    assert run(monkeypatch, "risk", "models", "register", str(model_dir), "--registry", reg) == 0
    first = json.loads((model_dir / "manifest.json").read_text())["version"]
    assert (
        run(
            monkeypatch,
            "risk",
            "retrain",
            "--data",
            str(data),
            "--format",
            "kcs",
            "--window-days",
            "200",
            "--registry",
            reg,
        )
        == 0
    )
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["version"]
    assert second != first
    assert run(monkeypatch, "risk", "models", "list", "--registry", reg) == 0
    listing = capsys.readouterr().out
    assert f"* {second}" in listing and first in listing
    assert run(monkeypatch, "risk", "models", "rollback", first, "--registry", reg) == 0
    assert (tmp_path / "reg" / "ACTIVE").read_text().strip() == first
    assert run(monkeypatch, "risk", "models", "rollback", "nope", "--registry", reg) == 2

    audit = tmp_path / "audit.csv"
    assert (
        run(
            monkeypatch,
            "risk",
            "audit",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--format",
            "kcs",
            "--out",
            str(audit),
            "--top",
            "5",
        )
        == 0
    )
    assert len(pd.read_csv(audit)) == 5


def test_score_with_rules(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "r.json"
    rules.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "id": "ALL-US",
                        "when": {"field": "origin", "op": "eq", "value": "US"},
                        "lane": "C3",
                        "reason": "US watch",
                    }
                ]
            }
        )
    )
    data = write_csv(make_kcs(100, seed=12, start="2020-12-01", days=10), tmp_path / "d.csv")
    out = tmp_path / "s.csv"
    assert (
        run(
            monkeypatch,
            "risk",
            "score",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--format",
            "kcs",
            "--out",
            str(out),
            "--rules",
            str(rules),
        )
        == 0
    )
    scores = pd.read_csv(out)
    us = pd.read_csv(data)["Country of Origin"].eq("US")
    assert (scores.loc[us, "lane"] == "C3").all()
    assert scores.loc[us, "reasons"].str.startswith("rule ALL-US v1: US watch").all()
