"""A learned reranker over the retrieval candidates (LightGBM LambdaRank).

Retrieval (`TariffClassifier`) adds its score parts with hand-set weights; the reranker learns from labelled
descriptions how much each part is worth in context: the own-text word and character cosines, the parents'
cosine, the trader-word match, the candidate's rank and gap to the first, how much probability its heading
and chapter hold among the candidates (heading agreement), the chapter's prior in the training labels, how
much of the query the line covers, whether it is an "Other" (residual) line, and optionally the embedding
similarity. It reorders the first `pool` candidates only, so it can never find what retrieval missed.

Same shape as the other learned models: hyper-parameters in the constructor, `fit`, `predict`/`score`,
`save(dir)`/`load(dir)` writing params, validation metrics, the training data window and a SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from smartcustoms.tariff.classifier.text import tokens

RERANKER_VERSION = "tariff-reranker/1"
FEATURES = (
    "score",
    "own_word",
    "own_char",
    "parents",
    "terms",
    "embed",
    "rank",
    "gap_to_first",
    "confidence",
    "heading_mass",
    "chapter_mass",
    "chapter_prior",
    "query_tokens",
    "coverage",
    "other_line",
    "heading_leaves",
)


@dataclass
class CandidateReranker:
    """Reorders the first `pool` retrieval candidates of a query with a LambdaRank model."""

    pool: int = 30
    n_estimators: int = 100
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 50
    use_priors: bool = False  # chapter prior and heading size: they let the model memorise the training labels
    temperature: float = 1.0  # softmax over the reranker's scores; fitted by `calibrate`
    # learned
    chapter_prior_: dict[str, float] = field(default_factory=dict, repr=False)
    metrics_: dict[str, Any] = field(default_factory=dict, repr=False)
    info_: dict[str, Any] = field(default_factory=dict, repr=False)
    booster_: Any = field(default=None, repr=False)

    def params(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "use_priors": self.use_priors,
            "temperature": self.temperature,
        }

    # ---------------------------------------------------------------------------------------- features
    def features(self, model: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(candidate leaf indices [n, pool], features [n, pool, len(FEATURES)]) for each text."""
        parts = model.components(texts)
        total = model.combine(parts)
        n, k = len(texts), min(self.pool, total.shape[1])
        idx = np.argpartition(-total, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(total, idx, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        feats = np.zeros((n, k, len(FEATURES)), dtype=np.float32)
        codes = model.codes_
        leaves_per_heading = _heading_sizes(codes)
        for r in range(n):
            cols = idx[r]
            sc = total[r, cols]
            z = (sc - sc[0]) / max(model.temperature, 1e-6)
            conf = np.exp(z)
            conf /= conf.sum()
            heads = [codes[j][:4] for j in cols]
            chaps = [codes[j][:2] for j in cols]
            head_mass: dict[str, float] = {}
            chap_mass: dict[str, float] = {}
            for h, c, p in zip(heads, chaps, conf, strict=True):
                head_mass[h] = head_mass.get(h, 0.0) + float(p)
                chap_mass[c] = chap_mass.get(c, 0.0) + float(p)
            q = set(tokens(texts[r]))
            f = feats[r]
            f[:, 0] = sc
            f[:, 1] = parts["own_word"][r, cols]
            f[:, 2] = parts["own_char"][r, cols]
            f[:, 3] = parts["parents"][r, cols]
            f[:, 4] = parts["terms"][r, cols]
            if "embed" in parts:
                f[:, 5] = parts["embed"][r, cols]
            f[:, 6] = np.arange(k)
            f[:, 7] = sc - sc[0]
            f[:, 8] = conf
            f[:, 9] = [head_mass[h] for h in heads]
            f[:, 10] = [chap_mass[c] for c in chaps]
            f[:, 11] = [self.chapter_prior_.get(c, self.chapter_prior_.get("", 0.0)) for c in chaps]
            f[:, 12] = len(q)
            for i, j in enumerate(cols):
                doc = model._docs[j]
                words = set(tokens(doc.own + " " + doc.parents))
                f[i, 13] = len(q & words) / max(len(q), 1)
                f[i, 14] = float(doc.own.lower().startswith("other"))
                f[i, 15] = leaves_per_heading.get(codes[j][:4], 1)
        if not self.use_priors:
            feats[:, :, 11] = 0.0
            feats[:, :, 15] = 0.0
        return idx, feats

    # ---------------------------------------------------------------------------------------- fit
    def fit(
        self,
        model: Any,
        texts: Sequence[str],
        codes: Sequence[str],
        valid: tuple[Sequence[str], Sequence[str]] | None = None,
        data_window: dict[str, Any] | None = None,
    ) -> CandidateReranker:
        """Learn from (description, true code) pairs; queries whose code retrieval missed teach nothing and are
        left out (counted in `info_`). `valid` (a split the training never saw) gives the recorded metrics."""
        import lightgbm as lgb

        started = time.perf_counter()
        n_codes = len(codes)
        counts: dict[str, int] = {}
        for c in codes:
            counts[c[:2]] = counts.get(c[:2], 0) + 1
        self.chapter_prior_ = {ch: math.log((v + 1) / (n_codes + 100)) for ch, v in counts.items()}
        self.chapter_prior_[""] = math.log(1 / (n_codes + 100))
        x, y, groups, found = self._training_rows(model, texts, codes)
        ranker = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            label_gain=[0, 1, 3],
            n_jobs=2,
            verbose=-1,
        )
        ranker.fit(x, y, group=groups)
        self.booster_ = ranker.booster_
        self.info_ = {
            "queries": len(texts),
            "queries_with_code_in_pool": found,
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "fit_seconds": round(time.perf_counter() - started, 2),
            "data_window": data_window or {},
        }
        if valid is not None and len(valid[0]):
            self.calibrate(model, valid[0], valid[1])
            self.metrics_["validation"] = self.evaluate(model, valid[0], valid[1])
        return self

    def _training_rows(
        self, model: Any, texts: Sequence[str], codes: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, list[int], int]:
        xs, ys, groups, found = [], [], [], 0
        for lo in range(0, len(texts), 256):
            idx, feats = self.features(model, texts[lo : lo + 256])
            for r, code in enumerate(codes[lo : lo + 256]):
                cand = [model.codes_[j] for j in idx[r]]
                label = np.array([2 if c == code else (1 if c[:4] == code[:4] else 0) for c in cand])
                if 2 not in label:
                    continue
                found += 1
                xs.append(feats[r])
                ys.append(label)
                groups.append(len(cand))
        return np.concatenate(xs), np.concatenate(ys), groups, found

    # ---------------------------------------------------------------------------------------- predict
    def rerank(self, model: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(leaf indices [n, pool] best first, confidences [n, pool]) after reranking."""
        idx, feats = self.features(model, texts)
        n, k, d = feats.shape
        s = np.asarray(self.booster_.predict(feats.reshape(n * k, d)), dtype=np.float64).reshape(n, k)
        order = np.argsort(-s, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        s = np.take_along_axis(s, order, axis=1)
        z = (s - s[:, :1]) / max(self.temperature, 1e-6)
        p = np.exp(z)
        return idx, p / p.sum(axis=1, keepdims=True)

    def predict(self, model: Any, texts: Sequence[str], top: int = 5) -> list[list[tuple[str, float]]]:
        out: list[list[tuple[str, float]]] = []
        for lo in range(0, len(texts), 256):
            idx, p = self.rerank(model, texts[lo : lo + 256])
            for r in range(len(idx)):
                out.append([(model.codes_[j], float(p[r, i])) for i, j in enumerate(idx[r][:top])])
        return out

    def evaluate(self, model: Any, texts: Sequence[str], codes: Sequence[str]) -> dict[str, float]:
        got = self.predict(model, texts, top=5)
        n = max(len(codes), 1)
        return {
            "queries": len(codes),
            "top1@6": round(sum(g[0][0] == c for g, c in zip(got, codes, strict=True)) / n, 4),
            "top5@6": round(sum(any(x == c for x, _ in g) for g, c in zip(got, codes, strict=True)) / n, 4),
            "top1@4": round(sum(g[0][0][:4] == c[:4] for g, c in zip(got, codes, strict=True)) / n, 4),
        }

    def calibrate(self, model: Any, texts: Sequence[str], codes: Sequence[str]) -> float:
        """Softmax temperature over the reranker's scores minimising the held-out negative log-likelihood."""
        idx, feats = self.features(model, texts)
        n, k, d = feats.shape
        s = np.asarray(self.booster_.predict(feats.reshape(n * k, d)), dtype=np.float64).reshape(n, k)
        truth = [[i for i, j in enumerate(idx[r]) if model.codes_[j] == codes[r]] for r in range(n)]
        best_t, best = self.temperature, math.inf
        for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0):
            z = (s - s.max(axis=1, keepdims=True)) / t
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            nll = -sum(math.log(max(float(p[r, cols].sum()) if cols else 0.0, 1e-6)) for r, cols in enumerate(truth))
            if nll < best:
                best_t, best = t, nll
        self.temperature = best_t
        self.metrics_["calibration"] = {"queries": n, "temperature": best_t, "nll": round(best / max(n, 1), 4)}
        return best_t

    # ---------------------------------------------------------------------------------------- persist
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        text = self.booster_.model_to_string()
        (folder / "booster.txt").write_text(text, encoding="utf-8")
        meta = {
            "version": RERANKER_VERSION,
            "features": list(FEATURES),
            "params": self.params(),
            "chapter_prior": self.chapter_prior_,
            "metrics": self.metrics_,
            "info": self.info_,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> CandidateReranker:
        import lightgbm as lgb

        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("version") != RERANKER_VERSION or meta.get("features") != list(FEATURES):
            raise ValueError(f"reranker {meta.get('version')!r} does not match {RERANKER_VERSION!r}")
        text = (folder / "booster.txt").read_text(encoding="utf-8")
        if hashlib.sha256(text.encode()).hexdigest() != meta.get("sha256"):
            raise ValueError("reranker file does not match its recorded hash")
        r = cls(**meta["params"])
        r.booster_ = lgb.Booster(model_str=text)
        r.chapter_prior_ = meta["chapter_prior"]
        r.metrics_, r.info_ = meta.get("metrics", {}), meta.get("info", {})
        return r


def _heading_sizes(codes: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in codes:
        out[c[:4]] = out.get(c[:4], 0) + 1
    return out
