"""Calibrated confidence of the classifier's first choice (issue 4: "each with a calibrated confidence").

A softmax of the raw scores with one temperature was over-confident on hand-written descriptions once the e5
parts were added (ECE 0.20 on the 78 micro cases). `ConfidenceCalibrator` is a logistic regression on a few
cheap features of the ranked score row (top-1 score, margins to the 2nd and 5th, softmax probability, entropy,
query length, trader word / embedding parts of the first choice, agreement of the top 5 at 4 digits) predicting
P(first choice correct at the schedule's code level). The other candidates share 1 - p by their softmax shares,
capped at p, so confidences sum to <= 1 and keep the rank order.

Fitted only on rows never reported: trader-style TRAINING rows of the synthetic file (HS codes disjoint from the
held-out ones), 400 synthetic calibration queries, and US / Taiwan lines after the reported and tuning slices.
Shipped as `data/confidence_calibrator.json` (coefficients only), tied to the classifier configuration by a hash:
a classifier with other weights falls back to the temperature and says so (`TariffClassifier.confidence_source`).
Regenerate: `PYTHONPATH=src python -m smartcustoms.tariff.classifier.calibrate --shared ../shared/data`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smartcustoms.tariff.classifier.text import tokens

if TYPE_CHECKING:
    from smartcustoms.tariff.classifier.model import TariffClassifier

CALIBRATOR_FORMAT = "tariff-confidence/1"
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "confidence_calibrator.json"
SHIPPED_ZH = SHIPPED.with_name("confidence_calibrator_zh.json")  # for an index with Taiwan Chinese line texts
SHIPPED_BY_INDEX = {False: SHIPPED, True: SHIPPED_ZH}
TAIWAN_FOLDER = "taiwan_gc413_mofgc413"  # under shared/data/hs: the Chinese training rows and index texts
# What a score row gives for free. Oriented so that "larger" reads "surer" where that is expected: the first
# group must not lower the confidence when the first choice pulls ahead of the others (see MONOTONE).
FEATURES = (
    "top1_score",
    "margin_1_2",
    "margin_1_5",
    "softmax_top1",
    "neg_entropy_top10",
    "log_query_tokens",
    "cjk_query",
    "terms_top1",
    "embed_top1",
    "embed_sub_top1",
    "top5_same_heading",
)
# The shipped set: the first choice's softmax probability alone (Platt scaling of the temperature's confidence).
# Chosen on the training rows only, by grouped 5-fold cross-validation log loss (bench: feature_ablation...): best
# for the HS index (0.450 vs 0.452-0.460 for the richer sets without the query's language) and within 0.0002 of the
# best for the index with Taiwan Chinese. Sets with `cjk_query` were excluded on principle: the only labelled
# Chinese rows are tariff lines, so "Chinese" would stand for "tariff wording" and mislead on Chinese trader text.
DEFAULT_FEATURES: tuple[str, ...] = ("softmax_top1",)
MONOTONE = frozenset({"top1_score", "margin_1_2", "margin_1_5", "softmax_top1", "neg_entropy_top10"})
SCORE_PARAMS = ("char_weight", "parent_weight", "term_weight", "use_terms", "schedule", "embed_weight", "sub_weight")
MIN_CONFIRMED_TO_REFIT = 250  # confirmed rows before `train` refits the calibrator (50 held out to measure it)


def config_hash(model: TariffClassifier) -> str:
    """The classifier settings that shape the score row (not the temperature: the calibrator computes its own
    softmax feature at the temperature it was fitted with), and whether the index holds Chinese line texts (an
    imported Taiwan tariff): with them a Chinese query is right far more often, so it needs its own calibrator."""
    from smartcustoms.tariff.classifier.model import MODEL_VERSION

    params = model.params()
    zh_index = bool(model.info_.get("zh_leaves"))
    raw = json.dumps([MODEL_VERSION, {k: params[k] for k in SCORE_PARAMS}, {"zh_index": zh_index}], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _softmax(row: np.ndarray, temperature: float) -> np.ndarray:
    r = np.asarray(row, dtype=np.float64)  # float32 rows: 1 - p(top) must not lose the rest of the mass
    z = (r - r.max()) / max(temperature, 1e-6)
    e = np.exp(z)
    return np.asarray(e / e.sum())


def row_features(
    row: np.ndarray,
    text: str,
    temperature: float,
    parts: Mapping[str, np.ndarray] | None = None,
    codes: Sequence[str] = (),
    soft: np.ndarray | None = None,
) -> np.ndarray:
    """FEATURES of one query from its score row (one value per leaf), the score parts and the leaf codes."""
    k = min(10, len(row))
    top = np.argpartition(-row, k - 1)[:k]
    top = top[np.argsort(-row[top], kind="stable")]
    vals = row[top].astype(np.float64)
    s1 = float(vals[0])
    s2 = float(vals[1]) if k > 1 else 0.0
    s5 = float(vals[min(4, k - 1)]) if k > 1 else 0.0
    p = soft if soft is not None else _softmax(row, temperature)
    p10 = p[top].astype(np.float64)
    p10 = p10 / max(float(p10.sum()), 1e-12)
    ent = -float(np.sum(p10 * np.log(np.clip(p10, 1e-12, None))))
    toks = tokens(text)
    cjk = sum(1 for x in toks if len(x) == 1 and ord(x) >= 0x3400) / max(len(toks), 1)
    i = int(top[0])
    parts = parts or {}

    def part(name: str) -> float:
        v = parts.get(name)
        return float(v[i]) if v is not None else 0.0

    same = 0.0
    if codes:
        head = codes[i][:4]
        five = top[: min(5, k)]
        same = sum(codes[j][:4] == head for j in five) / len(five)
    return np.array(
        [
            s1,
            s1 - s2,
            s1 - s5,
            float(p[i]),
            -ent,
            math.log1p(len(toks)),
            cjk,
            part("terms"),
            part("embed"),
            part("embed_sub"),
            same,
        ]
    )


def feature_matrix(model: TariffClassifier, texts: Sequence[str], temperature: float) -> tuple[np.ndarray, list[str]]:
    """FEATURES of each text and the classifier's first choice, scored in batches of 200."""
    xs: list[np.ndarray] = []
    firsts: list[str] = []
    for start in range(0, len(texts), 200):
        chunk = list(texts[start : start + 200])
        parts = model.components(chunk)
        s = model.combine(parts)
        for r, text in enumerate(chunk):
            row = s[r]
            xs.append(row_features(row, text, temperature, {k: v[r] for k, v in parts.items()}, model.codes_))
            firsts.append(model.codes_[int(np.argmax(row))])
    return np.vstack(xs) if xs else np.zeros((0, len(FEATURES))), firsts


@dataclass
class ConfidenceCalibrator:
    """P(first choice correct at `level` digits) from FEATURES; hyper-parameters in the constructor."""

    c: float = 1.0  # inverse L2 strength of the logistic regression
    level: int = 6
    temperature: float = 0.07
    features: tuple[str, ...] = DEFAULT_FEATURES
    # learned
    coef_: list[float] = field(default_factory=list)
    intercept_: float = 0.0
    mean_: list[float] = field(default_factory=list)
    scale_: list[float] = field(default_factory=list)
    config_hash_: str = ""
    metrics_: dict[str, Any] = field(default_factory=dict)
    info_: dict[str, Any] = field(default_factory=dict)

    def _cols(self) -> list[int]:
        return [FEATURES.index(f) for f in self.features]

    def fit(self, x: np.ndarray, y: Sequence[bool] | np.ndarray, config: str = "") -> ConfidenceCalibrator:
        """Standardised logistic regression; a MONOTONE feature that comes out with a negative weight (it only
        repeats what the others say) is dropped and the rest refitted, so pulling ahead never lowers p."""
        from sklearn.linear_model import LogisticRegression

        target = np.asarray(y, dtype=int)
        if len(set(target.tolist())) < 2:
            raise ValueError("the calibrator needs right and wrong first choices to learn from")
        keep = list(self.features)
        while True:
            cols = [FEATURES.index(f) for f in keep]
            xk = x[:, cols]
            mean, scale = xk.mean(axis=0), xk.std(axis=0)
            scale[scale < 1e-9] = 1.0
            lr = LogisticRegression(C=self.c, max_iter=2000).fit((xk - mean) / scale, target)
            wrong = [f for f, w in zip(keep, lr.coef_[0], strict=True) if f in MONOTONE and w < 0]
            if not wrong:
                break
            keep.remove(min(wrong, key=lambda f: lr.coef_[0][keep.index(f)]))
        self.features = tuple(keep)
        self.coef_ = [round(float(w), 6) for w in lr.coef_[0]]
        self.intercept_ = round(float(lr.intercept_[0]), 6)
        self.mean_ = [round(float(m), 6) for m in mean]
        self.scale_ = [round(float(s), 6) for s in scale]
        self.config_hash_ = config
        p = self.predict_proba(x)
        self.metrics_ = {"train": reliability(p, target.astype(bool))}
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(first choice right) for each row of x (columns: all FEATURES)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = (x[:, self._cols()] - np.asarray(self.mean_)) / np.asarray(self.scale_) @ np.asarray(self.coef_)
        z = z + self.intercept_
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))))

    @property
    def version(self) -> str:
        """Format plus a digest of the coefficients: two fits with different numbers never share a version."""
        raw = json.dumps([self.features, self.coef_, self.intercept_, self.mean_, self.scale_, self.temperature])
        return f"{CALIBRATOR_FORMAT}:{hashlib.sha256(raw.encode()).hexdigest()[:8]}"

    def confidences(
        self, row: np.ndarray, text: str, parts: Mapping[str, np.ndarray], codes: Sequence[str]
    ) -> np.ndarray:
        """One confidence per leaf: p for the first choice, the rest of the mass shared by softmax share, each
        capped at p (sum <= 1, rank order kept)."""
        soft = _softmax(row, self.temperature)
        top = int(np.argmax(row))
        p1 = float(self.predict_proba(row_features(row, text, self.temperature, parts, codes, soft))[0])
        others = soft.copy()
        others[top] = 0.0
        rest = float(others.sum())  # summed, not 1 - p(top): no cancellation when the top takes nearly all
        share = others / rest if rest > 0 else others
        conf = np.minimum((1.0 - p1) * share, p1)
        conf[top] = p1
        return np.asarray(np.clip(conf, 0.0, 1.0))

    # ---------------------------------------------------------------------------------------------- persist
    def to_json(self) -> dict[str, Any]:
        return {
            "format": CALIBRATOR_FORMAT,
            "version": self.version,
            "params": {"C": self.c, "level": self.level, "temperature": self.temperature},
            "features": list(self.features),
            "coef": self.coef_,
            "intercept": self.intercept_,
            "mean": self.mean_,
            "scale": self.scale_,
            "config_hash": self.config_hash_,
            "metrics": self.metrics_,
            "info": self.info_,
        }

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path = SHIPPED) -> ConfidenceCalibrator:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        if d.get("format") != CALIBRATOR_FORMAT:
            raise ValueError(f"calibrator format {d.get('format')!r} is not {CALIBRATOR_FORMAT!r}")
        unknown = set(d["features"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"calibrator features unknown here: {sorted(unknown)}")
        cal = cls(c=d["params"]["C"], level=d["params"]["level"], temperature=d["params"]["temperature"])
        cal.features = tuple(d["features"])
        cal.coef_, cal.intercept_ = list(d["coef"]), float(d["intercept"])
        cal.mean_, cal.scale_ = list(d["mean"]), list(d["scale"])
        cal.config_hash_, cal.metrics_, cal.info_ = d["config_hash"], d.get("metrics", {}), d.get("info", {})
        if cal.version != d.get("version"):
            raise ValueError("calibrator coefficients do not match their recorded version")
        return cal


def reliability(conf: Sequence[float] | np.ndarray, ok: Sequence[bool] | np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error, Brier score and log loss of a confidence against right/wrong, with the bins."""
    c, o = np.asarray(conf, dtype=float), np.asarray(ok, dtype=float)
    total, table = 0.0, []
    for b in range(bins):
        m = (c > b / bins) & (c <= (b + 1) / bins) if b else (c <= 1 / bins)
        if m.any():
            total += m.sum() / len(c) * abs(c[m].mean() - o[m].mean())
            table.append([round(b / bins, 1), int(m.sum()), round(float(c[m].mean()), 3), round(float(o[m].mean()), 3)])
    cc = np.clip(c, 1e-6, 1 - 1e-6)
    return {
        "queries": len(c),
        "ece": round(float(total), 4),
        "brier": round(float(((c - o) ** 2).mean()), 4) if len(c) else 0.0,
        "log_loss": round(float(-(o * np.log(cc) + (1 - o) * np.log(1 - cc)).mean()), 4) if len(c) else 0.0,
        "mean_confidence": round(float(c.mean()), 4) if len(c) else 0.0,
        "top1_accuracy": round(float(o.mean()), 4) if len(c) else 0.0,
        "bins[lower,n,conf,acc]": table,
    }


def fit_for(
    model: TariffClassifier,
    texts: Sequence[str],
    codes: Sequence[str],
    level: int = 6,
    c: float = 1.0,
    features: tuple[str, ...] = DEFAULT_FEATURES,
    info: dict[str, Any] | None = None,
) -> ConfidenceCalibrator:
    """Fit a calibrator for `model` on labelled texts (never on a set that is reported as a test)."""
    x, firsts = feature_matrix(model, texts, model.temperature)
    y = [f[:level] == c[:level] for f, c in zip(firsts, codes, strict=True)]
    cal = ConfidenceCalibrator(c=c, level=level, temperature=model.temperature, features=features)
    cal.fit(x, y, config_hash(model))
    cal.info_ = (info or {}) | {
        "rows": len(texts),
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "classifier_params": model.params(),
    }
    return cal


# ------------------------------------------------------------------------------------- training data (shared/)
# The same rows as bench/tariff_classify.py builds (its `trader_style`, `calibration_cases`, `us_cases`,
# `tw_cases`); the bench checks that both agree.

Case = tuple[str, str]


def _synthetic(shared: Path) -> list[dict[str, str]]:
    p = shared / "hs" / "hsclassify_micro" / "training_data_synthetic_13786.csv"
    with p.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def micro_texts(shared: Path) -> set[str]:
    with (shared / "hs" / "hsclassify_micro" / "benchmark_cases.csv").open(encoding="utf-8") as fh:
        return {r["text"].lower().strip() for r in csv.DictReader(fh)}


def trader_train(shared: Path, valid: set[str]) -> list[Case]:
    """Trader-style synthetic rows whose HS code is not in the held-out fifth (sha256 % 5 != 0)."""
    exclude = micro_texts(shared)
    rows = [
        (r["text"], r["hs_code"].zfill(6))
        for r in _synthetic(shared)
        if r["hs_code"].zfill(6) in valid
        and not r["text"].lower().startswith(r["hs_desc"].lower()[:40])
        and r["text"].lower().strip() not in exclude
    ]
    return [r for r in rows if int(hashlib.sha256(r[1].encode()).hexdigest()[:8], 16) % 5 != 0]


def synthetic_calibration(shared: Path, valid: set[str], n: int = 400) -> list[Case]:
    rows = [(r["text"], r["hs_code"].zfill(6)) for r in _synthetic(shared) if r["hs_code"].zfill(6) in valid]
    random.Random(1).shuffle(rows)
    return rows[:n]


def taiwan_rows(shared: Path, valid: set[str]) -> list[Case]:
    """Taiwan Chinese 8-10 digit lines against their HS 6-digit code, shuffled (seed 0, as the bench's `tw_cases`)."""
    from smartcustoms.tariff.importers import read_taiwan

    sched = read_taiwan(shared / "hs" / TAIWAN_FOLDER).schedule
    rows: list[Case] = [
        (line.description_zh or "", line.code[:6])
        for line in sched.lines
        if line.is_leaf
        and line.digits >= 8
        and line.code[:6] in valid
        and line.description_zh
        and not line.description_zh.startswith("其他")
        and len(line.description_zh) >= 3
    ]
    random.Random(0).shuffle(rows)
    return rows


# Taiwan lines after the reported ones (first 300, or 600 with --n 600) and the tuning slice
NATIONAL_SLICE = (600, 900)


def training_cases(shared: Path, valid: set[str], trader_n: int = 2000) -> dict[str, list[Case]]:
    """The calibrator's training rows by source (none is reported as a test anywhere). The population is trader
    input: English trader-style rows and, as the only labelled Chinese, Taiwan tariff lines. US HTS sub-line texts
    ("Of cotton: Men's: ...") are tariff wording rather than trader wording and are left out: fitted with them the
    calibrator learnt that long legal-style English is usually wrong and lowered trader confidences too."""
    trader = trader_train(shared, valid)
    lo, hi = NATIONAL_SLICE
    return {
        "trader_style_train_rows": random.Random(4).sample(trader, min(trader_n, len(trader))),
        "synthetic_calibration_400": synthetic_calibration(shared, valid),
        f"tw_zh_desc[{lo}:{hi}]": taiwan_rows(shared, valid)[lo:hi],
    }


def build_default(shared: Path | None, zh: bool) -> TariffClassifier:
    """The served HS classifier (the service's weights), with the Taiwan Chinese line texts in its index or not
    (what `--schedule hs` serves once a Taiwan tariff is imported; here read from `shared/hs`)."""
    from smartcustoms.tariff.classifier import service

    folder = (shared / "hs" / TAIWAN_FOLDER) if zh and shared else None
    if zh and (folder is None or not folder.is_dir()):
        raise FileNotFoundError(f"Taiwan tariff folder not found: {folder}")
    model, _ = service.build(
        "hs", zh_folder=folder, embed_weight=service.embed_weight(), sub_weight=service.sub_weight()
    )
    if not zh and model.info_.get("zh_leaves"):
        raise RuntimeError("an imported Taiwan tariff put Chinese into the index; set SMARTCUSTOMS_TARIFF_ZH=0")
    return model


def fit_shipped(shared: Path, zh: bool, out: Path | None = None, trader_n: int = 2000) -> ConfidenceCalibrator:
    """Fit the calibrator of the default HS classifier (with or without the Taiwan Chinese texts) on
    `training_cases` and write it where the service looks for it."""
    model = build_default(shared, zh)
    sets = training_cases(shared, set(model.codes_), trader_n)
    texts = [t for rows in sets.values() for t, _ in rows]
    codes = [c for rows in sets.values() for _, c in rows]
    info = {
        "training_sets": {k: len(v) for k, v in sets.items()},
        "index": "HS 2022 + Taiwan Chinese line texts" if zh else "HS 2022 (no Chinese line texts)",
        "source": "shared/data/hs: hsclassify_micro synthetic file (trader-style rows of codes outside the "
        "held-out fifth; 400 calibration queries), Taiwan lines after the reported and tuning slices",
        "never_fitted_on": "benchmark_cases.csv (78), trader-style held-out codes, the reported US / Taiwan lines, "
        "bench/tariff_data/zh_trader_cases.csv",
    }
    cal = fit_for(model, texts, codes, info=info)
    cal.save(out or SHIPPED_BY_INDEX[zh])
    return cal


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fit the tariff classifier's confidence calibrators (shipped JSON).")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--index", choices=["both", "hs", "hs+zh"], default="both", help="which index to fit for")
    ap.add_argument("--trader-n", type=int, default=2000, help="trader-style training rows sampled")
    args = ap.parse_args(argv)
    for zh in {"both": (False, True), "hs": (False,), "hs+zh": (True,)}[args.index]:
        cal = fit_shipped(args.shared, zh, trader_n=args.trader_n)
        print(json.dumps({"index": cal.info_["index"], "version": cal.version, "train": cal.metrics_["train"]}))


if __name__ == "__main__":
    main()
