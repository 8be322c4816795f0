"""Expected additional revenue: fraud probability x what an inspection of such goods usually yields.

The yield table is learned from past inspections: per HS chapter, the mean additional duty recovered
by inspections that found something, shrunk towards the overall mean so a chapter with two findings
does not dominate. Data sets without recorded yields (KCS) fall back to the declared duty of the
fraudulent declarations, named as such in `source`, so a reason never claims more than it knows.
Pure functions, no I/O; the table travels in the model manifest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from smartcustoms.platform.i18n import t_plain

YIELDS = "inspection yields"
DECLARED_DUTY = "declared duty of fraudulent declarations (no inspection yields in the data)"


@dataclass(frozen=True)
class YieldTable:
    """Mean additional duty per found inspection, per HS chapter (two digits)."""

    overall: float
    by_chapter: dict[str, tuple[float, int]] = field(default_factory=dict)
    source: str = YIELDS
    smoothing: float = 3.0

    def chapter_yield(self, chapter: str) -> tuple[float, int]:
        """(shrunk mean yield, number of found inspections behind it) for one chapter."""
        return self.by_chapter.get(chapter[:2], (self.overall, 0))

    def declaration_yield(self, hs_codes: Iterable[str]) -> tuple[float, str | None]:
        """The largest chapter yield among a declaration's items, and that chapter."""
        best, best_ch = self.overall, None
        for code in hs_codes:
            ch = str(code)[:2]
            y = self.chapter_yield(ch)[0]
            if best_ch is None or y > best:
                best, best_ch = y, ch
        return best, best_ch

    def expected(self, probability: float, hs_codes: Iterable[str]) -> ExpectedRevenue:
        y, ch = self.declaration_yield(hs_codes)
        n = self.chapter_yield(ch)[1] if ch else 0
        return ExpectedRevenue(max(0.0, probability) * y, probability, y, ch, n, self.source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "by_chapter": {k: [v, n] for k, (v, n) in sorted(self.by_chapter.items())},
            "source": self.source,
            "smoothing": self.smoothing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> YieldTable | None:
        if not data:
            return None
        return cls(
            overall=float(data["overall"]),
            by_chapter={str(k): (float(v[0]), int(v[1])) for k, v in dict(data.get("by_chapter") or {}).items()},
            source=str(data.get("source", YIELDS)),
            smoothing=float(data.get("smoothing", 3.0)),
        )


@dataclass(frozen=True)
class ExpectedRevenue:
    amount: float
    probability: float
    yield_per_finding: float
    chapter: str | None
    findings: int
    source: str

    def reason(self) -> str:
        """The sentence shown with the other reasons."""
        yield_ = f"{self.yield_per_finding:,.0f}"
        measured = self.source == YIELDS
        # one whole template per wording, so the sentence reads back from the catalogue in one piece
        if self.findings == 1 and self.chapter:
            basis = (
                t_plain(
                    "average yield {amount} of 1 finding in HS chapter {chapter}", amount=yield_, chapter=self.chapter
                )
                if measured
                else t_plain(
                    "average yield {amount} of 1 finding in HS chapter {chapter}, estimated from declared duty",
                    amount=yield_,
                    chapter=self.chapter,
                )
            )
        elif self.findings and self.chapter:
            basis = (
                t_plain(
                    "average yield {amount} of {count} findings in HS chapter {chapter}",
                    amount=yield_,
                    count=self.findings,
                    chapter=self.chapter,
                )
                if measured
                else t_plain(
                    "average yield {amount} of {count} findings in HS chapter {chapter}, estimated from declared duty",
                    amount=yield_,
                    count=self.findings,
                    chapter=self.chapter,
                )
            )
        elif measured:
            basis = t_plain("average yield {amount} over all chapters", amount=yield_)
        else:
            basis = t_plain("average yield {amount} over all chapters, estimated from declared duty", amount=yield_)
        return t_plain(
            "expected additional revenue about {amount} (risk {risk} x {basis_text})",
            amount=f"{self.amount:,.0f}",
            risk=f"{self.probability:.0%}".replace("%", " %"),
            basis_text=basis,
        )


def fit_yields(frame: pd.DataFrame, *, smoothing: float = 3.0) -> YieldTable:
    """Yield table from canonical rows (one per item) with `fraud` and, where known, `additional_duty`.

    A declaration's yield counts once for every chapter among its items. Without an `additional_duty`
    column the declared duty (value x tax rate) of fraudulent declarations stands in.
    """
    if "fraud" not in frame.columns or frame.empty:
        return YieldTable(0.0, {}, YIELDS, smoothing)
    found = frame[frame["fraud"] == 1]
    if "additional_duty" in frame.columns and found["additional_duty"].notna().any():
        source = YIELDS
        amount = found["additional_duty"].astype("float64")
    else:
        source = DECLARED_DUTY
        rate = pd.to_numeric(found.get("tax_rate"), errors="coerce").fillna(0.0) if "tax_rate" in found else 0.0
        amount = found["value"].astype("float64") * rate / 100.0
    df = pd.DataFrame(
        {
            "declaration_id": found["declaration_id"].astype(str).to_numpy(),
            "chapter": found["hs_code"].astype(str).str[:2].to_numpy(),
            "amount": np.asarray(amount, dtype="float64"),
        }
    ).dropna(subset=["amount"])
    if df.empty:
        return YieldTable(0.0, {}, source, smoothing)
    if source == YIELDS:  # recorded per declaration, repeated on each item row
        per_decl = df.groupby("declaration_id")["amount"].first()
    else:  # declared duty is per item: a declaration's is the sum
        per_decl = df.groupby("declaration_id")["amount"].sum()
    overall = float(per_decl.mean())
    chapters = df.drop_duplicates(["declaration_id", "chapter"]).assign(
        amount=lambda d: d["declaration_id"].map(per_decl)
    )
    g = chapters.groupby("chapter")["amount"].agg(["sum", "count"])
    by_chapter = {
        str(ch): ((float(r["sum"]) + smoothing * overall) / (float(r["count"]) + smoothing), int(r["count"]))
        for ch, r in g.iterrows()
    }
    return YieldTable(overall if math.isfinite(overall) else 0.0, by_chapter, source, smoothing)


__all__ = ["DECLARED_DUTY", "YIELDS", "ExpectedRevenue", "YieldTable", "fit_yields"]
