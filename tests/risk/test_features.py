"""History features must use only strictly earlier declarations (no label leakage)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smartcustoms.risk.features import FEATURES, fit_history
from smartcustoms.risk.kcs import from_kcs_frame
from tests.risk.conftest import make_kcs


def _frame(n: int = 600, seed: int = 3) -> pd.DataFrame:
    return from_kcs_frame(make_kcs(n, seed=seed, days=120), require_labels=True)


def test_own_and_same_day_labels_do_not_leak() -> None:
    frame = _frame()
    x1, _ = fit_history(frame)
    day = frame["date"].iloc[300]
    flipped = frame.copy()
    same_day = flipped["date"] == day
    flipped.loc[same_day, "fraud"] = 1 - flipped.loc[same_day, "fraud"]
    x2, _ = fit_history(flipped)
    # Rows of that day and every earlier row have identical features.
    upto = (frame["date"] <= day).to_numpy()
    pd.testing.assert_frame_equal(x1[upto], x2[upto])
    # Later rows do see the changed labels.
    assert not x1[~upto].equals(x2[~upto])


def test_future_rows_do_not_change_past_features() -> None:
    frame = _frame()
    x_full, _ = fit_history(frame)
    cut = frame["date"].iloc[400]
    early = frame[frame["date"] < cut].reset_index(drop=True)
    x_early, _ = fit_history(early)
    # Categories are learned from the whole training set, so compare the history and price columns.
    cols = [c for c in FEATURES if not c.startswith("cat_")]
    pd.testing.assert_frame_equal(x_full.loc[: len(early) - 1, cols], x_early[cols])


def test_first_rows_have_no_history() -> None:
    frame = _frame()
    x, _ = fit_history(frame)
    first_day = (frame["date"] == frame["date"].min()).to_numpy()
    assert (x.loc[first_day, "importer_n"] == 0).all()
    assert (x.loc[first_day, "ref_level"] == 4).all()  # no reference price yet


def test_unknown_labels_count_in_history_not_in_rates() -> None:
    frame = _frame()
    frame.loc[: len(frame) // 2, "fraud"] = np.nan
    x, state = fit_history(frame)
    assert (x["importer_total"] >= x["importer_n"]).all()
    assert (state.history["importer"]["t"] >= state.history["importer"]["n"]).all()


def test_scoring_features_use_whole_history_and_match_single_row(fitted_model, kcs_later) -> None:  # type: ignore[no-untyped-def]
    later = from_kcs_frame(kcs_later.drop(columns=["Fraud", "Critical Fraud"]), require_labels=False)
    batch = fitted_model.features(later).to_numpy()
    for i in range(0, len(later), 37):
        one, _ = fitted_model.fitted.state.features_one(later.iloc[i].to_dict())
        np.testing.assert_allclose(one, batch[i], rtol=1e-9, atol=1e-12, equal_nan=True)
    assert (fitted_model.features(later)["importer_n"] > 0).mean() > 0.9
