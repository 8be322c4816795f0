"""`/xray/...`: upload scans to a declaration, see boxes and heat map, confirm or reject detections."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.web import require
from smartcustoms.xray import pages as _pages  # noqa: F401  (registers the console panel and pages)
from smartcustoms.xray import service
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.imaging import MAX_BYTES

router = APIRouter(prefix="/xray", tags=["xray"])
CUSTOMS = (Role.OFFICER, Role.ANALYST, Role.ADMIN)


class ReviewIn(BaseModel):
    verdict: Literal["confirmed", "rejected"]
    note: str | None = Field(default=None, max_length=2000)


async def read_upload(file: UploadFile) -> bytes:
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise XrayError(
            Problem(
                "file_too_large", ("file",), t("The file is over {megabytes} MB", megabytes=MAX_BYTES // (1024 * 1024))
            )
        )
    return data


@router.post("/declarations/{reference}/scans", status_code=201)
async def upload(
    reference: str, file: UploadFile = File(...), who: Principal = Depends(require(*CUSTOMS))
) -> dict[str, Any]:
    """Attach a scan (PNG, JPEG or TIFF, 8-bit colour or 8/16-bit grey) to a declaration and analyse it."""
    data = await read_upload(file)
    with unit_of_work() as session:
        up = service.upload_scan(session, who, reference, data, file.filename or "scan")
        view = service.scan_view(up.scan, up.detections)
        return {
            **view,
            "findings": [f.as_dict() for f in up.findings],
            "declaration": {"reference": reference, "lane": up.lane, "status": up.status},
        }


@router.get("/declarations/{reference}/scans")
def list_scans(reference: str, who: Principal = Depends(require(*CUSTOMS))) -> dict[str, Any]:
    with unit_of_work() as session:
        out = []
        for scan in service.scans_of(session, who, reference):
            _, dets = service.get_scan(session, who, scan.id)
            out.append(service.scan_view(scan, dets))
        return {"reference": reference, "scans": out}


@router.get("/scans/{scan_id}")
def get_scan(scan_id: int, who: Principal = Depends(require(*CUSTOMS))) -> dict[str, Any]:
    with unit_of_work() as session:
        scan, dets = service.get_scan(session, who, scan_id)
        return service.scan_view(scan, dets)


@router.get("/scans/{scan_id}/image", response_class=Response)
def scan_image(scan_id: int, who: Principal = Depends(require(*CUSTOMS))) -> Response:
    with unit_of_work() as session:
        scan, _ = service.get_scan(session, who, scan_id)
        return Response(scan.display, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/scans/{scan_id}/heatmap", response_class=Response)
def scan_heatmap(scan_id: int, who: Principal = Depends(require(*CUSTOMS))) -> Response:
    with unit_of_work() as session:
        scan, _ = service.get_scan(session, who, scan_id)
        return Response(scan.heatmap, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/detections/{detection_id}/review")
def review(detection_id: int, body: ReviewIn, who: Principal = Depends(require(*CUSTOMS))) -> dict[str, Any]:
    with unit_of_work() as session:
        det = service.review(session, who, detection_id, body.verdict, body.note)
        return {
            "id": det.id,
            "scan_id": det.scan_id,
            "label": det.label,
            "verdict": det.verdict,
            "reviewed_by": det.reviewed_by,
        }


class BoxIn(BaseModel):
    label: str = Field(max_length=32)
    box: list[float] = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in original scan pixels")
    note: str | None = Field(default=None, max_length=2000)


@router.post("/scans/{scan_id}/boxes", status_code=201)
def add_box(scan_id: int, body: BoxIn, who: Principal = Depends(require(*CUSTOMS))) -> dict[str, Any]:
    """Draw a box the detector missed: stored as a confirmed detection (training data), judged against the
    declaration like one (a conflict puts the declaration in lane C3)."""
    with unit_of_work() as session:
        det, findings = service.add_box(session, who, scan_id, body.label, body.box, body.note)
        scan, dets = service.get_scan(session, who, scan_id)
        view = service.scan_view(scan, dets)
        return {
            "detection": next(d for d in view["detections"] if d["id"] == det.id),
            "findings": [f.as_dict() for f in findings],
            "scan": view,
        }


@router.get("/model")
def model_card(who: Principal = Depends(require(*CUSTOMS))) -> dict[str, Any]:
    """The model in use: version, classes, training data, validation metrics, hash."""
    card = service.detector().card_
    return {k: v for k, v in card.items() if k != "metrics"} | {
        "metrics": {k: v for k, v in card.get("metrics", {}).items() if k != "history"}
    }


@router.get("/rules")
def rules(who: Principal = Depends(require(*CUSTOMS))) -> dict[str, Any]:
    """Declared-versus-seen rules: the tariff chapters each class is consistent with, and the confidence
    that raises a conflict (the model's alarm threshold unless the rule sets its own)."""
    alarm = service.alarm_threshold()
    return {
        "alarm_threshold": alarm,
        "rules": [
            {
                "label": r.label,
                "chapters": list(r.chapters),
                "needs_permit": r.needs_permit,
                "enforce": r.enforce,
                "min_confidence": r.threshold(alarm),
                "own_threshold": r.min_confidence is not None,
            }
            for r in service.consistency_rules()
        ],
    }
