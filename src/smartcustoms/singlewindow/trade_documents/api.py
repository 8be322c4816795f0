"""HTTP API of the trade-documents part: attach structured documents or scans, read the comparison report."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.web import client_addr, principal, require
from smartcustoms.singlewindow.trade_documents import service
from smartcustoms.singlewindow.trade_documents.model import TradeDocumentError

router = APIRouter(tags=["trade documents"])


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="invoice, packing_list or bill_of_lading")
    data: dict[str, Any] = Field(description="The document's fields (see docs/singlewindow_manifests.md)")


def _out(doc: Any, report: Any, **extra: Any) -> dict[str, Any]:
    return {"document": service.document_view(doc), "report": service.report_view(report), **extra}


@router.post("/declarations/{reference}/trade-documents", status_code=201)
def post_document(
    request: Request, reference: str, body: DocumentIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """Attach a structured invoice, packing list or bill of lading (the filer or an officer); the reply is
    the new comparison report. Mismatches at or above the rules' severity floor reach the lane."""
    with unit_of_work() as session:
        doc, report = service.attach(session, who, reference, body.type, body.data, remote_addr=client_addr(request))
        return _out(doc, report)


@router.post("/declarations/{reference}/trade-documents/scan", status_code=201)
async def post_scan(
    request: Request,
    reference: str,
    file_name: str | None = Query(None, max_length=255),
    languages: str | None = Query(None, description="Tesseract languages, e.g. eng+chi_tra (default: configured)"),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Attach a scanned invoice: the request body is the file itself (PDF, PNG, JPEG or TIFF; the format is
    told from its bytes). The fields OCR read are compared like a structured invoice; the reply lists
    what could not be read."""
    content = await request.body()
    if languages is not None and not re.fullmatch(r"[a-z_]{3,16}(\+[a-z_]{3,16}){0,3}", languages):
        raise TradeDocumentError(Problem("bad_languages", ("languages",), t("Languages like eng or eng+chi_tra")))
    # OCR takes seconds: it runs in the thread pool, outside any transaction, never on the event loop
    return await run_in_threadpool(_scan, who, reference, content, file_name, languages, client_addr(request))


def _scan(
    who: Principal, reference: str, content: bytes, file_name: str | None, languages: str | None, addr: str | None
) -> dict[str, Any]:
    with unit_of_work() as session:
        service.check_access(session, who, reference, attach=True)
    scan = service.read_scan(content, languages)
    with unit_of_work() as session:
        doc, report = service.attach(
            session,
            who,
            reference,
            "invoice",
            scan.data,
            source="ocr",
            file_name=file_name,
            text=scan.text,
            unread=scan.unread,
            remote_addr=addr,
        )
        return _out(doc, report, ocr={"method": scan.method, "format": scan.format, "unread": scan.unread})


@router.get("/declarations/{reference}/trade-documents")
def get_documents(reference: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    with unit_of_work() as session:
        docs = service.documents(session, who, reference)
        return {"reference": reference, "documents": [service.document_view(d, with_text=True) for d in docs]}


@router.get("/declarations/{reference}/trade-documents/report")
def get_report(
    reference: str, version: int | None = Query(None, ge=1), who: Principal = Depends(principal)
) -> dict[str, Any]:
    """The comparison report (latest, or a given version): each field compared, its tolerance, the result
    and the severity of a mismatch, with the rules version that judged it."""
    with unit_of_work() as session:
        return service.report_view(service.report(session, who, reference, version))


@router.get("/trade-documents/rules")
def get_rules(_who: Principal = Depends(require(Role.OFFICER, Role.ANALYST, Role.ADMIN))) -> dict[str, Any]:
    with unit_of_work() as session:
        rules = service.current_rules(session)
        return {"version": rules.label, **rules.as_dict()}


@router.put("/trade-documents/rules")
def put_rules(body: Annotated[dict[str, Any], Body()], who: Principal = Depends(require(Role.ADMIN))) -> dict[str, Any]:
    with unit_of_work() as session:
        rules = service.set_rules(session, who, body)
        return {"version": rules.label, **rules.as_dict()}
