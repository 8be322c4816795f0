"""Registers the single window's declaration checks and lifecycle hooks with the clearance core."""

from __future__ import annotations

from smartcustoms.singlewindow.parts import modules


def register() -> None:
    for module in modules("checks"):
        module.register()
