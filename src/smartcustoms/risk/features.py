"""Declaration features for the selectivity model, computed only from each declaration's past.

Training rows get history statistics from strictly earlier dates only (no leakage: a row never sees its
own label nor a same-day label); scoring rows get them from the whole training history, which is saved
with the model as `HistoryState`. Reference unit prices (median / MAD of log price per kg) are computed
the same way, week by week, per HS6 x origin with HS6, HS4, HS2 fallbacks.

Exact (net mass, item price) pairs are never used as a key: in the KCS data they repeat with their label,
and a model that memorises them does not generalise. Amounts enter only as coarse log buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from smartcustoms.risk.kcs import CATEGORICAL

# History groups: name -> canonical columns whose joint value is the key. HS6 x origin is deliberately
# not a fraud-rate group (it stays a reference-price level): on KCS its rate mostly re-identifies
# near-duplicate declarations; without it AUC on new (mass, price) pairs rose 0.576 -> 0.605 while
# AUC on all validation rows fell 0.865 -> 0.813 (bench ablation, 2026-11-23).
GROUPS: dict[str, tuple[str, ...]] = {
    "importer": ("importer_id",),
    "declarant": ("declarant_id",),
    "seller": ("seller_id",),
    "hs6": ("hs6",),
    "hs4": ("hs4",),
    "hs2": ("hs2",),
    "origin": ("origin",),
    "office": ("office",),
    "importer_hs6": ("importer_id", "hs6"),
    "declarant_importer": ("declarant_id", "importer_id"),
    "seller_importer": ("seller_id", "importer_id"),
    "declarant_hs4": ("declarant_id", "hs4"),
}
TOTAL_COUNT_GROUPS = ("importer", "declarant", "seller")
REF_LEVELS: tuple[tuple[str, ...], ...] = (("hs6", "origin"), ("hs6",), ("hs4",), ("hs2",))
MIN_REFERENCE_ROWS = 5
DEFAULT_PRIOR = 0.1  # fraud rate assumed before any label is known
UNDERVALUATION_RATIO = 0.5  # declared unit price below half the reference
NUMERIC_FEATURES = [
    "tax_rate",
    "log_mass_bucket",
    "log_value_bucket",
    "log_unit_price",
    "seller_missing",
    "courier_present",
    "departure_differs",
    "ref_level",
    "ref_count",
    "price_dev",
    "price_z",
    "undervalued",
    "log_revenue_at_risk",
]
CAT_FEATURES = [f"cat_{c}" for c in CATEGORICAL] + ["cat_hs2"]
HIST_FEATURES = [f"{g}_rate" for g in GROUPS] + [f"{g}_n" for g in GROUPS] + [f"{g}_total" for g in TOTAL_COUNT_GROUPS]
FEATURES = CAT_FEATURES + NUMERIC_FEATURES + HIST_FEATURES


def add_hs_levels(frame: pd.DataFrame) -> pd.DataFrame:
    hs = frame["hs_code"].astype(str)
    out = frame.copy()
    out["hs6"] = hs.str.slice(0, 6)
    out["hs4"] = hs.str.slice(0, 4)
    out["hs2"] = hs.str.slice(0, 2)
    return out


KEY_COLUMNS = ("importer_id", "declarant_id", "seller_id", "hs6", "hs4", "hs2", "origin", "office")


def build_vocab(frame: pd.DataFrame) -> dict[str, pd.Index]:
    """Training values of each key column; a key is the tuple of their integer codes."""
    return {c: pd.Index(sorted(frame[c].dropna().astype(str).unique())) for c in KEY_COLUMNS}


def _strings(series: pd.Series) -> np.ndarray:
    """Object array of str, with missing values as a sentinel no vocabulary contains."""
    arr = series.to_numpy(dtype=object, na_value="\x00")
    if len(arr) and not isinstance(arr[0], str):
        arr = np.array([str(v) for v in arr], dtype=object)
    return arr


def _codes(
    frame: pd.DataFrame, col: str, vocab: dict[str, pd.Index], cache: dict[str, np.ndarray] | None
) -> np.ndarray:
    if cache is None:
        return vocab[col].get_indexer(_strings(frame[col])).astype("int64")
    if col not in cache:
        cache[col] = vocab[col].get_indexer(_strings(frame[col])).astype("int64")
    return np.asarray(cache[col])


def _keys(
    frame: pd.DataFrame, cols: tuple[str, ...], vocab: dict[str, pd.Index], cache: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """Integer key per row (codes combined); -1 where a part is missing or unseen in training."""
    key = _codes(frame, cols[0], vocab, cache)
    bad = key < 0
    for c in cols[1:]:
        part = _codes(frame, c, vocab, cache)
        bad |= part < 0
        key = key * (len(vocab[c]) + 1) + part
    return np.where(bad, -1, key)


def _row_key(
    row: Mapping[str, Any], cols: tuple[str, ...], lookup: dict[str, dict[str, int]], vocab: dict[str, pd.Index]
) -> int:
    key = 0
    for i, c in enumerate(cols):
        v = row.get(c)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return -1
        code = lookup[c].get(str(v))
        if code is None:
            return -1
        key = code if i == 0 else key * (len(vocab[c]) + 1) + code
    return key


def _past_totals(keys: np.ndarray, day: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Per row: (total, labelled, positives) over strictly earlier days with the same key; and final totals."""
    df = pd.DataFrame({"k": keys, "d": day, "lab": ~np.isnan(y), "pos": np.nan_to_num(y)})
    df = df[df["k"] >= 0]
    g = df.groupby(["k", "d"], sort=True).agg(t=("lab", "size"), n=("lab", "sum"), s=("pos", "sum")).astype("float64")
    before = g.groupby(level=0).cumsum() - g
    idx = pd.MultiIndex.from_arrays([keys, day])
    per_row = before.reindex(idx).to_numpy()
    per_row = np.nan_to_num(per_row, nan=0.0)
    final = g.groupby(level=0).sum()
    return per_row, final


def _log10_bucket(x: np.ndarray, resolution: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log10(np.where(x > 0, x, np.nan))
    if resolution > 0:
        lg = np.floor(lg / resolution) * resolution
    return lg


def _ref_table(keys: np.ndarray, log_up: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({"k": keys, "v": log_up})
    df = df[(df["k"] >= 0) & np.isfinite(df["v"])]
    if df.empty:
        return pd.DataFrame(columns=["med", "mad", "n"], dtype="float64")
    grp = df.groupby("k")["v"]
    med = grp.median()
    dev = (df["v"] - df["k"].map(med)).abs()
    mad = dev.groupby(df["k"]).median()
    n = grp.size().astype("float64")
    return pd.DataFrame({"med": med, "mad": mad, "n": n})


@dataclass
class HistoryState:
    """What the model remembers of the training history: per-key label counts and reference prices."""

    prior: float
    smoothing: float
    amount_resolution: float
    categories: dict[str, dict[str, int]]
    vocab: dict[str, pd.Index]  # key column -> training values (position = code)
    history: dict[str, pd.DataFrame]  # group -> frame indexed by integer key with t, n, s
    references: dict[str, pd.DataFrame]  # level name -> frame indexed by integer key with med, mad, n
    _dicts: dict[str, dict[int, tuple[float, ...]]] = field(default_factory=dict, repr=False)
    _lookup: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _cat_cache: dict[str, pd.Index] = field(default_factory=dict, repr=False)

    # --- batch ------------------------------------------------------------------------------------------
    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features of rows to score, with history taken from the whole saved state."""
        frame = add_hs_levels(frame)
        cache: dict[str, np.ndarray] = {}
        hist: dict[str, np.ndarray] = {}
        for g, cols in GROUPS.items():
            tab = self.history[g]
            vals = tab.reindex(_keys(frame, cols, self.vocab, cache))[["t", "n", "s"]].to_numpy()
            hist[g] = np.nan_to_num(vals, nan=0.0)
        ref = self._reference_batch(frame, cache)
        return self._assemble(frame, hist, ref)

    def _reference_batch(self, frame: pd.DataFrame, cache: dict[str, np.ndarray]) -> np.ndarray:
        out = np.full((len(frame), 3), np.nan)  # med, mad, n
        level = np.full(len(frame), len(REF_LEVELS), dtype="float64")
        for i, cols in enumerate(REF_LEVELS):
            tab = self.references[_level_name(cols)]
            vals = tab.reindex(_keys(frame, cols, self.vocab, cache))[["med", "mad", "n"]].to_numpy()
            ok = np.isnan(out[:, 0]) & (np.nan_to_num(vals[:, 2]) >= MIN_REFERENCE_ROWS)
            out[ok] = vals[ok]
            level[ok] = i
        return np.column_stack([out, level])

    def _assemble(
        self, frame: pd.DataFrame, hist: dict[str, np.ndarray], ref: np.ndarray, prior: np.ndarray | None = None
    ) -> pd.DataFrame:
        n_rows = len(frame)
        cols: dict[str, np.ndarray] = {}
        for c in [*CATEGORICAL, "hs2"]:
            codes = self._cat_index(c).get_indexer(_strings(frame[c]))
            cols[f"cat_{c}"] = np.where(codes >= 0, codes, np.nan)
        mass = frame["net_mass_kg"].to_numpy(dtype="float64")
        value = frame["value"].to_numpy(dtype="float64")
        tax = frame["tax_rate"].to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            log_up = np.log(np.where((mass > 0) & (value > 0), value / mass, np.nan))
        cols["tax_rate"] = tax
        cols["log_mass_bucket"] = _log10_bucket(mass, self.amount_resolution)
        cols["log_value_bucket"] = _log10_bucket(value, self.amount_resolution)
        cols["log_unit_price"] = log_up
        cols["seller_missing"] = frame["seller_id"].isna().to_numpy(dtype="float64")
        cols["courier_present"] = frame["courier_id"].notna().to_numpy(dtype="float64")
        dep = frame["departure_country"].astype(object)
        cols["departure_differs"] = (dep.notna() & (dep != frame["origin"])).to_numpy(dtype="float64")
        med, mad, nref, level = ref[:, 0], ref[:, 1], ref[:, 2], ref[:, 3]
        dev = log_up - med
        cols["ref_level"] = level
        cols["ref_count"] = np.log1p(np.nan_to_num(nref))
        cols["price_dev"] = dev
        cols["price_z"] = dev / (1.4826 * np.nan_to_num(mad) + 0.05)
        under = np.nan_to_num(dev) < math.log(UNDERVALUATION_RATIO)
        cols["undervalued"] = under.astype("float64")
        with np.errstate(over="ignore", invalid="ignore"):
            missing_value = np.where(under, np.exp(med) * mass - value, 0.0)
        rar = np.clip(np.nan_to_num(missing_value), 0, None) * np.nan_to_num(tax) / 100.0
        cols["log_revenue_at_risk"] = np.log1p(rar)
        m = self.smoothing
        p = self.prior if prior is None else prior
        for g in GROUPS:
            t, n, s = hist[g][:, 0], hist[g][:, 1], hist[g][:, 2]
            cols[f"{g}_rate"] = (s + m * p) / (n + m)
            cols[f"{g}_n"] = np.log1p(n)
            if g in TOTAL_COUNT_GROUPS:
                cols[f"{g}_total"] = np.log1p(t)
        out = pd.DataFrame({k: cols[k] for k in FEATURES}, index=range(n_rows))
        out.attrs["revenue_at_risk"] = rar
        return out

    def _cat_index(self, column: str) -> pd.Index:
        """Categories of a column as an index whose positions are the codes."""
        mapping = self.categories.get(column, {})
        key = "cat:" + column
        if key not in self._cat_cache:
            values = sorted(mapping, key=mapping.__getitem__)
            self._cat_cache[key] = pd.Index(values, dtype=object)
        return self._cat_cache[key]

    # --- one row ----------------------------------------------------------------------------------------
    def _dict(self, name: str, table: pd.DataFrame, cols: list[str]) -> dict[int, tuple[float, ...]]:
        if name not in self._dicts:
            arr = table[cols].to_numpy(dtype="float64")
            self._dicts[name] = dict(zip(table.index.astype("int64").tolist(), map(tuple, arr.tolist()), strict=True))
        return self._dicts[name]

    def _row_key(self, row: Mapping[str, Any], cols: tuple[str, ...]) -> int:
        if not self._lookup:
            self._lookup = {c: {v: i for i, v in enumerate(idx)} for c, idx in self.vocab.items()}
        return _row_key(row, cols, self._lookup, self.vocab)

    def features_one(self, row: Mapping[str, Any]) -> tuple[np.ndarray, float]:
        """Feature vector (in FEATURES order) of one canonical row, without pandas, and revenue at risk."""
        r = dict(row)
        hs = str(r.get("hs_code") or "")
        r["hs6"], r["hs4"], r["hs2"] = hs[:6], hs[:4], hs[:2]
        vec: dict[str, float] = {}
        for c in CATEGORICAL:
            v = r.get(c)
            code = self.categories.get(c, {}).get(str(v)) if v is not None else None
            vec[f"cat_{c}"] = float(code) if code is not None else math.nan
        code = self.categories.get("hs2", {}).get(r["hs2"])
        vec["cat_hs2"] = float(code) if code is not None else math.nan
        mass, value = _f(r.get("net_mass_kg")), _f(r.get("value"))
        tax = _f(r.get("tax_rate"))
        log_up = math.log(value / mass) if mass > 0 and value > 0 else math.nan
        vec["tax_rate"] = tax
        vec["log_mass_bucket"] = float(_log10_bucket(np.array([mass]), self.amount_resolution)[0])
        vec["log_value_bucket"] = float(_log10_bucket(np.array([value]), self.amount_resolution)[0])
        vec["log_unit_price"] = log_up
        vec["seller_missing"] = 1.0 if r.get("seller_id") is None else 0.0
        vec["courier_present"] = 0.0 if r.get("courier_id") is None else 1.0
        dep = r.get("departure_country")
        vec["departure_differs"] = 1.0 if dep is not None and dep != r.get("origin") else 0.0
        med = mad = nref = math.nan
        level = float(len(REF_LEVELS))
        for i, cols in enumerate(REF_LEVELS):
            name = _level_name(cols)
            key = self._row_key(r, cols)
            hit = self._dict("ref:" + name, self.references[name], ["med", "mad", "n"]).get(key) if key >= 0 else None
            if hit is not None and hit[2] >= MIN_REFERENCE_ROWS:
                med, mad, nref = hit
                level = float(i)
                break
        dev = log_up - med
        vec["ref_level"] = level
        vec["ref_count"] = math.log1p(0.0 if math.isnan(nref) else nref)
        vec["price_dev"] = dev
        vec["price_z"] = dev / (1.4826 * (0.0 if math.isnan(mad) else mad) + 0.05)
        under = (0.0 if math.isnan(dev) else dev) < math.log(UNDERVALUATION_RATIO)
        vec["undervalued"] = 1.0 if under else 0.0
        rar = max(0.0, math.exp(med) * mass - value) * (0.0 if math.isnan(tax) else tax) / 100.0 if under else 0.0
        vec["log_revenue_at_risk"] = math.log1p(rar)
        m, p = self.smoothing, self.prior
        for g, cols in GROUPS.items():
            key = self._row_key(r, cols)
            t, n, s = (self._dict("hist:" + g, self.history[g], ["t", "n", "s"]).get(key) if key >= 0 else None) or (
                0.0,
                0.0,
                0.0,
            )
            vec[f"{g}_rate"] = (s + m * p) / (n + m)
            vec[f"{g}_n"] = math.log1p(n)
            if g in TOTAL_COUNT_GROUPS:
                vec[f"{g}_total"] = math.log1p(t)
        return np.array([vec[k] for k in FEATURES], dtype="float64"), rar


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _level_name(cols: tuple[str, ...]) -> str:
    return "_".join(cols)


def fit_history(
    frame: pd.DataFrame, *, smoothing: float = 20.0, amount_resolution: float = 0.1
) -> tuple[pd.DataFrame, HistoryState]:
    """Training features (strictly past-only per row) and the state for scoring later rows.

    `frame` must be sorted by date; `fraud` may hold NaN for declarations whose outcome is unknown
    (not inspected): they count in history totals but not in fraud rates.
    """
    frame = add_hs_levels(frame)
    y = frame["fraud"].to_numpy(dtype="float64") if "fraud" in frame.columns else np.full(len(frame), np.nan)
    day = frame["date"].to_numpy().astype("datetime64[D]").astype("int64")
    known = y[~np.isnan(y)]
    prior = float(known.mean()) if len(known) else DEFAULT_PRIOR
    # The smoothing prior of each row is the fraud rate of strictly earlier days too.
    daily = pd.DataFrame({"d": day, "n": ~np.isnan(y), "s": np.nan_to_num(y)}).groupby("d")[["n", "s"]].sum()
    before = daily.cumsum() - daily
    row_prior_n = before["n"].reindex(day).to_numpy(dtype="float64")
    row_prior_s = before["s"].reindex(day).to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        row_prior = np.where(row_prior_n > 0, row_prior_s / row_prior_n, DEFAULT_PRIOR)
    categories: dict[str, dict[str, int]] = {}
    for c in [*CATEGORICAL, "hs2"]:
        vals = frame[c].dropna().astype(str).value_counts()
        vals = vals[vals >= 5]
        categories[c] = {v: i for i, v in enumerate(sorted(vals.index))}
    hist: dict[str, np.ndarray] = {}
    history: dict[str, pd.DataFrame] = {}
    vocab = build_vocab(frame)
    cache: dict[str, np.ndarray] = {}
    for g, cols in GROUPS.items():
        per_row, final = _past_totals(_keys(frame, cols, vocab, cache), day, y)
        hist[g] = per_row
        history[g] = final
    # Reference prices: for each week, from all rows of earlier weeks.
    mass = frame["net_mass_kg"].to_numpy(dtype="float64")
    value = frame["value"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_up = np.log(np.where((mass > 0) & (value > 0), value / mass, np.nan))
    week = (day - 4) // 7  # 1970-01-05 was a Monday
    level_keys = {_level_name(cols): _keys(frame, cols, vocab, cache) for cols in REF_LEVELS}
    ref = np.full((len(frame), 4), np.nan)
    ref[:, 3] = len(REF_LEVELS)
    for w in np.unique(week):
        rows = np.flatnonzero(week == w)
        past = week < w
        if not past.any():
            continue
        found = np.zeros(len(rows), dtype=bool)
        for i, cols in enumerate(REF_LEVELS):
            name = _level_name(cols)
            keys = level_keys[name]
            wanted = keys[rows[~found]]
            # Only the past rows of the keys this week needs (keeps the weekly loop cheap).
            sel = past & np.isin(keys, wanted)
            tab = _ref_table(keys[sel], log_up[sel])
            vals = tab.reindex(keys[rows])[["med", "mad", "n"]].to_numpy()
            ok = ~found & (np.nan_to_num(vals[:, 2]) >= MIN_REFERENCE_ROWS)
            ref[rows[ok], :3] = vals[ok]
            ref[rows[ok], 3] = i
            found |= ok
    references = {name: _ref_table(keys, log_up) for name, keys in level_keys.items()}
    state = HistoryState(prior, smoothing, amount_resolution, categories, vocab, history, references)
    return state._assemble(frame, hist, ref, row_prior), state
