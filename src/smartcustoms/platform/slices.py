"""Discovery of the capability slices, so the app, CLI and migrations mount whatever slices exist."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

SLICES = ("platform", "tariff", "clearance", "risk", "singlewindow", "tracking", "documents", "xray")


def slice_module(slice_name: str, module: str) -> ModuleType | None:
    """Import `smartcustoms.<slice>.<module>` if that module exists, else None."""
    name = f"smartcustoms.{slice_name}.{module}"
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(name)


def load_all_tables() -> None:
    """Import every slice's store so Base.metadata knows every table."""
    for name in SLICES:
        slice_module(name, "store")


def migration_dirs() -> list[Path]:
    """Each slice owns an Alembic branch in `<slice>/migrations`."""
    root = Path(__file__).resolve().parent.parent
    return [root / name / "migrations" for name in SLICES if (root / name / "migrations").is_dir()]
