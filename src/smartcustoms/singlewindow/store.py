"""Tables of the single window: importing each part's store registers its tables."""

from __future__ import annotations

from smartcustoms.singlewindow.parts import modules

STORES = modules("store")
