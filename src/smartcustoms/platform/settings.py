"""Runtime settings, read from SMARTCUSTOMS_* environment variables so deployments need no code change."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SMARTCUSTOMS_{name}", default)


@dataclass(frozen=True)
class Settings:
    """Platform configuration; every threshold a customs administration tunes lives here or in the database."""

    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", "sqlite:///./var/smartcustoms.db"))
    var_dir: Path = field(default_factory=lambda: Path(_env("VAR_DIR", "./var")))
    national_currency: str = field(default_factory=lambda: _env("NATIONAL_CURRENCY", "TWD"))
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(2 * 1024 * 1024))))
    max_upload_bytes: int = field(default_factory=lambda: int(_env("MAX_UPLOAD_BYTES", str(64 * 1024 * 1024))))
    """Scanned images and PDFs (X-ray scans, invoice scans): decoded with their own pixel limits."""
    max_items_per_declaration: int = field(default_factory=lambda: int(_env("MAX_ITEMS", "999")))
    de_minimis: Decimal = field(default_factory=lambda: Decimal(_env("DE_MINIMIS", "2000")))
    vat_rate: Decimal = field(default_factory=lambda: Decimal(_env("VAT_RATE", "0.05")))
    shared_data_dir: Path = field(default_factory=lambda: Path(_env("SHARED_DATA", "../shared/data")))
    documents_sync_interval: float = field(
        default_factory=lambda: max(0.0, float(_env("DOCUMENTS_SYNC_INTERVAL", "0") or 0))
    )
    """Seconds between background syncs of followed partners' logs (0: only on demand)."""
    warm_start: bool = field(default_factory=lambda: _env("WARM_START", "0") == "1")
    """Load the tariff index when the server starts, then keep start-up data out of the garbage collector's
    way (`serve` turns it on; tests leave it off)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
