"""Console view of the trade-documents part: the comparison report as a panel on the declaration page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from smartcustoms.clearance import pages
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.types import iso
from smartcustoms.singlewindow.trade_documents.store import ReportRow

router = APIRouter(include_in_schema=False)
ORDER = {"mismatch": 0, "not_compared": 1, "match": 2}
SEVERITY = {"high": 0, "medium": 1, "low": 2, "info": 3}

pages.add_templates(Path(__file__).resolve().parent / "templates")
WORDS = (
    pages.N_("invoice"),
    pages.N_("packing list"),
    pages.N_("bill of lading"),
    pages.N_("high"),
    pages.N_("medium"),
    pages.N_("low"),
    pages.N_("info"),
)
"""Document types and severities the panel shows through `_()`."""


def _panel(session: Any, who: Principal, d: dict[str, Any]) -> dict[str, Any] | None:
    """The latest comparison report (the page already checked the caller may see the declaration)."""
    stmt = select(ReportRow).where(ReportRow.declaration == d["reference"]).order_by(ReportRow.version.desc()).limit(1)
    report = session.scalar(stmt)
    if report is None:
        return None
    checks = sorted(report.checks, key=lambda c: (ORDER.get(c["result"], 3), SEVERITY.get(c["severity"], 4)))
    return {
        "version": report.version,
        "declaration_version": report.declaration_version,
        "rules_version": report.rules_version,
        "at": iso(report.at),
        "documents": report.documents,
        "summary": report.summary,
        "checks": checks,
        "stale": report.declaration_version != d.get("version"),
    }


pages.add_panel("trade_documents/panel.html", _panel)
