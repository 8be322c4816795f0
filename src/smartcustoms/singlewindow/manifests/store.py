"""Tables of the manifests part: manifests and their lines (with amendments kept), the declarations'
transport documents as this part indexed them, and the matching rules."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId, ExactDecimal


class ManifestRow(Base):
    """One voyage or flight of a carrier arriving at one port."""

    __tablename__ = "singlewindow_manifests_manifest"
    __table_args__ = (UniqueConstraint("carrier", "voyage", "port", name="uq_singlewindow_manifests_manifest_voyage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    carrier: Mapped[str] = mapped_column(String(35), index=True)
    voyage: Mapped[str] = mapped_column(String(35))
    mode: Mapped[str] = mapped_column(String(16))
    means_id: Mapped[str | None] = mapped_column(String(64))
    port: Mapped[str] = mapped_column(String(5))
    expected_arrival: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    line_count: Mapped[int] = mapped_column(Integer)
    filed_by: Mapped[str] = mapped_column(String(64))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LineRow(Base):
    __tablename__ = "singlewindow_manifests_line"
    __table_args__ = (Index("ix_singlewindow_manifests_line_manifest_declared", "manifest_id", "declared"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("singlewindow_manifests_manifest.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    doc_type: Mapped[str] = mapped_column(String(8))
    doc_ref: Mapped[str] = mapped_column(String(35), index=True)
    shipper_name: Mapped[str] = mapped_column(String(512))
    shipper_id: Mapped[str | None] = mapped_column(String(35))
    consignee_name: Mapped[str] = mapped_column(String(512))
    consignee_id: Mapped[str | None] = mapped_column(String(35))
    description: Mapped[str] = mapped_column(Text)
    packages: Mapped[int] = mapped_column(Integer)
    package_type: Mapped[str | None] = mapped_column(String(16))
    gross_weight_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    containers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    chapters: Mapped[list[list[Any]]] = mapped_column(JSON)
    """Best HS chapters of the description with their scores, computed when the line was filed."""
    declared: Mapped[bool] = mapped_column(Boolean, default=False)
    declarations: Mapped[list[str]] = mapped_column(JSON)
    """References of the declarations that cover this line."""


class ManifestVersionRow(Base):
    """Every filed version of a manifest (the original and each replacement), never overwritten."""

    __tablename__ = "singlewindow_manifests_version"
    __table_args__ = (UniqueConstraint("manifest_id", "version", name="uq_singlewindow_manifests_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("singlewindow_manifests_manifest.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class DeclaredRow(Base):
    """A declaration as this part sees it (kept up to date by the clearance lifecycle hook)."""

    __tablename__ = "singlewindow_manifests_declaration"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(18), unique=True)
    version: Mapped[int] = mapped_column(Integer)
    needs_manifest: Mapped[bool] = mapped_column(Boolean)
    arrival_date: Mapped[date | None] = mapped_column(Date)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    matched: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    raised: Mapped[list[str]] = mapped_column(JSON)
    """Keys of the discrepancies already raised as findings (each is raised once)."""


class DeclaredRefRow(Base):
    __tablename__ = "singlewindow_manifests_declared_ref"
    __table_args__ = (UniqueConstraint("reference", "doc_ref", name="uq_singlewindow_manifests_declared_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(18))  # searched through the unique (reference, doc_ref) index
    doc_ref: Mapped[str] = mapped_column(String(35), index=True)


class RulesRow(Base):
    """The matching rules; each change is a new version (findings name the version they came from)."""

    __tablename__ = "singlewindow_manifests_rules"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
