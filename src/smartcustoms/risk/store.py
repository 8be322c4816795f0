"""Risk tables: targeting rules edited in the console, one row per version (never overwritten)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId


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
