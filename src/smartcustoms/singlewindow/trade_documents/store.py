"""Tables of the trade-documents part: attached documents (every version kept), comparison reports
(versioned, naming the rules version), and the comparison rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId


class DocumentRow(Base):
    __tablename__ = "singlewindow_documents_document"
    __table_args__ = (
        UniqueConstraint("declaration", "doc_type", "version", name="uq_singlewindow_documents_document_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration: Mapped[str] = mapped_column(String(18), index=True)
    doc_type: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    """json (structured, through the API), filing (attached to the declaration), ocr (a scan read)."""
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    unread: Mapped[list[str]] = mapped_column(JSON)
    file_name: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    """The text OCR read (scans only), kept so an officer can see what the fields came from."""
    attached_by: Mapped[str] = mapped_column(String(64))
    attached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReportRow(Base):
    __tablename__ = "singlewindow_documents_report"
    __table_args__ = (UniqueConstraint("declaration", "version", name="uq_singlewindow_documents_report_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration: Mapped[str] = mapped_column(String(18), index=True)
    version: Mapped[int] = mapped_column(Integer)
    declaration_version: Mapped[int] = mapped_column(Integer)
    rules_version: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    summary: Mapped[dict[str, int]] = mapped_column(JSON)
    raised: Mapped[list[str]] = mapped_column(JSON)
    """Keys of the mismatches raised as findings so far (each is raised once per declaration)."""


class RulesRow(Base):
    __tablename__ = "singlewindow_documents_rules"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
