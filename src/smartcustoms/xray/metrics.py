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


def alarm_stats(
    predictions: Sequence[Sequence[Detection]],
    truths: Sequence[tuple[Sequence[Box], Sequence[str]]],
    threshold: float,
    threats: Sequence[str],
) -> dict[str, float]:
    """What an officer sees at one alarm threshold: false alarms on benign scans, threats caught.

    A false alarm is a threat detection at or above the threshold on a scan holding no threat; a threat
    scan is alarmed when any threat detection reaches the threshold; recall counts threat objects found
    (right class, IoU 0.5) by those alarms.
    """
    benign = alarms = benign_alarmed = threat_scans = flagged = found = total = 0
    for dets, (boxes, labels) in zip(predictions, truths, strict=True):
        hot = [d for d in dets if d.label in threats and d.score >= threshold]
        kept = [(b, x) for b, x in zip(boxes, labels, strict=True) if x in threats]
        if not kept:
            benign += 1
            alarms += len(hot)
            benign_alarmed += bool(hot)
            continue
        threat_scans += 1
        flagged += bool(hot)
        total += len(kept)
        found += sum(match(hot, [b for b, _ in kept], [x for _, x in kept]))
    return {
        "threshold": round(threshold, 3),
        "benign_scans": benign,
        "false_alarms_per_100_benign": round(100 * alarms / max(1, benign), 1),
        "benign_scans_alarmed_pct": round(100 * benign_alarmed / max(1, benign), 1),
        "threat_scans": threat_scans,
        "threat_scans_alarmed_pct": round(100 * flagged / max(1, threat_scans), 1),
        "threat_recall_at_alarm": round(found / max(1, total), 3),
    }


def choose_threshold(
    predictions: Sequence[Sequence[Detection]],
    truths: Sequence[tuple[Sequence[Box], Sequence[str]]],
    threats: Sequence[str],
    false_alarm_budget: float,
) -> dict[str, float]:
    """The lowest alarm threshold (0.05..0.95, step 0.01) whose false alarms per 100 benign scans stay
    within the budget: the most threats caught for the false alarms the service accepts."""
    best = alarm_stats(predictions, truths, 0.95, threats)
    for step in range(95, 4, -1):
        stats = alarm_stats(predictions, truths, step / 100, threats)
        if stats["false_alarms_per_100_benign"] > false_alarm_budget:
            break
        best = stats
    return best
