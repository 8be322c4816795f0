"""Detection metrics: average precision at IoU 0.5 (VOC all-point interpolation) and calibration error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smartcustoms.xray.model import Box, Detection


def match(dets: Sequence[Detection], boxes: Sequence[Box], labels: Sequence[str], iou: float = 0.5) -> list[bool]:
    """Whether each detection (in score order) hits a not-yet-matched ground-truth box of its class."""
    used = [False] * len(boxes)
    hits = []
    for d in sorted(dets, key=lambda d: -d.score):
        best, best_j = iou, -1
        for j, (b, label) in enumerate(zip(boxes, labels, strict=True)):
            if used[j] or label != d.label:
                continue
            o = d.box.iou(b)
            if o >= best:
                best, best_j = o, j
        if best_j >= 0:
            used[best_j] = True
        hits.append(best_j >= 0)
    return hits


def average_precision(
    predictions: Sequence[Sequence[Detection]],
    truths: Sequence[tuple[Sequence[Box], Sequence[str]]],
    label: str,
    iou: float = 0.5,
) -> float | None:
    """AP of one class over a set of scans; None when the class never occurs in the ground truth."""
    scored: list[tuple[float, bool]] = []
    n_true = 0
    for dets, (boxes, labels) in zip(predictions, truths, strict=True):
        mine = [d for d in dets if d.label == label]
        n_true += sum(1 for x in labels if x == label)
        ordered = sorted(mine, key=lambda d: -d.score)
        scored.extend(zip((d.score for d in ordered), match(ordered, boxes, labels, iou), strict=True))
    if n_true == 0:
        return None
    if not scored:
        return 0.0
    scored.sort(key=lambda t: -t[0])
    tp = np.cumsum([1.0 if h else 0.0 for _, h in scored])
    fp = np.cumsum([0.0 if h else 1.0 for _, h in scored])
    recall = tp / n_true
    precision = tp / np.maximum(tp + fp, 1e-9)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def expected_calibration_error(scores: Sequence[float], hits: Sequence[bool], bins: int = 10) -> float:
    """Mean |confidence − accuracy| over equal-width bins, weighted by their share of detections."""
    if not scores:
        return 0.0
    s = np.asarray(scores, dtype=float)
    h = np.asarray(hits, dtype=float)
    idx = np.minimum((s * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(s[m].mean() - h[m].mean())
    return float(err)
