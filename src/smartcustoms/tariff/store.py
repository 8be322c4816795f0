"""Tariff tables: schedule versions and their lines (rates kept as original text and parsed JSON)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ScheduleRow(Base):
    """One version of a named schedule ('hs2022' 2022, 'us-hts' 2025), valid from/to (inclusive)."""

    __tablename__ = "tariff_schedule"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_tariff_schedule_name_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    line_count: Mapped[int] = mapped_column(Integer, default=0)


class LineRow(Base):
    """A line of a schedule version. `rates` is JSON text: per column (general, preferential, column2) the
    original text and the parsed form (or the parse error); `search_text` is the folded en + zh text."""

    __tablename__ = "tariff_line"
    __table_args__ = (
        UniqueConstraint("schedule_id", "code", name="uq_tariff_line_schedule_id_code"),
        Index("ix_tariff_line_schedule_leaf", "schedule_id", "is_leaf"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("tariff_schedule.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    digits: Mapped[int] = mapped_column(SmallInteger)
    is_leaf: Mapped[bool] = mapped_column(Boolean)
    section: Mapped[str | None] = mapped_column(String(8))
    parent: Mapped[str | None] = mapped_column(String(16))
    description_en: Mapped[str | None] = mapped_column(Text)
    description_zh: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(64))
    requirements: Mapped[str | None] = mapped_column(String(200))
    rates: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str | None] = mapped_column(Text)


class ConfirmedClassificationRow(Base):
    """A goods description whose code an officer or trader confirmed: training data for the classifier
    (`smartcustoms tariff train`). `reason` keeps the question trail or a note."""

    __tablename__ = "tariff_confirmed_classification"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    confirmed_by: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)


class ClassificationSessionRow(Base):
    """A progressive-question session kept in the database, so it survives a restart and any worker process
    can answer it. `state` is JSON: the candidates' probabilities and texts, the trail, the questions asked
    and the pending question (stored whole, so every process asks exactly the same one)."""

    __tablename__ = "tariff_classification_session"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    confirmed_id: Mapped[int | None] = mapped_column(BigId)
