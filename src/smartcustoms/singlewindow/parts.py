"""The sub-packages of the single window, imported when present."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

PARTS = ("permits", "manifests", "trade_documents")


def modules(name: str) -> list[ModuleType]:
    """`smartcustoms.singlewindow.<part>.<name>` for each part that has that module."""
    out = []
    for part in PARTS:
        full = f"smartcustoms.singlewindow.{part}.{name}"
        try:
            if importlib.util.find_spec(full) is None:
                continue
        except ModuleNotFoundError:
            continue
        out.append(importlib.import_module(full))
    return out
