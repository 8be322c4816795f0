"""`risk train --format platform`: the platform's own labelled declarations (a `risk export-labels` file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartcustoms.risk.revenue import YIELDS
from smartcustoms.risk.selectivity import SelectivityModel
from tests.risk.conftest import make_kcs
from tests.risk.test_cli import run


def platform_export(n: int = 1500, seed: int = 11) -> pd.DataFrame:
    """The KCS generator's declarations in the label-export layout; only a third inspected, with yields."""
    k = make_kcs(n, seed=seed)
    rng = np.random.default_rng(seed)
    inspected = rng.random(n) < 0.6
    fraud = np.where(inspected, k["Fraud"].astype(float), np.nan)
    return pd.DataFrame(
        {
            "declaration_id": k["Declaration ID"],
            "date": k["Date"],
            "office": "TWKHH",
            "transport_mode": "sea",
            "departure_country": k["Country of Departure"],
            "origin": k["Country of Origin"],
            "declarant_id": k["Declarant ID"],
            "importer_id": k["Importer ID"],
            "seller_id": k["Seller ID"],
            "hs_code": k["HS6 Code"],
            "tax_rate": k["Tax Rate"],
            "net_mass_kg": k["Net Mass"],
            "value": k["Item Price"],
            "aeo": False,
            "fraud": fraud,
            "additional_duty": np.where(
                fraud == 1, np.round(k["Item Price"] * 0.2, 2), np.where(inspected, 0.0, np.nan)
            ),
            "inspected_at": None,
            "lane": "C3",
            "risk_score": 0.5,
        }
    )


def test_train_and_score_on_platform_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fitted_model: SelectivityModel
) -> None:
    data = tmp_path / "labels.csv"
    platform_export(1000).to_csv(data, index=False)
    model = tmp_path / "m"
    code = run(
        monkeypatch,
        "risk",
        "train",
        "--data",
        str(data),
        "--format",
        "platform",
        "--out",
        str(model),
        "--n-estimators",
        "20",
        "--compare",
        str(fitted_model.save(tmp_path / "kcs-model")),
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "time-later slice" in out and "baseline (HS chapter past fraud rate) on the same slice: AUC" in out
    assert f"model {fitted_model.version} on the same slice: AUC" in out
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["format"] == "platform" and manifest["version"].startswith("selectivity-platform-")
    assert manifest["training_window"]["labelled"] < manifest["training_window"]["rows"], "uninspected rows kept"
    assert manifest["revenue"]["source"] == YIELDS and manifest["revenue"]["overall"] > 0
    # Registered where the API and the clearance core look for it ($SMARTCUSTOMS_RISK_REGISTRY).
    monkeypatch.setenv("SMARTCUSTOMS_RISK_REGISTRY", str(tmp_path / "reg"))
    assert run(monkeypatch, "risk", "models", "register", str(model)) == 0
    assert (tmp_path / "reg" / "ACTIVE").read_text().strip() == manifest["version"]
    scores = tmp_path / "s.csv"
    code = run(
        monkeypatch,
        "risk",
        "score",
        "--model",
        str(model),
        "--data",
        str(data),
        "--format",
        "platform",
        "--out",
        str(scores),
        "--explain",
        "none",
    )
    assert code == 0
    assert len(pd.read_csv(scores)) == 1000
    # A KCS command on a platform model names the mismatch.
    assert run(monkeypatch, "risk", "score", "--model", str(model), "--data", str(data), "--out", str(scores)) == 2
    assert "built for format 'platform', not 'kcs'" in capsys.readouterr().err


def test_platform_file_problems_name_the_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = platform_export(200)
    bad = tmp_path / "bad.csv"
    frame.drop(columns=["hs_code", "fraud"]).to_csv(bad, index=False)
    assert (
        run(monkeypatch, "risk", "train", "--data", str(bad), "--format", "platform", "--out", str(tmp_path / "m")) == 2
    )
    err = capsys.readouterr().err
    assert "missing column 'hs_code'" in err and "missing column 'fraud'" in err
    frame["value"] = frame["value"].astype(object)
    frame.loc[3, "value"] = "lots"
    frame.loc[5, "date"] = "05/01/2020"
    frame.to_csv(bad, index=False)
    assert (
        run(monkeypatch, "risk", "train", "--data", str(bad), "--format", "platform", "--out", str(tmp_path / "m")) == 2
    )
    err = capsys.readouterr().err
    assert "column 'value' must be numeric; row 4 has 'lots'" in err and "column 'date' must be YYYY-MM-DD" in err
