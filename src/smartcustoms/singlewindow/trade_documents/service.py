"""Use cases of the trade-documents part: attach structured documents or scans to a declaration, compare
them with it (a stored, versioned report), raise the mismatches as findings, tune the rules.

Each function runs inside the caller's unit of work. OCR is slow (seconds), so `read_scan` runs outside
any transaction and `attach` stores what it read.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartcustoms.clearance.checks import Finding
from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.errors import Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.types import iso
from smartcustoms.singlewindow.trade_documents import ocr
from smartcustoms.singlewindow.trade_documents.invoice_text import read_invoice
from smartcustoms.singlewindow.trade_documents.model import (
    DOC_TYPES,
    SOURCE,
    Check,
    Document,
    Rules,
    TradeDocumentError,
    at_least,
    compare,
    doc_type_of,
    document_json,
    parse_document,
    rules_from,
    summary,
)
from smartcustoms.singlewindow.trade_documents.store import DocumentRow, ReportRow, RulesRow

ATTACHERS = frozenset({Role.TRADER, Role.BROKER, Role.OFFICER, Role.ADMIN})


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- rules


def current_rules(session: Session) -> Rules:
    row = session.scalar(select(RulesRow).order_by(RulesRow.version.desc()).limit(1))
    return Rules() if row is None else rules_from(row.value, row.version)


def set_rules(session: Session, who: Principal, raw: dict[str, Any]) -> Rules:
    if who.role is not Role.ADMIN:
        raise Forbidden(Problem("forbidden_role", (), t("Only administrators change the document cross-check rules")))
    latest = session.scalar(select(func.max(RulesRow.version))) or 1  # the built-in defaults are v1
    rules = rules_from(raw, latest + 1)
    session.add(RulesRow(version=rules.version, value=rules.as_dict(), at=now(), actor=who.username))
    audit.record(session, who, "set_document_rules", "document_rules", rules.version, detail=rules.as_dict())
    return rules


# ---------------------------------------------------------------------------------------------- access


def _declaration(session: Session, who: Principal, reference: str, *, attach: bool = False) -> Any:
    """The declaration, if the caller may see it (a trader or broker: their own; customs: all)."""
    from smartcustoms.clearance.service import get_row

    if attach and who.role not in ATTACHERS:
        raise Forbidden(
            Problem("forbidden_role", (), t("Role {role} may not attach trade documents", role=who.role.value))
        )
    return get_row(session, who, reference)


def check_access(session: Session, who: Principal, reference: str, *, attach: bool = False) -> None:
    _declaration(session, who, reference, attach=attach)


# ---------------------------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class ReadScan:
    data: dict[str, Any]
    unread: list[str]
    text: str
    method: str
    format: str


def read_scan(content: bytes, langs: str | None = None) -> ReadScan:
    """OCR a scanned invoice (PDF or image) and pull the fields the comparison needs."""
    extracted = ocr.extract_text(content, langs)
    found = read_invoice(extracted.text)
    if not found.data:
        raise TradeDocumentError(
            Problem(
                "nothing_read",
                ("file",),
                t("No invoice field could be read from the scan: {reasons}", reasons="; ".join(found.unread)),
            ),
            status=422,
        )
    return ReadScan(found.data, found.unread, extracted.text, extracted.method, extracted.format)


def attach(
    session: Session,
    who: Principal,
    reference: str,
    doc_type: str,
    raw: Any,
    *,
    source: str = "json",
    file_name: str | None = None,
    text: str | None = None,
    unread: Sequence[str] = (),
    remote_addr: str | None = None,
) -> tuple[DocumentRow, ReportRow]:
    """Attach a document (a new version of that type) and compare the declaration with its documents."""
    row = _declaration(session, who, reference, attach=True)
    kind = doc_type_of(doc_type)
    doc = parse_document(doc_type, raw)
    assert kind is not None
    version = (
        session.scalar(
            select(func.max(DocumentRow.version)).where(
                DocumentRow.declaration == reference, DocumentRow.doc_type == kind
            )
        )
        or 0
    ) + 1
    stored = DocumentRow(
        declaration=reference,
        doc_type=kind,
        version=version,
        source=source,
        data=document_json(doc),
        unread=list(unread),
        file_name=file_name,
        text=text,
        attached_by=who.username,
        attached_at=now(),
    )
    session.add(stored)
    session.flush()
    audit.record(
        session,
        who,
        "attach_trade_document",
        "declaration",
        reference,
        remote_addr=remote_addr,
        detail={"type": kind, "version": version, "source": source, "unread": list(unread)},
    )
    report = run_comparison(session, who, row)
    return stored, report


def latest_documents(session: Session, reference: str) -> dict[str, DocumentRow]:
    out: dict[str, DocumentRow] = {}
    stmt = select(DocumentRow).where(DocumentRow.declaration == reference).order_by(DocumentRow.version)
    for d in session.scalars(stmt):
        out[d.doc_type] = d
    return out


def documents(session: Session, who: Principal, reference: str) -> list[DocumentRow]:
    _declaration(session, who, reference)
    stmt = (
        select(DocumentRow)
        .where(DocumentRow.declaration == reference)
        .order_by(DocumentRow.doc_type, DocumentRow.version)
    )
    return list(session.scalars(stmt))


# ---------------------------------------------------------------------------------------------- comparison


def to_finding(c: Check, rules: Rules) -> Finding:
    lane = rules.lanes.get(c.severity)
    return Finding(
        source=SOURCE,
        code=f"{c.document}_{c.kind}_mismatch",
        message=c.message,
        path=c.path,
        lane=Lane(lane) if lane else None,
        hold=False,
        score=float(rules.scores.get(c.severity, 0.3)),
        version=rules.label,
        detail={"key": c.key, **c.as_dict()},
    )


def findings_for(checks: Sequence[Check], rules: Rules, skip: set[str] | frozenset[str] = frozenset()) -> list[Finding]:
    """Mismatches at or above the rules' severity floor that were not raised before."""
    return [
        to_finding(c, rules)
        for c in checks
        if c.result == "mismatch" and at_least(c.severity, rules.finding_min_severity) and c.key not in skip
    ]


def _latest_report(session: Session, reference: str) -> ReportRow | None:
    stmt = select(ReportRow).where(ReportRow.declaration == reference).order_by(ReportRow.version.desc()).limit(1)
    return session.scalar(stmt)


def run_comparison(
    session: Session, who: Principal, row: Any, *, raise_new: bool = True, preraised: Sequence[str] = ()
) -> ReportRow:
    """Compare the declaration (its current version) with its latest documents, store the report as a new
    version, and raise the new mismatches as findings (`clearance.service.raise_findings`)."""
    from smartcustoms.clearance.service import raise_findings

    rules = current_rules(session)
    latest = latest_documents(session, row.reference)
    parsed: dict[str, Document] = {k: parse_document(k, d.data) for k, d in latest.items()}
    checks = compare(row.payload, parsed, rules, manifested_containers(session, row.payload))
    previous = _latest_report(session, row.reference)
    raised = list(dict.fromkeys([*(previous.raised if previous else []), *preraised]))
    new = findings_for(checks, rules, set(raised))
    if new and raise_new:
        raise_findings(
            session,
            row.reference,
            new,
            who=who,
            note=t(
                "Trade documents differ from the declaration: {messages}", messages="; ".join(f.message for f in new)
            ),
        )
        raised += [str(f.detail["key"]) for f in new]
    report = ReportRow(
        declaration=row.reference,
        version=(previous.version if previous else 0) + 1,
        declaration_version=row.version,
        rules_version=rules.label,
        at=now(),
        actor=who.username,
        documents=[
            {"type": k, "version": d.version, "source": d.source, "unread": d.unread} for k, d in latest.items()
        ],
        checks=[c.as_dict() for c in checks],
        summary=summary(checks),
        raised=raised,
    )
    session.add(report)
    session.flush()
    return report


def manifested_containers(session: Session, payload: dict[str, Any]) -> list[str]:
    from smartcustoms.singlewindow.manifests.service import containers_for_docs

    refs = [str(t.get("reference", "")) for t in payload.get("transport_documents") or []]
    return containers_for_docs(session, refs) if refs else []


def report(session: Session, who: Principal, reference: str, version: int | None = None) -> ReportRow:
    _declaration(session, who, reference)
    stmt = select(ReportRow).where(ReportRow.declaration == reference)
    stmt = stmt.where(ReportRow.version == version) if version else stmt.order_by(ReportRow.version.desc()).limit(1)
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(
            Problem(
                "no_report",
                ("reference",),
                t("No trade documents have been compared for declaration {reference}", reference=reference),
            )
        )
    return found


def report_view(r: ReportRow) -> dict[str, Any]:
    return {
        "declaration": r.declaration,
        "version": r.version,
        "declaration_version": r.declaration_version,
        "rules_version": r.rules_version,
        "at": iso(r.at),
        "actor": r.actor,
        "documents": r.documents,
        "summary": r.summary,
        "checks": r.checks,
        "findings_raised": len(r.raised or []),
    }


def document_view(d: DocumentRow, *, with_text: bool = False) -> dict[str, Any]:
    out = {
        "type": d.doc_type,
        "version": d.version,
        "source": d.source,
        "data": d.data,
        "unread": d.unread,
        "file_name": d.file_name,
        "attached_by": d.attached_by,
        "attached_at": iso(d.attached_at),
    }
    if with_text:
        out["text"] = d.text
    return out


# ---------------------------------------------------------------------------------------------- at filing


def documents_in_filing(decl: Any) -> tuple[dict[str, Document], list[Finding]]:
    """Structured documents attached to a filing (`documents[].content_base64` holding the JSON form),
    and a finding for each one that cannot be read. Scans attached at filing are left for the API (OCR
    takes seconds; a filing must not)."""
    docs: dict[str, Document] = {}
    unreadable: list[Finding] = []
    for i, att in enumerate(getattr(decl, "documents", None) or []):
        kind = doc_type_of(att.type)
        if kind not in DOC_TYPES or not att.content_base64:
            continue
        try:
            raw = base64.b64decode(att.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw.lstrip()[:1] != b"{":
            continue  # a scan or another file: not a structured document
        try:
            docs[kind] = parse_document(kind, json.loads(raw))
        except (json.JSONDecodeError, UnicodeDecodeError, TradeDocumentError) as exc:
            why = "; ".join(p.message for p in exc.problems) if isinstance(exc, TradeDocumentError) else str(exc)
            unreadable.append(
                Finding(
                    SOURCE,
                    "document_unreadable",
                    t(
                        "Attached {document_text} {attachment} could not be read: {reason}",
                        document_text=kind.replace("_", " "),
                        attachment=att.reference,
                        reason=why,
                    ),
                    ("documents", i, "content_base64"),
                    lane=None,
                    score=0.2,
                    detail={"key": f"unreadable:{kind}:{att.reference}"},
                )
            )
    return docs, unreadable


def store_filed_documents(session: Session, who: Principal, stored: Sequence[Any]) -> None:
    """After filing: keep the structured documents that came with the filings and their first report."""
    for s in stored:
        docs, _ = documents_in_filing(s.decl)
        if not docs and not (s.version > 1 and latest_documents(session, s.reference)):
            continue
        for kind, doc in docs.items():
            version = (
                session.scalar(
                    select(func.max(DocumentRow.version)).where(
                        DocumentRow.declaration == s.reference, DocumentRow.doc_type == kind
                    )
                )
                or 0
            ) + 1
            session.add(
                DocumentRow(
                    declaration=s.reference,
                    doc_type=kind,
                    version=version,
                    source="filing",
                    data=document_json(doc),
                    unread=[],
                    file_name=None,
                    text=None,
                    attached_by=who.username,
                    attached_at=now(),
                )
            )
        session.flush()
        view = _FiledView(s.reference, s.version, s.decl.model_dump(mode="json"))
        keys = [str(f.detail.get("key")) for f in s.findings if f.source == SOURCE and f.detail.get("key")]
        run_comparison(session, who, view, raise_new=False, preraised=keys)


@dataclass(frozen=True)
class _FiledView:
    reference: str
    version: int
    payload: dict[str, Any]
