"""Console pages: an X-ray panel on the declaration page (scans, conflicts, upload), a scan page (boxes,
heat map, confirm or reject each detection, conflict banner) and a list of recent scans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select

from smartcustoms.clearance import pages
from smartcustoms.clearance.pages import N_, _
from smartcustoms.platform.auth import CUSTOMS_ROLES, Principal
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Forbidden, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.xray import service
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.store import ScanRow

router = APIRouter(prefix="/console/xray", include_in_schema=False)

CLASS_NAMES = {
    "meat": N_("meat"),
    "drugs": N_("drugs"),
    "handgun": N_("handgun"),
    "gun_part": N_("gun part"),
    "knife": N_("knife"),
    "cheese": N_("cheese"),
    "book": N_("book"),
    "electronics": N_("electronics"),
    "tool": N_("tool"),
}


def class_name(label: str) -> str:
    """The translated name of a detected class (unknown classes from other data sets as they are)."""
    return _(CLASS_NAMES[label]) if label in CLASS_NAMES else label


pages.add_templates(Path(__file__).resolve().parent / "templates")
ASSETS = {"xray.js": "text/javascript; charset=utf-8", "xray.css": "text/css; charset=utf-8"}
"""The scan page's own script (box drawing) and styles: served from here, the console allows no inline ones."""
STATIC = Path(__file__).resolve().parent / "static"
pages.add_nav_link("/console/xray", N_("X-ray"), set(CUSTOMS_ROLES))


def _panel(session: Any, who: Principal, d: dict[str, Any]) -> dict[str, Any] | None:
    if not who.is_customs:
        return None
    scans = service.scans_of(session, who, d["reference"])
    rows = []
    for scan in scans:
        _, dets = service.get_scan(session, who, scan.id)
        rows.append(
            {
                "id": scan.id,
                "filename": scan.filename,
                "uploaded_at": scan.uploaded_at,
                "detections": len(dets),
                "pending": sum(1 for x in dets if x.verdict is None),
                "conflicts": scan.conflicts or [],
                "model_version": scan.model_version,
            }
        )
    return {"reference": d["reference"], "scans": rows}


pages.add_panel("xray/panel.html", _panel)


def _signed_in(request: Request) -> pages.Page | Response:
    return pages.console_page(request)


@router.get("")
def recent(request: Request) -> Response:
    page = _signed_in(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not page.who.is_customs:
        return pages.problems_page(
            page, Forbidden(Problem("forbidden_role", (), t("Only customs staff see X-ray scans")))
        )
    with unit_of_work() as session:
        scans = list(session.scalars(select(ScanRow).order_by(ScanRow.id.desc()).limit(100)))
        rows = [
            {
                "id": s.id,
                "reference": s.declaration_ref,
                "filename": s.filename,
                "uploaded_at": s.uploaded_at,
                "conflicts": s.conflicts or [],
                "model_version": s.model_version,
            }
            for s in scans
        ]
    return page.render("xray/recent.html", rows=rows)


@router.get("/scans/{scan_id}")
def scan_page(request: Request, scan_id: int, heat: int = 1) -> Response:
    page = _signed_in(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    try:
        with unit_of_work() as session:
            scan, dets = service.get_scan(session, page.who, scan_id)
            view = service.scan_view(scan, dets)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    options = [(label, class_name(label)) for label in CLASS_NAMES]
    return page.render("xray/scan.html", scan=view, heat=bool(heat), class_name=class_name, class_options=options)


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    response = FileResponse(STATIC / name, media_type=ASSETS[name])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.post("/scans/{scan_id}/boxes")
def add_box(
    request: Request,
    scan_id: int,
    label: str = Form(""),
    x1: str = Form(""),
    y1: str = Form(""),
    x2: str = Form(""),
    y2: str = Form(""),
    note: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    page = _signed_in(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        try:
            box = [float(v) for v in (x1, y1, x2, y2)]
        except ValueError:
            raise XrayError(Problem("bad_box", ("box",), t("A box is [x1, y1, x2, y2] in scan pixels"))) from None
        with unit_of_work() as session:
            det, _ = service.add_box(session, page.who, scan_id, label, box, note.strip() or None)
            det_id = det.id
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return RedirectResponse(f"/console/xray/scans/{scan_id}#d{det_id}", status_code=303)


@router.post("/declarations/{reference}/scans")
async def upload(request: Request, reference: str, file: UploadFile = File(...), csrf: str = Form("")) -> Response:
    from smartcustoms.xray.api import read_upload

    page = _signed_in(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        data = await read_upload(file)
        with unit_of_work() as session:
            up = service.upload_scan(session, page.who, reference, data, file.filename or "scan")
            scan_id = up.scan.id
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return RedirectResponse(f"/console/xray/scans/{scan_id}", status_code=303)


@router.post("/detections/{detection_id}/review")
def review(
    request: Request, detection_id: int, verdict: str = Form(""), note: str = Form(""), csrf: str = Form("")
) -> Response:
    page = _signed_in(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            det = service.review(session, page.who, detection_id, verdict, note or None)
            scan_id = det.scan_id
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return RedirectResponse(f"/console/xray/scans/{scan_id}#d{detection_id}", status_code=303)
