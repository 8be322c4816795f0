"""Which HS chapters a manifest's goods description points to, through the tariff classifier.

Computed once when a manifest is filed and stored with the line, so matching never runs the classifier.
Manifest descriptions are often packing talk ("STC 20 pallets", "FAK", "general cargo"); that noise is
stripped first and a description with nothing left is not judged. Results are cached per folded text:
real manifests repeat the same descriptions many times.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

Chapters = tuple[tuple[str, float], ...]
TOP = 8
CHUNK = 512
_CACHE_MAX = 50_000
_cache: OrderedDict[str, Chapters] = OrderedDict()
_lock = threading.Lock()

_NOISE = re.compile(
    r"\b(said\s+to\s+contain|shipper'?s?\s+load(,?\s+stow)?\s+and\s+count|slac|stc|s\.t\.c\.?|"
    r"pallets?|plts?|cartons?|ctns?|packages?|pkgs?|pcs|pieces|boxes|bags|drums|cases|crates|bundles|rolls|"
    r"containers?|x\s*20'?|x\s*40'?|\d+\s*x|hc|teu|feu|freight\s+all\s+kinds|fak|general\s+cargo|"
    r"consolidated(\s+cargo)?|consol|various|sundry|sundries|goods|cargo|merchandise|as\s+per\s+invoice|"
    r"personal\s+effects|household\s+goods|samples?|n\.?o\.?s\.?|nos)\b",
    re.IGNORECASE,
)


def clean(description: str) -> str:
    """The description without packing words, counts and catch-all phrases."""
    text = _NOISE.sub(" ", description)
    text = re.sub(r"[\d.,/#:;()\[\]-]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _classifier_chapters(texts: Sequence[str]) -> list[Chapters]:
    from smartcustoms.tariff.classifier.service import get_classifier

    model = get_classifier("hs")
    chapters = np.array([c[:2] for c in model.codes_])
    perm = np.argsort(chapters, kind="stable")
    sorted_chapters = chapters[perm]
    starts = np.flatnonzero(np.r_[True, sorted_chapters[1:] != sorted_chapters[:-1]])
    names = sorted_chapters[starts]
    out: list[Chapters] = []
    for start in range(0, len(texts), CHUNK):
        scores = model.scores(list(texts[start : start + CHUNK]))
        best = np.maximum.reduceat(scores[:, perm], starts, axis=1)
        order = np.argsort(-best, axis=1)[:, :TOP]
        for r in range(scores.shape[0]):
            out.append(tuple((str(names[j]), round(float(best[r, j]), 4)) for j in order[r] if best[r, j] > 0))
    return out


classify: Callable[[Sequence[str]], list[Chapters]] = _classifier_chapters
"""The classifier behind the chapters (tests may swap in a small one)."""


def chapters_of(descriptions: Sequence[str]) -> list[Chapters]:
    """Best chapters with scores for each description (empty when nothing meaningful is left)."""
    keys = [clean(d).casefold() for d in descriptions]
    with _lock:
        todo = sorted({k for k in keys if k and k not in _cache})
    if todo:
        found = classify(todo)
        with _lock:
            for k, v in zip(todo, found, strict=True):
                _cache[k] = v
            while len(_cache) > _CACHE_MAX:
                _cache.popitem(last=False)
    with _lock:
        return [_cache.get(k, ()) if k else () for k in keys]


def forget() -> None:
    with _lock:
        _cache.clear()
