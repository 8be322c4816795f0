"""Rules use cases: read a rules file, add derived features to past declarations, backtest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.risk.features import add_hs_levels, fit_history
from smartcustoms.risk.model import RuleError, RuleSet, parse_rules_text
from smartcustoms.risk.model import backtest as backtest_frame


def load_rules_file(path: str | Path) -> RuleSet:
    p = Path(path)
    if not p.exists():
        raise RuleError(Problem("not_found", ("rules",), t("rules file not found: {path}", path=p)))
    fmt = "json" if p.suffix.lower() == ".json" else "yaml" if p.suffix.lower() in (".yaml", ".yml") else "auto"
    return parse_rules_text(p.read_text(encoding="utf-8"), fmt)


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical declarations plus the rules' derived fields, each computed from earlier declarations only."""
    ordered = frame.sort_values("date", kind="stable")
    x, _state = fit_history(ordered.reset_index(drop=True))
    x.index = ordered.index
    out = add_hs_levels(frame)
    mass = out["net_mass_kg"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["value_per_kg"] = np.where(mass > 0, out["value"].to_numpy(dtype="float64") / mass, np.nan)
    x = x.loc[frame.index]
    out["price_ratio"] = np.exp(x["price_dev"].to_numpy())
    out["importer_history"] = np.expm1(x["importer_total"].to_numpy()).round()
    out["first_time_importer"] = out["importer_history"] == 0
    out["importer_fraud_rate"] = x["importer_rate"].to_numpy()
    return out


def backtest(rules: RuleSet, frame: pd.DataFrame) -> pd.DataFrame:
    """Hits and frauds among hits per rule over past declarations (canonical frame)."""
    return backtest_frame(rules, with_derived(frame))


__all__ = ["backtest", "load_rules_file", "with_derived"]
