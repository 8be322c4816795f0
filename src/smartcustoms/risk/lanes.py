"""Selection policy: lanes from a score, an inspection budget, a random exploration share and AEO relief.

Pure functions, no I/O. The budget is turned into score thresholds on a time-later slice of the training
data at fit time, so a single declaration and a batch get the same lane for the same score.
Exploration picks declarations that would be released (C1) at random, reproducibly: the draw is a hash of
the declaration id and a seed, so re-scoring a file gives the same selection.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

LANES = ("C1", "C2", "C3")


@dataclass(frozen=True)
class LanePolicy:
    """Thresholds on the calibrated probability; shares are fractions of all declarations."""

    budget: float = 0.10  # share inspected (C2 + C3) by score
    c3_share: float = 0.03  # share sent to physical inspection (C3) by score
    exploration: float = 0.01  # extra share of would-be-C1 declarations sent to C2 at random
    aeo_relief: float = 0.5  # AEO traders' score is multiplied by this before thresholds
    seed: int = 20240601
    c2_threshold: float = 1.0  # set at fit time from the budget
    c3_threshold: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_thresholds(self, scores: np.ndarray) -> LanePolicy:
        """Thresholds so that `budget` / `c3_share` of `scores` (a time-later slice) are selected."""
        s = np.sort(np.asarray(scores, dtype="float64"))
        if len(s) == 0:
            return self
        c2 = float(np.quantile(s, 1 - self.budget)) if self.budget > 0 else float("inf")
        c3 = float(np.quantile(s, 1 - self.c3_share)) if self.c3_share > 0 else float("inf")
        return LanePolicy(**{**self.as_dict(), "c2_threshold": c2, "c3_threshold": max(c2, c3)})


def exploration_draw(declaration_ids: list[str], seed: int) -> np.ndarray:
    """Uniform [0, 1) per declaration id, reproducible for a given seed (vectorised keyed hash)."""
    if not declaration_ids:
        return np.empty(0, dtype="float64")
    key = hashlib.blake2b(str(seed).encode(), digest_size=8).hexdigest()  # 16 characters
    h = pd.util.hash_array(np.asarray(declaration_ids, dtype=object), hash_key=key, categorize=False)
    return (h >> np.uint64(11)).astype("float64") / float(2**53)


def assign_lanes(
    scores: np.ndarray, aeo: np.ndarray, draws: np.ndarray, policy: LanePolicy
) -> tuple[np.ndarray, np.ndarray]:
    """Lane per declaration and whether it was chosen by exploration."""
    eff = np.where(aeo.astype(bool), scores * policy.aeo_relief, scores)
    lanes = np.full(len(scores), "C1", dtype=object)
    lanes[eff >= policy.c2_threshold] = "C2"
    lanes[eff >= policy.c3_threshold] = "C3"
    explored = (lanes == "C1") & (draws < policy.exploration)
    lanes[explored] = "C2"
    return lanes, explored


def top_k_selection(scores: np.ndarray, share: float, *, exploration: float = 0.0, seed: int = 0) -> np.ndarray:
    """Boolean mask: the top `share` by score (count k), part of it replaced by random picks.

    Used by the budget-driven batch selection (online simulation, backtests), where a whole week is
    ranked at once.
    """
    n = len(scores)
    k = round(share * n)
    k_explore = round(exploration * n)
    k_top = max(0, k - k_explore)
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:k_top]] = True
    rest = np.flatnonzero(~mask)
    if k_explore and len(rest):
        rng = np.random.default_rng(seed)
        mask[rng.choice(rest, size=min(k_explore, len(rest)), replace=False)] = True
    return mask
