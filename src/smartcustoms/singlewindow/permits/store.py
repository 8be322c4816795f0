"""Tables of the permits part: requirements registry, permits with their amendment history, allowance usage."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId, ExactDecimal


class RequirementRow(Base):
    """Which agency must issue what, for goods under a tariff code prefix, in one direction."""

    __tablename__ = "singlewindow_permits_requirement"
    __table_args__ = (
        UniqueConstraint(
            "code_prefix", "direction", "agency", "permit_type", "valid_from", name="uq_swpermits_requirement_key"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_prefix: Mapped[str] = mapped_column(String(12), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    agency: Mapped[str] = mapped_column(String(16), index=True)
    permit_type: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str | None] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegistryRow(Base):
    """Version counter of the requirements registry: findings name it, caches compare it."""

    __tablename__ = "singlewindow_permits_registry"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PermitRow(Base):
    """A permit, licence or certificate an agency issued; `*_used` is reserved plus final usage."""

    __tablename__ = "singlewindow_permits_permit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(35), unique=True)
    agency: Mapped[str] = mapped_column(String(16), index=True)
    permit_type: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(8))
    holder: Mapped[str] = mapped_column(String(35), index=True)
    holder_name: Mapped[str | None] = mapped_column(String(200))
    codes: Mapped[list[str]] = mapped_column(JSON)
    quantity_allowance: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    quantity_unit: Mapped[str | None] = mapped_column(String(8))
    quantity_used: Mapped[Decimal] = mapped_column(ExactDecimal)
    value_allowance: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    value_currency: Mapped[str | None] = mapped_column(String(3))
    value_used: Mapped[Decimal] = mapped_column(ExactDecimal)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    conditions: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class PermitVersionRow(Base):
    """Each issue, amendment and revocation of a permit, with the permit as it was after it."""

    __tablename__ = "singlewindow_permits_permit_version"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    permit_id: Mapped[int] = mapped_column(
        ForeignKey("singlewindow_permits_permit.id", name="fk_swpermits_version_permit"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class UsageRow(Base):
    """What one declaration line drew from one permit: reserved at filing, final on release, or returned."""

    __tablename__ = "singlewindow_permits_usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    permit_id: Mapped[int] = mapped_column(
        ForeignKey("singlewindow_permits_permit.id", name="fk_swpermits_usage_permit"), index=True
    )
    declaration_id: Mapped[int] = mapped_column(BigId)
    reference: Mapped[str] = mapped_column(String(35), index=True)
    declaration_version: Mapped[int] = mapped_column(Integer)
    line_no: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    state: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
