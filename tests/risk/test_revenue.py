"""Expected additional revenue: yield table per HS chapter, its fallback, and where it shows."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from smartcustoms.risk.assessor import ModelLaneAssessor
from smartcustoms.risk.revenue import DECLARED_DUTY, YIELDS, YieldTable, fit_yields
from smartcustoms.risk.selectivity import SelectivityModel, gain_curve
from tests.risk.test_assessor_registry import DECL


def _rows() -> pd.DataFrame:
    # D1 (two items, chapters 85 and 61) found 900; D2 (85) found 300; D3 (61) not found; D4 never inspected.
    return pd.DataFrame(
        {
            "declaration_id": ["D1", "D1", "D2", "D3", "D4"],
            "hs_code": ["851762", "610910", "851713", "610910", "030487"],
            "value": [1000.0, 500.0, 800.0, 100.0, 50.0],
            "tax_rate": [10.0, 10.0, 5.0, 10.0, 0.0],
            "fraud": [1.0, 1.0, 1.0, 0.0, np.nan],
            "additional_duty": [900.0, 900.0, 300.0, 0.0, np.nan],
        }
    )


def test_yields_per_chapter_are_shrunk_to_the_overall_mean() -> None:
    t = fit_yields(_rows(), smoothing=3.0)
    assert t.source == YIELDS
    assert t.overall == 600.0  # D1 900 and D2 300, each counted once
    assert t.by_chapter["85"] == ((900 + 300 + 3 * 600) / (2 + 3), 2)
    assert t.by_chapter["61"] == ((900 + 3 * 600) / (1 + 3), 1)
    assert "03" not in t.by_chapter
    e = t.expected(0.5, ["610910", "851762"])
    assert e.chapter == "61" and math.isclose(e.amount, 0.5 * 675.0), "the goods with the larger usual yield count"
    assert (
        e.reason()
        == "expected additional revenue about 338 (risk 50 % x average yield 675 of 1 finding in HS chapter 61)"
    )
    unknown = t.expected(0.2, ["970110"])
    assert unknown.findings == 0 and math.isclose(unknown.amount, 0.2 * 600.0)
    assert "over all chapters" in unknown.reason()
    assert YieldTable.from_dict(t.as_dict()) == t
    assert YieldTable.from_dict(None) is None


def test_without_recorded_yields_declared_duty_stands_in() -> None:
    t = fit_yields(_rows().drop(columns=["additional_duty"]))
    assert t.source == DECLARED_DUTY
    assert t.overall == ((100 + 50) + 40) / 2  # D1: 1000x10 % + 500x10 %; D2: 800x5 %
    assert "estimated from declared duty" in t.expected(1.0, ["851762"]).reason()
    assert fit_yields(pd.DataFrame()).overall == 0.0


@given(p=st.floats(0, 1), amounts=st.lists(st.floats(0, 1e7), min_size=1, max_size=20))
def test_expected_revenue_is_probability_times_a_yield_between_min_and_max(p: float, amounts: list[float]) -> None:
    n = len(amounts)
    frame = pd.DataFrame(
        {
            "declaration_id": [f"D{i}" for i in range(n)],
            "hs_code": ["8517" if i % 2 else "6109" for i in range(n)],
            "value": 1.0,
            "fraud": 1.0,
            "additional_duty": amounts,
        }
    )
    t = fit_yields(frame)
    e = t.expected(p, ["8517", "6109"])
    assert min(amounts) - 1e-6 <= e.yield_per_finding <= max(amounts) + 1e-6
    assert math.isclose(e.amount, p * e.yield_per_finding)


def test_gain_curve_is_monotone_and_ends_at_one() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0], dtype=float)
    s = np.linspace(1, 0, 10)
    c = gain_curve(y, s, points=10)
    assert c[0] == [0.0, 0.0] and c[-1] == [1.0, 1.0]
    assert c[1] == [0.1, round(1 / 3, 4)]
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(c))


def test_model_manifest_has_yields_gain_and_baseline(fitted_model: SelectivityModel) -> None:
    m = fitted_model.manifest
    assert m["revenue"]["source"] == DECLARED_DUTY  # the KCS layout records no inspection yields
    v = m["validation"]
    assert len(v["gain"]) == 21 and v["gain"][-1] == [1.0, 1.0]
    assert v["baseline"]["method"] == "HS chapter past fraud rate"
    assert v["auc"] > v["baseline"]["auc"], "the model beats the chapter-rate baseline on the planted signal"
    d = ModelLaneAssessor(fitted_model).assess(DECL)
    assert d.expected_revenue > 0
    assert d.reasons[-1].startswith("expected additional revenue about")
