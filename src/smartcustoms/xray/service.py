"""Use cases: upload a scan to a declaration (detect, explain, judge declared versus seen, raise a C3
finding on conflict), review detections, export reviewed scans as training data, retrain."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcustoms.clearance import service as clearance
from smartcustoms.clearance.checks import Finding
from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.errors import Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.xray import imaging
from smartcustoms.xray.datasets import Sample, write_coco
from smartcustoms.xray.detector import DEFAULT_ALARM, SHIPPED, XrayDetector
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.model import (
    DEFAULT_RULES,
    Box,
    ConsistencyRule,
    Detection,
    conflicts,
    items_from_payload,
    rules_from_config,
)
from smartcustoms.xray.store import DetectionRow, ScanRow

KEEP_SCORE = 0.2
"""Detections below this calibrated confidence (or the model's alarm threshold, if lower) are not stored
(nor shown): mostly noise."""
VERDICTS = ("confirmed", "rejected")

_model_lock = threading.Lock()
_model: tuple[tuple[str, float], XrayDetector] | None = None


def model_dir() -> Path:
    """The model in use: SMARTCUSTOMS_XRAY_MODEL, else the registry's active one, else the shipped one."""
    from smartcustoms.xray.registry import ModelRegistry

    given = os.environ.get("SMARTCUSTOMS_XRAY_MODEL")
    if given:
        return Path(given)
    return ModelRegistry().active_dir() or SHIPPED


def detector() -> XrayDetector:
    """The loaded model, reloaded when its directory or model.json changes (a retrained model goes live)."""
    global _model
    directory = model_dir()
    card = directory / "model.json"
    key = (str(directory), card.stat().st_mtime if card.exists() else 0.0)  # cheap: one stat per scan
    with _model_lock:
        if _model is None or _model[0] != key:
            _model = (key, XrayDetector.load(directory))
        return _model[1]


def forget_model() -> None:
    global _model, _threshold
    with _model_lock:
        _model = None
        _threshold = None


_threshold: tuple[tuple[str, float], float] | None = None


def alarm_threshold() -> float:
    """The operating point of the model in use (from its card, without loading the network): the calibrated
    confidence at which a threat detection raises a conflict unless a rule sets its own."""
    global _threshold
    directory = model_dir()
    card = directory / "model.json"
    key = (str(directory), card.stat().st_mtime if card.exists() else 0.0)
    with _model_lock:
        if _threshold is not None and _threshold[0] == key:
            return _threshold[1]
    try:
        point = json.loads(card.read_text()).get("operating_point") or {}
        value = float(point.get("alarm_threshold", DEFAULT_ALARM))
    except (OSError, ValueError, AttributeError, TypeError):
        value = DEFAULT_ALARM
    with _model_lock:
        _threshold = (key, value)
    return value


def consistency_rules() -> tuple[ConsistencyRule, ...]:
    """Class → consistent tariff chapters: the defaults, overridden by the JSON file SMARTCUSTOMS_XRAY_RULES."""
    path = os.environ.get("SMARTCUSTOMS_XRAY_RULES")
    if not path:
        return DEFAULT_RULES
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise XrayError(
            Problem("bad_rules", ("rules", path), t("Cannot read the rules file ({error})", error=str(exc)))
        ) from None
    if not isinstance(data, dict):
        raise XrayError(Problem("bad_rules", ("rules", path), t("The rules file is a JSON object")))
    return rules_from_config(data)


def _customs(who: Principal) -> None:
    if not who.is_customs:
        raise Forbidden(Problem("forbidden_role", (), t("Only customs staff see and review X-ray scans")))


@dataclass(frozen=True)
class Uploaded:
    scan: ScanRow
    detections: list[DetectionRow]
    findings: list[Finding]
    lane: str | None
    status: str


def upload_scan(session: Session, who: Principal, reference: str, data: bytes, filename: str) -> Uploaded:
    """Decode, detect and explain a scan of a declaration's goods; raise a C3 finding when what is seen
    contradicts what is declared. One transaction: a failing scan leaves nothing behind."""
    _customs(who)
    row = clearance.get_row(session, who, reference)
    scan = imaging.decode(data, name=filename)
    model = detector()
    started = time.perf_counter()
    dets, heat = model.explain(scan, min_score=min(KEEP_SCORE, model.alarm_threshold_))
    elapsed = (time.perf_counter() - started) * 1000
    found = conflicts(dets, items_from_payload(row.payload), consistency_rules(), model.alarm_threshold_)
    at = datetime.now(UTC)
    scan_row = ScanRow(
        declaration_ref=reference,
        filename=filename[:255],
        media_type=scan.media_type,
        pixel_mode=scan.mode[:16],
        width=scan.width,
        height=scan.height,
        sha256=hashlib.sha256(data).hexdigest(),
        original=data,
        display=imaging.to_jpeg(scan.rgb),
        heatmap=imaging.heat_png(heat),
        model_version=model.version_,
        inference_ms=round(elapsed, 1),
        conflicts=[{"code": c.code, "message": c.message, **c.detail} for c in found],
        uploaded_by=who.username,
        uploaded_at=at,
    )
    session.add(scan_row)
    session.flush()
    det_rows = [
        DetectionRow(
            scan_id=scan_row.id,
            label=d.label,
            score=round(d.score, 4),
            x1=d.box.x1,
            y1=d.box.y1,
            x2=d.box.x2,
            y2=d.box.y2,
            model_version=model.version_,
        )
        for d in dets
    ]
    session.add_all(det_rows)
    session.flush()
    findings = [
        Finding(
            source="xray",
            code=c.code,
            message=c.message,
            path=("scans", scan_row.id),
            lane=Lane.C3,
            score=round(c.detection.score, 4),
            version=model.version_,
            detail={"scan_id": scan_row.id, **c.detail},
        )
        for c in found
    ]
    audit.record(
        session,
        who,
        "xray_scan",
        "declaration",
        reference,
        detail={"scan_id": scan_row.id, "detections": len(dets), "conflicts": len(found), "model": model.version_},
    )
    if findings:
        row = clearance.raise_findings(session, reference, findings, who=who)
    return Uploaded(scan_row, det_rows, findings, row.lane, row.status)


def get_scan(session: Session, who: Principal, scan_id: int) -> tuple[ScanRow, list[DetectionRow]]:
    _customs(who)
    scan = session.get(ScanRow, scan_id)
    if scan is None:
        raise NotFound(Problem("unknown_scan", ("scan_id",), t("No scan {scan_id}", scan_id=scan_id)))
    clearance.get_row(session, who, scan.declaration_ref)  # still visible to this caller
    dets = list(session.scalars(select(DetectionRow).where(DetectionRow.scan_id == scan_id).order_by(DetectionRow.id)))
    return scan, dets


def scans_of(session: Session, who: Principal, reference: str) -> list[ScanRow]:
    _customs(who)
    clearance.get_row(session, who, reference)
    return list(session.scalars(select(ScanRow).where(ScanRow.declaration_ref == reference).order_by(ScanRow.id)))


def review(session: Session, who: Principal, detection_id: int, verdict: str, note: str | None = None) -> DetectionRow:
    """The officer confirms or rejects one detection; confirmed ones become training data."""
    _customs(who)
    if verdict not in VERDICTS:
        raise XrayError(
            Problem("bad_verdict", ("verdict",), t("Verdict is one of {verdicts}", verdicts=", ".join(VERDICTS)))
        )
    det = session.get(DetectionRow, detection_id)
    if det is None:
        raise NotFound(
            Problem("unknown_detection", ("detection_id",), t("No detection {detection_id}", detection_id=detection_id))
        )
    scan = session.get(ScanRow, det.scan_id)
    assert scan is not None
    clearance.get_row(session, who, scan.declaration_ref)
    det.verdict, det.reviewed_by, det.reviewed_at, det.note = verdict, who.username, datetime.now(UTC), note
    audit.record(
        session,
        who,
        f"xray_{verdict}",
        "xray_detection",
        det.id,
        detail={"scan_id": det.scan_id, "label": det.label, "score": det.score, "model": det.model_version},
        note=note,
    )
    return det


def add_box(
    session: Session,
    who: Principal,
    scan_id: int,
    label: str,
    box: Sequence[float],
    note: str | None = None,
) -> tuple[DetectionRow, list[Finding]]:
    """An officer draws a box the detector missed: it is stored confirmed (ground truth for the next model,
    like a confirmed detection) and judged against the declaration like one, at full confidence."""
    _customs(who)
    scan = session.get(ScanRow, scan_id)
    if scan is None:
        raise NotFound(Problem("unknown_scan", ("scan_id",), t("No scan {scan_id}", scan_id=scan_id)))
    row = clearance.get_row(session, who, scan.declaration_ref)
    known = {r.label for r in consistency_rules()}
    problems = []
    if label not in known:
        problems.append(
            Problem("unknown_class", ("label",), t("Class is one of {classes}", classes=", ".join(sorted(known))))
        )
    x1, y1, x2, y2 = (float(v) for v in box) if len(box) == 4 else (0.0, 0.0, 0.0, 0.0)
    if len(box) != 4:
        problems.append(Problem("bad_box", ("box",), t("A box is [x1, y1, x2, y2] in scan pixels")))
    else:
        if not (0 <= x1 < x2 <= scan.width and 0 <= y1 < y2 <= scan.height):
            problems.append(
                Problem(
                    "bad_box",
                    ("box",),
                    t(
                        "The box must lie inside the {width}×{height} scan, x1 < x2, y1 < y2",
                        width=scan.width,
                        height=scan.height,
                    ),
                )
            )
        elif x2 - x1 < 4 or y2 - y1 < 4:
            problems.append(Problem("bad_box", ("box",), t("The box is smaller than 4×4 pixels")))
    if problems:
        raise XrayError(problems)
    at = datetime.now(UTC)
    det = DetectionRow(
        scan_id=scan.id,
        label=label,
        score=1.0,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        model_version=scan.model_version,
        verdict="confirmed",
        reviewed_by=who.username,
        reviewed_at=at,
        note=note,
        origin="officer",
    )
    session.add(det)
    session.flush()
    audit.record(
        session,
        who,
        "xray_box_added",
        "xray_detection",
        det.id,
        detail={"scan_id": scan.id, "label": label, "box": [x1, y1, x2, y2], "missed_by": scan.model_version},
        note=note,
    )
    seen = Detection(label, 1.0, Box(x1, y1, x2, y2))
    found = conflicts([seen], items_from_payload(row.payload), consistency_rules(), alarm_threshold())
    findings = []
    if found:
        scan.conflicts = [*(scan.conflicts or []), *({"code": c.code, "message": c.message, **c.detail} for c in found)]
        findings = [
            Finding(
                source="xray",
                code=c.code,
                message=c.message,
                path=("scans", scan.id),
                lane=Lane.C3,
                score=1.0,
                version=scan.model_version,
                detail={"scan_id": scan.id, "detection_id": det.id, "origin": "officer", **c.detail},
            )
            for c in found
        ]
        clearance.raise_findings(session, scan.declaration_ref, findings, who=who)
    return det, findings


def reviewed_samples(session: Session, folder: Path) -> list[Sample]:
    """Scans whose every detection was reviewed, as samples: confirmed boxes (officers' own boxes for what
    the detector missed included) are the ground truth; a scan with only rejections is a clean negative. Images are written (decoded to PNG) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for scan in session.scalars(select(ScanRow).order_by(ScanRow.id)):
        dets = list(session.scalars(select(DetectionRow).where(DetectionRow.scan_id == scan.id)))
        if not dets or any(d.verdict is None for d in dets):
            continue
        decoded = imaging.decode(scan.original, name=scan.filename)
        path = folder / f"scan_{scan.id:08d}.png"
        path.write_bytes(imaging.to_png(decoded.rgb))
        f = 1.0 / decoded.scale
        kept = [d for d in dets if d.verdict == "confirmed"]
        samples.append(
            Sample(
                path,
                tuple(Box(d.x1 * f, d.y1 * f, d.x2 * f, d.y2 * f) for d in kept),
                tuple(d.label for d in kept),
                meta={"width": decoded.rgb.shape[1], "height": decoded.rgb.shape[0]},
            )
        )
    return samples


def export_feedback(session: Session, out: Path) -> tuple[Path, int]:
    """Reviewed scans as a COCO folder `xray train --format coco` reads; returns its file and scan count."""
    with tempfile.TemporaryDirectory() as tmp:
        samples = reviewed_samples(session, Path(tmp))
        path = write_coco(samples, out, description="Officer-reviewed scans exported from Smart Customs")
    return path, len(samples)


def scan_view(scan: ScanRow, dets: Sequence[DetectionRow]) -> dict[str, Any]:
    """What the API and the pages show of a scan."""
    return {
        "id": scan.id,
        "declaration_ref": scan.declaration_ref,
        "filename": scan.filename,
        "media_type": scan.media_type,
        "pixel_mode": scan.pixel_mode,
        "width": scan.width,
        "height": scan.height,
        "sha256": scan.sha256,
        "model_version": scan.model_version,
        "inference_ms": scan.inference_ms,
        "uploaded_by": scan.uploaded_by,
        "uploaded_at": scan.uploaded_at.isoformat() if scan.uploaded_at else None,
        "conflicts": scan.conflicts or [],
        "detections": [
            {
                "id": d.id,
                "label": d.label,
                "score": d.score,
                "box": [round(d.x1, 1), round(d.y1, 1), round(d.x2, 1), round(d.y2, 1)],
                "model_version": d.model_version,
                "verdict": d.verdict,
                "reviewed_by": d.reviewed_by,
                "note": d.note,
                "origin": d.origin,
            }
            for d in dets
        ],
    }
