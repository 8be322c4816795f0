"""X-ray tables: scans attached to declarations (bytes kept with their display copy and heat map) and the
detections on them, each with the model version that made it and the officer's verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smartcustoms.platform.db import Base
from smartcustoms.platform.types import BigId


class ScanRow(Base):
    """One uploaded scan of the goods of a declaration."""

    __tablename__ = "xray_scan"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    declaration_ref: Mapped[str] = mapped_column(String(18), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(32))
    pixel_mode: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    original: Mapped[bytes] = mapped_column(LargeBinary)
    display: Mapped[bytes] = mapped_column(LargeBinary)
    """JPEG browsers can show (TIFF and 16-bit grey are converted)."""
    heatmap: Mapped[bytes] = mapped_column(LargeBinary)
    """PNG heat map (transparent → red) at the detector's grid size, stretched over the display copy."""
    model_version: Mapped[str] = mapped_column(String(64))
    inference_ms: Mapped[float] = mapped_column(Float)
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DetectionRow(Base):
    """One object the detector saw on a scan (or an officer drew where it saw nothing), and what the officer
    said of it (confirmed/rejected)."""

    __tablename__ = "xray_detection"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("xray_scan.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(16))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), default="model", server_default="model")
    """"model" (the detector saw it) or "officer" (a box the detector missed, drawn by an officer: confirmed)."""
