"""Post-clearance audit selection: rank importers by expected unpaid revenue and risk, with the why.

Input is a scored declaration history (`SelectivityModel.assess` output joined to the declarations);
each company's expected unpaid revenue is the sum over its declarations of probability x revenue at
risk (undervaluation against the reference price), plus the duty on the declared value for the share
of declarations likely fraudulent where no reference price gap is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smartcustoms.platform.i18n import t_plain


def rank_companies(declarations: pd.DataFrame, scored: pd.DataFrame, *, top: int = 50) -> pd.DataFrame:
    """Audit list: one row per importer, best audit targets first, with a reason in words."""
    df = declarations[["importer_id", "value", "tax_rate"]].reset_index(drop=True).copy()
    # Platform exports have one row per item: count declarations, not rows.
    if "declaration_id" in declarations.columns:
        df["declaration"] = declarations["declaration_id"].astype(str).to_numpy()
    else:
        df["declaration"] = np.arange(len(df)).astype(str)
    df["score"] = scored["score"].to_numpy()
    df["revenue_at_risk"] = scored["revenue_at_risk"].to_numpy()
    duty = df["value"].to_numpy(dtype="float64") * np.nan_to_num(df["tax_rate"].to_numpy(dtype="float64")) / 100.0
    df["expected_unpaid"] = df["score"] * np.maximum(df["revenue_at_risk"], 0.1 * duty)
    df["undervalued"] = df["revenue_at_risk"] > 0
    if "fraud" in declarations.columns:
        df["past_findings"] = declarations["fraud"].fillna(0).to_numpy()
    else:
        df["past_findings"] = 0.0
    found = df.groupby(["importer_id", "declaration"])["past_findings"].max().groupby("importer_id").sum()
    g = df.groupby("importer_id").agg(
        declarations=("declaration", "nunique"),
        mean_score=("score", "mean"),
        expected_frauds=("score", "sum"),
        expected_unpaid=("expected_unpaid", "sum"),
        undervalued=("undervalued", "sum"),
    )
    g["past_findings"] = found.reindex(g.index).fillna(0)
    g = g.sort_values(["expected_unpaid", "expected_frauds"], ascending=False).head(top)
    g["rank"] = np.arange(1, len(g) + 1)
    g["reason"] = [
        t_plain(
            "{declarations} declarations, mean risk {risk}, {undervalued} undervalued lines, {findings} past findings; "
            "expected unpaid revenue {amount}",
            declarations=int(r.declarations),
            risk=f"{r.mean_score:.0%}".replace("%", " %"),
            undervalued=int(r.undervalued),
            findings=int(r.past_findings),
            amount=f"{r.expected_unpaid:,.0f}",
        )
        for r in g.itertuples()
    ]
    return g.reset_index()
