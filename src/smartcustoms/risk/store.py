"""Risk tables: targeting rules edited in the console, one row per version (never overwritten)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId, ExactDecimal


class TargetingRuleRow(Base):
    """One version of a targeting rule; the live rule is the latest version, if enabled."""

    __tablename__ = "risk_targeting_rule"
    __table_args__ = (UniqueConstraint("rule_id", "version", name="uq_risk_targeting_rule_id_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The rule as in a rules document: when, lane or score, reason, valid_from / valid_to."""
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class AuditListRow(Base):
    """One computation of the post-clearance audit list, kept so the page reads it instead of recomputing.

    Ranking every importer means exporting and scoring the whole declaration history: seconds on a
    large database, too slow for each page view. Analysts (or a scheduled `risk audit-refresh`) compute it;
    earlier computations stay for comparison.
    """

    __tablename__ = "risk_audit_list"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    computed_by: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    declarations: Mapped[int] = mapped_column(Integer)
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AuditResultRow(Base):
    """The outcome of a post-clearance audit of one importer over a period: labels for the next training.

    `findings` lists the declarations found irregular with the revenue recovered on each; the importer's
    other declarations of the period were audited and found in order (negative labels).
    """

    __tablename__ = "risk_audit_result"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    importer_id: Mapped[str] = mapped_column(String(35), index=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    recovered: Mapped[Decimal] = mapped_column(ExactDecimal)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(64))
