"""Synthetic KCS-layout declarations with a planted signal, so the risk tests run in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartcustoms.risk.kcs import from_kcs_frame
from smartcustoms.risk.lanes import LanePolicy
from smartcustoms.risk.selectivity import SelectivityModel


def make_kcs(n: int = 2400, seed: int = 0, start: str = "2020-01-01", days: int = 300) -> pd.DataFrame:
    """Declarations where bad importers and undervalued goods are more often fraud."""
    rng = np.random.default_rng(seed)
    importers = [f"IMP{i:03d}" for i in range(120)]
    bad = set(importers[:15])
    hs = ["851762", "847130", "610910", "030487", "940360", "690722"]
    base_price = {"851762": 300.0, "847130": 500.0, "610910": 20.0, "030487": 8.0, "940360": 40.0, "690722": 3.0}
    imp = rng.choice(importers, n)
    code = rng.choice(hs, n)
    mass = np.round(rng.lognormal(4, 1.2, n), 1) + 1
    under = rng.random(n) < 0.15
    price = np.array([base_price[c] for c in code]) * rng.lognormal(0, 0.2, n) * np.where(under, 0.3, 1.0)
    value = np.round(mass * price, 2)
    is_bad = np.array([i in bad for i in imp])
    p = 0.05 + 0.45 * is_bad + 0.35 * under
    fraud = (rng.random(n) < p).astype(int)
    dates = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, days, n)), unit="D")
    return pd.DataFrame(
        {
            "Declaration ID": [f"D{seed}{i:06d}" for i in range(n)],
            "Date": dates.strftime("%Y-%m-%d"),
            "Office ID": rng.choice(["10", "20", "30"], n),
            "Process Type": rng.choice(["A", "B"], n),
            "Import Type": "11",
            "Import Use": rng.choice(["11", "21"], n),
            "Payment Type": "11",
            "Mode of Transport": rng.choice(["10", "40"], n),
            "Declarant ID": rng.choice([f"DEC{i}" for i in range(20)], n),
            "Importer ID": imp,
            "Seller ID": np.where(rng.random(n) < 0.1, None, rng.choice([f"S{i}" for i in range(80)], n)),
            "Courier ID": np.where(rng.random(n) < 0.8, None, "C1"),
            "HS6 Code": code,
            "Country of Departure": rng.choice(["CN", "US", "VN"], n),
            "Country of Origin": rng.choice(["CN", "US"], n),
            "Tax Rate": rng.choice([0.0, 8.0, 13.0], n),
            "Tax Type": rng.choice(["A", "FCN1"], n),
            "Country of Origin Indicator": rng.choice(["E", "G", "Y"], n),
            "Net Mass": mass,
            "Item Price": value,
            "Fraud": fraud,
            "Critical Fraud": fraud,
        }
    )


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def kcs_train() -> pd.DataFrame:
    return make_kcs(2400, seed=1)


@pytest.fixture(scope="session")
def kcs_later() -> pd.DataFrame:
    return make_kcs(600, seed=2, start="2020-11-01", days=60)


@pytest.fixture(scope="session")
def fitted_model(kcs_train: pd.DataFrame) -> SelectivityModel:
    frame = from_kcs_frame(kcs_train, require_labels=True)
    return SelectivityModel(n_estimators=40, policy=LanePolicy(exploration=0.05)).fit(frame)


# The clearance core's fixtures (a migrated database with the demo tariff, users and an API client).
from tests.clearance.conftest import env, env_sqlite  # noqa: E402, F401
