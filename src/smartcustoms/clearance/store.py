"""Clearance tables: declarations, their items, timeline events, versions, inspections, rates, AEO, settings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId, ExactDecimal


class DeclarationRow(Base):
    __tablename__ = "clearance_declaration"
    __table_args__ = (
        UniqueConstraint("declarant_id", "lrn", name="uq_clearance_declaration_declarant_lrn"),
        Index("ix_clearance_declaration_status_lane", "status", "lane"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(18), unique=True)
    lrn: Mapped[str] = mapped_column(String(35))
    declarant_id: Mapped[str] = mapped_column(String(35))
    broker_id: Mapped[str | None] = mapped_column(String(35), index=True)
    importer_id: Mapped[str] = mapped_column(String(35), index=True)
    exporter_id: Mapped[str] = mapped_column(String(35))
    declaration_type: Mapped[str] = mapped_column(String(8))
    procedure: Mapped[str] = mapped_column(String(7))
    office: Mapped[str] = mapped_column(String(8), index=True)
    status: Mapped[str] = mapped_column(String(24))
    lane: Mapped[str | None] = mapped_column(String(2))
    version: Mapped[int] = mapped_column(Integer, default=1)
    currency: Mapped[str] = mapped_column(String(3))
    customs_value: Mapped[Decimal] = mapped_column(ExactDecimal)
    duty: Mapped[Decimal] = mapped_column(ExactDecimal)
    vat: Mapped[Decimal] = mapped_column(ExactDecimal)
    additional_duty: Mapped[Decimal] = mapped_column(ExactDecimal)
    total: Mapped[Decimal] = mapped_column(ExactDecimal)
    risk_score: Mapped[float] = mapped_column(Float, default=0.0)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    filed_by: Mapped[str] = mapped_column(String(64))
    payload_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    assessment: Mapped[dict[str, Any]] = mapped_column(JSON)
    lane_reasons: Mapped[list[str]] = mapped_column(JSON)
    lane_versions: Mapped[list[str]] = mapped_column(JSON)
    findings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    """Structured findings of the other slices' checks (permits, manifest, documents, X-ray)."""


class ItemRow(Base):
    """One goods item of a declaration. On PostgreSQL its reference to the declaration is checked once per
    statement by triggers (migration clearance_0003), not per row by this foreign key."""

    __tablename__ = "clearance_item"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("clearance_declaration.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    tariff_code: Mapped[str] = mapped_column(String(14))
    hs_chapter: Mapped[str] = mapped_column(String(2), index=True)
    origin: Mapped[str] = mapped_column(String(2))
    description: Mapped[str] = mapped_column(Text)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    net_mass_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    duty: Mapped[Decimal] = mapped_column(ExactDecimal)


class EventRow(Base):
    """One step of the timeline; stages of the Time Release Study are measured between these. Its reference
    to the declaration is checked as an item's is (see `ItemRow`)."""

    __tablename__ = "clearance_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("clearance_declaration.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class VersionRow(Base):
    """Every filed version of a declaration: the original and each amendment, never overwritten."""

    __tablename__ = "clearance_version"
    __table_args__ = (UniqueConstraint("declaration_id", "version", name="uq_clearance_version_decl_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("clearance_declaration.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    assessment: Mapped[dict[str, Any]] = mapped_column(JSON)


class InspectionRow(Base):
    __tablename__ = "clearance_inspection"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("clearance_declaration.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    officer: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    findings: Mapped[str | None] = mapped_column(Text)
    additional_duty: Mapped[Decimal] = mapped_column(ExactDecimal)


class FxRateRow(Base):
    __tablename__ = "clearance_fx_rate"
    __table_args__ = (UniqueConstraint("currency", "valid_from", name="uq_clearance_fx_rate_currency_day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    source: Mapped[str] = mapped_column(String(64))


class AeoRow(Base):
    """Authorised Economic Operator status of a party, with its validity."""

    __tablename__ = "clearance_aeo"

    party_id: Mapped[str] = mapped_column(String(35), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class SettingRow(Base):
    """Configuration edited by admins at run time: lane rules, tax rules, plausibility limits."""

    __tablename__ = "clearance_setting"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))
