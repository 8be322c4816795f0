"""The selectivity model: LightGBM over declaration and past-only history features, calibrated, explained.

Estimator shape (scikit-learn): hyper-parameters in the constructor, `fit(frame)`, `predict_proba`,
`score`, `explain`, `assess` (score + lane + reasons), `score_one(dict)` for the submission path, and
`save(dir)` / `load(dir)` writing a versioned directory (manifest with parameters, training window,
validation metrics and a content hash; the booster; the history state as Parquet).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t_plain
from smartcustoms.risk.features import (
    CAT_FEATURES,
    FEATURES,
    GROUPS,
    KEY_COLUMNS,
    REF_LEVELS,
    TOTAL_COUNT_GROUPS,
    HistoryState,
    _level_name,
    add_hs_levels,
    fit_history,
)
from smartcustoms.risk.kcs import RiskInputError, check_labels
from smartcustoms.risk.lanes import LANES, LanePolicy, assign_lanes, exploration_draw
from smartcustoms.risk.model import RuleSet, rule_masks
from smartcustoms.risk.revenue import YieldTable, fit_yields

MODEL_KIND = "smartcustoms.risk.selectivity"
SCHEMA = 1

# Features grouped into what an officer reads as one reason.


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Marks a message for the catalogue; the reason is translated on display from its English text."""
    return message


_SUBJECT = {
    "importer": N_("importer's"),
    "declarant": N_("declarant's"),
    "seller": N_("seller's"),
    "hs6": N_("HS {hs6}"),
    "hs4": N_("HS heading {hs4}"),
    "hs2": N_("HS chapter {hs2}"),
    "origin": N_("origin {origin}"),
    "office": N_("office {office}"),
    "importer_hs6": N_("importer's on HS {hs6}"),
    "declarant_importer": N_("declarant's for this importer"),
    "hs6_origin": N_("HS {hs6} from {origin}"),
    "seller_importer": N_("seller–importer pair's"),
    "declarant_hs4": N_("declarant's on HS heading {hs4}"),
}
_SUBJECT_BARE = (N_("importer"), N_("declarant"), N_("seller"), N_("seller–importer pair"))
"""The subjects above without the possessive, as "... has no inspection history" shows them."""
_CAT_LABEL = {
    "cat_office": ("office", N_("customs office {v}")),
    "cat_process_type": ("process_type", N_("process type {v}")),
    "cat_import_type": ("import_type", N_("import type {v}")),
    "cat_import_use": ("import_use", N_("import use {v}")),
    "cat_payment_type": ("payment_type", N_("payment type {v}")),
    "cat_transport_mode": ("transport_mode", N_("mode of transport {v}")),
    "cat_departure_country": ("departure_country", N_("shipped from {country}")),
    "cat_origin": ("origin", N_("origin {origin}")),
    "cat_tax_type": ("tax_type", N_("tax type {v}")),
    "cat_origin_indicator": ("origin_indicator", N_("origin indicator {v}")),
    "cat_hs2": ("hs2", N_("goods of HS chapter {v}")),
}
REASON_GROUPS: dict[str, list[str]] = {
    **{g: [f"{g}_rate", f"{g}_n"] + ([f"{g}_total"] if g in TOTAL_COUNT_GROUPS else []) for g in GROUPS},
    "price": ["log_unit_price", "price_dev", "price_z", "undervalued", "log_revenue_at_risk", "ref_level", "ref_count"],
    "amount": ["log_mass_bucket", "log_value_bucket"],
    "tax_rate": ["tax_rate"],
    "seller_missing": ["seller_missing"],
    "courier_present": ["courier_present"],
    "departure_differs": ["departure_differs"],
    **{c: [c] for c in CAT_FEATURES},
}
_GROUP_NAMES = list(REASON_GROUPS)
_GROUP_INDEX = np.zeros((len(FEATURES), len(_GROUP_NAMES)))
for _j, _g in enumerate(_GROUP_NAMES):
    for _f in REASON_GROUPS[_g]:
        _GROUP_INDEX[FEATURES.index(_f), _j] = 1.0
_FI = {f: i for i, f in enumerate(FEATURES)}


@dataclass
class _Fitted:
    booster: lgb.Booster
    state: HistoryState
    cal: np.ndarray  # Platt (slope, intercept) on the raw margin
    policy: LanePolicy
    manifest: dict[str, Any]


class SelectivityModel:
    """Calibrated fraud probability per declaration, with lanes and reasons in words."""

    def __init__(
        self,
        *,
        n_estimators: int = 150,
        learning_rate: float = 0.08,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 5.0,
        smoothing: float = 20.0,
        amount_resolution: float = 0.1,
        calibration_share: float = 0.15,
        refit_full: bool = True,
        policy: LanePolicy | None = None,
        data_format: str = "kcs",
        seed: int = 7,
        n_jobs: int = 2,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.smoothing = smoothing
        self.amount_resolution = amount_resolution
        self.calibration_share = calibration_share
        self.refit_full = refit_full
        self.policy = policy or LanePolicy()
        self.data_format = data_format
        self.seed = seed
        self.n_jobs = n_jobs
        self._fitted: _Fitted | None = None

    # --- parameters ---------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "lambda_l2": self.lambda_l2,
            "smoothing": self.smoothing,
            "amount_resolution": self.amount_resolution,
            "calibration_share": self.calibration_share,
            "refit_full": self.refit_full,
            "policy": self.policy.as_dict(),
            "data_format": self.data_format,
            "seed": self.seed,
            "n_jobs": self.n_jobs,
        }

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": 20,
            "min_data_per_group": 50,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": self.n_jobs,
            "verbose": -1,
        }

    def _train(self, x: pd.DataFrame, y: np.ndarray) -> lgb.Booster:
        data = lgb.Dataset(x, label=y, categorical_feature=CAT_FEATURES, free_raw_data=True)
        return lgb.train(self._lgb_params(), data, num_boost_round=self.n_estimators)

    # --- fit -----------------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> SelectivityModel:
        """Learn from canonical declarations with `fraud` labels (NaN = outcome unknown)."""
        check_labels(frame)
        frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
        x, state = fit_history(frame, smoothing=self.smoothing, amount_resolution=self.amount_resolution)
        y = frame["fraud"].to_numpy(dtype="float64")
        labelled = ~np.isnan(y)
        days = frame["date"].to_numpy().astype("datetime64[D]")
        cut = np.quantile(days.astype("int64"), 1 - self.calibration_share)
        late = days.astype("int64") > cut if self.calibration_share > 0 else np.zeros(len(frame), dtype=bool)
        early = labelled & ~late
        calib = labelled & late
        if calib.sum() < 50 or len(np.unique(y[calib])) < 2 or len(np.unique(y[early])) < 2:
            raise RiskInputError(
                Problem(
                    "too_little_data",
                    ("Fraud",),
                    t_plain("too few labelled declarations with both outcomes to train and calibrate"),
                )
            )
        booster = self._train(x[early], y[early])
        raw_cal = _predict(booster, x[calib], raw_score=True)
        # Platt scaling on the time-later slice: strictly monotone, so the ranking (top-k) is kept.
        platt = LogisticRegression(C=1e6).fit(raw_cal.reshape(-1, 1), y[calib])
        cal = np.array([float(platt.coef_[0, 0]), float(platt.intercept_[0])])
        p_cal = _sigmoid(raw_cal, cal)
        policy = self.policy.with_thresholds(p_cal)
        validation = _metrics(y[calib], raw_cal)
        validation["window"] = {"from": str(days[calib].min()), "to": str(days[calib].max()), "rows": int(calib.sum())}
        validation["brier"] = float(np.mean((p_cal - y[calib]) ** 2))
        validation["gain"] = gain_curve(y[calib], raw_cal)
        validation["baseline"] = _chapter_baseline(frame, y, early, calib)
        if self.refit_full:
            booster = self._train(x[labelled], y[labelled])
        manifest = {
            "kind": MODEL_KIND,
            "schema": SCHEMA,
            "format": self.data_format,
            "params": self.get_params(),
            "training_window": {
                "from": str(days.min()),
                "to": str(days.max()),
                "rows": len(frame),
                "labelled": int(labelled.sum()),
                "positives": int(np.nansum(y)),
            },
            "validation": validation,
            "revenue": fit_yields(frame).as_dict(),
            "features": FEATURES,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self._fitted = _Fitted(booster, state, cal, policy, manifest)
        return self

    # --- use -----------------------------------------------------------------------------------------
    @property
    def fitted(self) -> _Fitted:
        if self._fitted is None:
            raise RuntimeError("model is not fitted")
        return self._fitted

    @property
    def version(self) -> str:
        return str(self.fitted.manifest.get("version", "unsaved"))

    @property
    def manifest(self) -> dict[str, Any]:
        return self.fitted.manifest

    @property
    def yields(self) -> YieldTable:
        """Expected additional duty per finding by HS chapter (models saved before it: zero yields)."""
        return YieldTable.from_dict(self.fitted.manifest.get("revenue")) or YieldTable(0.0)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.fitted.state.features(frame)

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        return _sigmoid(raw, self.fitted.cal)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated fraud probability per row."""
        x = self.features(frame)
        return self._calibrate(_predict(self.fitted.booster, x, raw_score=True, num_threads=self.n_jobs))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = self.score(frame)
        return np.column_stack([1 - p, p])

    def explain(self, frame: pd.DataFrame, top: int = 3) -> list[list[str]]:
        """Top reasons in words per row: the feature groups that raise the score most (TreeSHAP)."""
        x = self.features(frame)
        return self._reasons(add_hs_levels(frame), x, top)

    def _reasons(self, frame: pd.DataFrame, x: pd.DataFrame, top: int) -> list[list[str]]:
        contrib = _predict(self.fitted.booster, x, pred_contrib=True, num_threads=self.n_jobs)[:, :-1]
        grouped = contrib @ _GROUP_INDEX
        xv = x.to_numpy()
        records = frame.to_dict("records")
        return [self._pick(grouped[i], records[i], xv[i], top) for i in range(len(x))]

    def _pick(self, grouped: np.ndarray, row: Mapping[str, Any], xv: np.ndarray, top: int) -> list[str]:
        """Phrases of the groups that raise the score most; a rate group is only named when it is above average."""
        reasons: list[str] = []
        for j in np.argsort(-grouped)[: top + 4]:
            if grouped[j] <= 0.02 or len(reasons) == top:
                break
            group = _GROUP_NAMES[j]
            if group in GROUPS and not self._above_average(group, xv):
                continue
            reasons.append(self._phrase(group, row, xv))
        return reasons or [t_plain("no risk indicator above average")]

    def _above_average(self, group: str, xv: np.ndarray) -> bool:
        st = self.fitted.state
        n = math.expm1(xv[_FI[f"{group}_n"]])
        if n < 0.5:
            return True  # "no inspection history" is itself a reason
        s = xv[_FI[f"{group}_rate"]] * (n + st.smoothing) - st.smoothing * st.prior
        return bool(s / n > st.prior)

    def _phrase(self, group: str, row: Mapping[str, Any], xv: np.ndarray) -> str:
        st = self.fitted.state
        ctx = {k: row.get(k) for k in ("hs6", "hs4", "hs2", "origin", "office")}
        if group in GROUPS:
            subject = _SUBJECT[group].format(**ctx)
            n = math.expm1(xv[_FI[f"{group}_n"]])
            if n < 0.5:
                return t_plain(
                    "{subject_text} has no inspection history", subject_text=subject.removesuffix(chr(39) + "s")
                )
            rate = xv[_FI[f"{group}_rate"]]
            s = rate * (n + st.smoothing) - st.smoothing * st.prior
            return t_plain(
                "{subject_text} past fraud rate {rate} vs {prior} average ({hits} of {total})",
                subject_text=subject,
                rate=f"{s / n:.0%}".replace("%", " %"),
                prior=f"{st.prior:.0%}".replace("%", " %"),
                hits=round(s),
                total=round(n),
            )
        if group == "price":
            dev = xv[_FI["price_dev"]]
            level = int(xv[_FI["ref_level"]])
            if math.isnan(dev) or level >= len(REF_LEVELS):
                return t_plain("no reference price for this HS code (unusual goods)")
            cols = REF_LEVELS[level]
            ref = (
                t_plain("HS {hs6} from {origin}", hs6=ctx["hs6"], origin=ctx["origin"])
                if cols == ("hs6", "origin")
                else t_plain("HS {hs6}", hs6=ctx[cols[0]])
            )
            pct = abs(math.expm1(dev))
            percent = f"{pct:.0%}".replace("%", " %")
            rar = math.expm1(xv[_FI["log_revenue_at_risk"]])
            if rar >= 1:
                amount = f"{rar:,.0f}"
                if pct < 0.05:
                    return t_plain(
                        "unit price close to the reference for {reference_text}; revenue at risk about {amount}",
                        reference_text=ref,
                        amount=amount,
                    )
                if dev < 0:
                    return t_plain(
                        "unit price {percent} below the reference for {reference_text}; revenue at risk about {amount}",
                        percent=percent,
                        reference_text=ref,
                        amount=amount,
                    )
                return t_plain(
                    "unit price {percent} above the reference for {reference_text}; revenue at risk about {amount}",
                    percent=percent,
                    reference_text=ref,
                    amount=amount,
                )
            if pct < 0.05:
                return t_plain("unit price close to the reference for {reference_text}", reference_text=ref)
            if dev < 0:
                return t_plain(
                    "unit price {percent} below the reference for {reference_text}", percent=percent, reference_text=ref
                )
            return t_plain(
                "unit price {percent} above the reference for {reference_text}", percent=percent, reference_text=ref
            )
        if group == "amount":
            return t_plain(
                "declared amounts (value {value}, net mass {mass} kg) typical of risky declarations",
                value=f"{row.get('value'):,.0f}",
                mass=f"{row.get('net_mass_kg'):,.1f}",
            )
        if group == "tax_rate":
            return t_plain("tax rate {rate} % (duty at stake)", rate=row.get("tax_rate"))
        if group == "seller_missing":
            return t_plain("no seller declared") if row.get("seller_id") is None else t_plain("seller declared")
        if group == "courier_present":
            return (
                t_plain("delivered through a courier") if row.get("courier_id") is not None else t_plain("no courier")
            )
        if group == "departure_differs":
            return t_plain(
                "shipped from {country}, origin {origin}",
                country=row.get("departure_country"),
                origin=row.get("origin"),
            )
        col, template = _CAT_LABEL[group]
        value = row.get(col)
        return template.format(v=value, country=value, origin=value)

    def assess(
        self, frame: pd.DataFrame, *, explain: str = "selected", top: int = 3, rules: RuleSet | None = None
    ) -> pd.DataFrame:
        """Score, lane and reasons per row (batch path of `smartcustoms risk score`).

        `explain`: "all" (TreeSHAP reasons on every row), "selected" (on C2/C3 rows, the ones an officer
        opens; released rows get a one-line reason, which keeps big batches fast) or "none".
        `rules`: targeting rules applied on top: the strictest lane wins and each hit is a reason.
        """
        fit = self.fitted
        x = fit.state.features(frame)
        p = self._calibrate(_predict(fit.booster, x, raw_score=True, num_threads=self.n_jobs))
        ids = frame["declaration_id"].astype(str).tolist()
        aeo = frame["aeo"].to_numpy(dtype=bool) if "aeo" in frame.columns else np.zeros(len(frame), dtype=bool)
        lanes, explored = assign_lanes(p, aeo, exploration_draw(ids, fit.policy.seed), fit.policy)
        rule_reasons: list[list[str]] = [[] for _ in range(len(frame))]
        if rules is not None:
            lanes = self._apply_rules(rules, frame, x, p, lanes, rule_reasons)
        out = pd.DataFrame(
            {
                "declaration_id": ids,
                "score": p,
                "lane": lanes,
                "revenue_at_risk": x.attrs.get("revenue_at_risk", np.zeros(len(frame))),
                "explored": explored,
            }
        )
        if explain == "none":
            return out
        reasons: list[list[str]] = [
            [
                t_plain(
                    "score {score} below the inspection threshold {threshold}",
                    score=f"{v:.2f}",
                    threshold=f"{fit.policy.c2_threshold:.2f}",
                )
            ]
            for v in p
        ]
        rows = np.arange(len(frame)) if explain == "all" else np.flatnonzero(lanes != "C1")
        if len(rows):
            sub = add_hs_levels(frame.iloc[rows].reset_index(drop=True))
            for i, r in zip(rows, self._reasons(sub, x.iloc[rows].reset_index(drop=True), top), strict=True):
                reasons[i] = r
        for i in np.flatnonzero(explored):
            reasons[i] = [
                t_plain(
                    "selected at random for learning ({share} exploration share)",
                    share=f"{fit.policy.exploration:.0%}",
                ),
                *reasons[i],
            ]
        for i in np.flatnonzero(aeo):
            reasons[i] = [*reasons[i], t_plain("AEO trusted trader: relief applied")]
        out["reasons"] = ["; ".join([*rr, *r]) for rr, r in zip(rule_reasons, reasons, strict=True)]
        return out

    def _apply_rules(
        self,
        rules: RuleSet,
        frame: pd.DataFrame,
        x: pd.DataFrame,
        p: np.ndarray,
        lanes: np.ndarray,
        rule_reasons: list[list[str]],
    ) -> np.ndarray:
        """Rules over the batch with derived features from the model's history (as the assessor does)."""
        facts = add_hs_levels(frame)
        mass = facts["net_mass_kg"].to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            facts["value_per_kg"] = np.where(mass > 0, facts["value"].to_numpy(dtype="float64") / mass, np.nan)
        facts["price_ratio"] = np.exp(x["price_dev"].to_numpy())
        facts["importer_history"] = np.round(np.expm1(x["importer_total"].to_numpy()))
        facts["first_time_importer"] = facts["importer_history"] == 0
        facts["importer_fraud_rate"] = x["importer_rate"].to_numpy()
        facts["risk_score"] = p
        rank = {lane: i for i, lane in enumerate(LANES)}
        out = lanes.copy()
        for rule, mask in zip(rules.rules, rule_masks(rules, facts).values(), strict=True):
            for i in np.flatnonzero(mask):
                rule_reasons[i].append(f"rule {rule.id} v{rule.version}: {rule.reason}")
                if rule.lane is not None and rank[rule.lane] > rank[out[i]]:
                    out[i] = rule.lane
        return out

    def score_one(self, row: Mapping[str, Any], *, explain: bool = True) -> dict[str, Any]:
        """One canonical row, without pandas: the submission path (< 5 ms)."""
        fit = self.fitted
        vec, rar = fit.state.features_one(row)
        xm = vec.reshape(1, -1)
        raw = _predict(fit.booster, xm, raw_score=True, num_threads=1)
        p = float(self._calibrate(raw)[0])
        did = str(row.get("declaration_id") or "")
        aeo = np.array([bool(row.get("aeo", False))])
        lanes, explored = assign_lanes(np.array([p]), aeo, exploration_draw([did], fit.policy.seed), fit.policy)
        reasons: list[str] = []
        if explain:
            contrib = _predict(fit.booster, xm, pred_contrib=True, num_threads=1)[0, :-1]
            grouped = contrib @ _GROUP_INDEX
            r = dict(row)
            hs = str(r.get("hs_code") or "")
            r["hs6"], r["hs4"], r["hs2"] = hs[:6], hs[:4], hs[:2]
            reasons = self._pick(grouped, r, vec, 3)
            if explored[0]:
                reasons.insert(
                    0,
                    t_plain(
                        "selected at random for learning ({share} exploration share)",
                        share=f"{fit.policy.exploration:.0%}",
                    ),
                )
            if aeo[0]:
                reasons.append(t_plain("AEO trusted trader: relief applied"))
        return {
            "score": p,
            "lane": str(lanes[0]),
            "reasons": reasons,
            "revenue_at_risk": rar,
            "explored": bool(explored[0]),
            "derived": {
                "price_ratio": math.exp(vec[_FI["price_dev"]]) if not math.isnan(vec[_FI["price_dev"]]) else None,
                "importer_history": round(math.expm1(vec[_FI["importer_total"]])),
                "importer_fraud_rate": float(vec[_FI["importer_rate"]]),
                "risk_score": p,
            },
        }

    # --- persistence ---------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the versioned model directory; returns it. The manifest carries a content hash."""
        fit = self.fitted
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        fit.booster.save_model(str(d / "booster.txt"))
        hist = pd.concat(
            [t.assign(group=g).rename_axis("key").reset_index() for g, t in fit.state.history.items()],
            ignore_index=True,
        )
        hist.to_parquet(d / "history.parquet", index=False)
        refs = pd.concat(
            [t.assign(level=lv).rename_axis("key").reset_index() for lv, t in fit.state.references.items()],
            ignore_index=True,
        )
        refs.to_parquet(d / "references.parquet", index=False)
        vocab = pd.DataFrame(
            [(c, i, v) for c, idx in fit.state.vocab.items() for i, v in enumerate(idx)],
            columns=["column", "code", "value"],
        )
        vocab.to_parquet(d / "vocab.parquet", index=False)
        manifest = dict(fit.manifest)
        manifest["calibrator"] = {"method": "platt", "slope": float(fit.cal[0]), "intercept": float(fit.cal[1])}
        manifest["lanes"] = fit.policy.as_dict()
        manifest["state"] = {
            "prior": fit.state.prior,
            "smoothing": fit.state.smoothing,
            "amount_resolution": fit.state.amount_resolution,
            "categories": fit.state.categories,
        }
        manifest.pop("hash", None)
        manifest.pop("version", None)
        digest = _content_hash(d, manifest)
        manifest["hash"] = digest
        manifest["version"] = (
            f"selectivity-{self.data_format}-{manifest['created_at'][:10].replace('-', '')}-{digest[:10]}"
        )
        (d / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        fit.manifest = manifest
        return d

    @classmethod
    def load(cls, directory: str | Path, *, expected_format: str | None = None) -> SelectivityModel:
        """Read a saved model directory; checks its kind, hash and (if given) the data format it was built for."""
        d = Path(directory)
        mpath = d / "manifest.json"
        if not mpath.exists():
            raise RiskInputError(
                Problem("not_a_model", ("model",), f"{d}: not a risk model directory (no manifest.json)")
            )
        manifest = json.loads(mpath.read_text())
        if manifest.get("kind") != MODEL_KIND:
            raise RiskInputError(
                Problem("not_a_model", ("model",), f"{d}: not a selectivity model (kind {manifest.get('kind')!r})")
            )
        if expected_format is not None and manifest.get("format") != expected_format:
            raise RiskInputError(
                Problem(
                    "wrong_format",
                    ("format",),
                    f"model {manifest.get('version')} was built for format {manifest.get('format')!r}, not {expected_format!r}",
                )
            )
        body = {k: v for k, v in manifest.items() if k not in ("hash", "version")}
        if _content_hash(d, body) != manifest.get("hash"):
            raise RiskInputError(
                Problem("corrupt_model", ("model",), f"{d}: content hash mismatch (files changed after saving)")
            )
        params = dict(manifest["params"])
        policy_params = params.pop("policy")
        model = cls(**{**params, "policy": LanePolicy(**policy_params)})
        lanes = LanePolicy(**manifest["lanes"])
        hist = pd.read_parquet(d / "history.parquet")
        refs = pd.read_parquet(d / "references.parquet")
        history = {g: hist[hist["group"] == g].set_index("key")[["t", "n", "s"]] for g in GROUPS}
        references = {
            _level_name(c): refs[refs["level"] == _level_name(c)].set_index("key")[["med", "mad", "n"]]
            for c in REF_LEVELS
        }
        voc = pd.read_parquet(d / "vocab.parquet").sort_values(["column", "code"])
        vocab = {c: pd.Index(voc.loc[voc["column"] == c, "value"].tolist()) for c in KEY_COLUMNS}
        st = manifest["state"]
        state = HistoryState(
            st["prior"], st["smoothing"], st["amount_resolution"], st["categories"], vocab, history, references
        )
        booster = lgb.Booster(model_file=str(d / "booster.txt"))
        cal = manifest["calibrator"]
        model._fitted = _Fitted(booster, state, np.array([cal["slope"], cal["intercept"]]), lanes, manifest)
        return model


def _predict(booster: lgb.Booster, x: Any, **kwargs: Any) -> np.ndarray:
    return np.asarray(booster.predict(x, **kwargs), dtype="float64")


def _sigmoid(raw: np.ndarray, cal: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(cal[0] * np.asarray(raw) + cal[1]))), dtype="float64")


def _content_hash(d: Path, manifest_body: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in ("booster.txt", "history.parquet", "references.parquet", "vocab.parquet"):
        h.update(name.encode())
        h.update((d / name).read_bytes())
    h.update(json.dumps(manifest_body, sort_keys=True).encode())
    return h.hexdigest()


def _metrics(y: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    """AUC and precision / recall at the top 1, 2, 5, 10 % by count."""
    out: dict[str, Any] = {"rows": len(y), "positives": int(y.sum())}
    out["auc"] = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None
    order = np.argsort(-s, kind="stable")
    total = max(1.0, float(y.sum()))
    for share in (0.01, 0.02, 0.05, 0.10):
        k = max(1, round(share * len(y)))
        hits = float(y[order[:k]].sum())
        out[f"precision@{int(share * 100)}%"] = hits / k
        out[f"recall@{int(share * 100)}%"] = hits / total
    return out


def gain_curve(y: np.ndarray, s: np.ndarray, points: int = 20) -> list[list[float]]:
    """Cumulative gain: [share inspected, share of all frauds caught] when inspecting the top by score."""
    order = np.argsort(-np.asarray(s), kind="stable")
    caught = np.cumsum(np.asarray(y, dtype="float64")[order])
    total = max(1.0, float(caught[-1])) if len(caught) else 1.0
    out = [[0.0, 0.0]]
    for i in range(1, points + 1):
        share = i / points
        k = max(1, round(share * len(order)))
        out.append([round(share, 4), round(float(caught[k - 1]) / total, 4) if len(order) else 0.0])
    return out


def _chapter_baseline(frame: pd.DataFrame, y: np.ndarray, early: np.ndarray, calib: np.ndarray) -> dict[str, Any]:
    """The simple baseline on the same time-later slice: the HS chapter's past fraud rate (smoothed)."""
    ch = frame["hs_code"].astype(str).str[:2].to_numpy()
    past = pd.DataFrame({"ch": ch[early], "y": y[early]}).groupby("ch")["y"].agg(["sum", "count"])
    prior = float(np.nanmean(y[early])) if early.any() else 0.0
    rate = (past["sum"] + 20 * prior) / (past["count"] + 20)
    s = pd.Series(ch[calib]).map(rate).fillna(prior).to_numpy(dtype="float64")
    out = _metrics(y[calib], s)
    out["method"] = "HS chapter past fraud rate"
    out["gain"] = gain_curve(y[calib], s)
    return out


metrics_at_k = _metrics
