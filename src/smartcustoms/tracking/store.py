"""Tracking tables: zones, approved routes, trips, positions (with seal readings) and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ZoneRow(Base):
    """Free-trade zone, port, bonded warehouse or authorised rest area; polygon as GeoJSON geometry."""

    __tablename__ = "tracking_zone"

    zone_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="zone")
    authorised_stop: Mapped[bool] = mapped_column(Boolean, default=True)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)


class RouteRow(Base):
    """Approved route: centre line as [[lon, lat], ...], approved variants (list of such lines, or null) and
    corridor half-width in metres."""

    __tablename__ = "tracking_route"

    route_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    corridor_m: Mapped[float] = mapped_column(Float)
    coordinates: Mapped[list[list[float]]] = mapped_column(JSON)
    variants: Mapped[list[list[list[float]]] | None] = mapped_column(JSON, nullable=True)


class TripRow(Base):
    """A bonded transfer under monitoring, linked to its transfer declaration and devices."""

    __tablename__ = "tracking_trip"

    trip_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    route_id: Mapped[str] = mapped_column(ForeignKey("tracking_route.route_id"))
    origin_zone: Mapped[str] = mapped_column(ForeignKey("tracking_zone.zone_id"))
    destination_zone: Mapped[str] = mapped_column(ForeignKey("tracking_zone.zone_id"))
    departure: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    carrier_id: Mapped[str | None] = mapped_column(String(35), index=True)
    declaration_ref: Mapped[str | None] = mapped_column(String(64))
    vehicle: Mapped[str | None] = mapped_column(String(32))
    container: Mapped[str | None] = mapped_column(String(16))
    seal_id: Mapped[str | None] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    arrived_sealed: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))


class PositionRow(Base):
    """Every reading received for a trip, including the ones flagged (out of order, future, seal without a
    fix), stored once: device, fix time, source and kind are its natural key (a unique index), so a device
    re-sending a fix, a listener re-sending a batch or a stream message redelivered to a second detector
    while the first is still writing it never stores it twice."""

    __tablename__ = "tracking_position"
    __table_args__ = (
        Index("ix_tracking_position_trip_time", "trip_id", "time"),
        Index("ux_tracking_position_reading", "device_id", "time", "source", "kind", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trip_id: Mapped[str] = mapped_column(ForeignKey("tracking_trip.trip_id"))
    device_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8), default="fix", server_default="fix")  # fix | seal (no GPS fix)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float)
    seal: Mapped[str | None] = mapped_column(String(16))
    low_battery: Mapped[bool] = mapped_column(Boolean, default=False)
    flag: Mapped[str | None] = mapped_column(String(16))


class AlertRow(Base):
    """An alert; open until its condition clears, then acknowledged and closed by an officer with a note.
    Trip, condition and start are its natural key: two detectors (or two clock ticks) raising the same
    alert store it once."""

    __tablename__ = "tracking_alert"
    __table_args__ = (Index("ux_tracking_alert_condition_start", "trip_id", "condition", "start", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trip_id: Mapped[str] = mapped_column(ForeignKey("tracking_trip.trip_id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    rule_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledge_note: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_note: Mapped[str | None] = mapped_column(Text)
