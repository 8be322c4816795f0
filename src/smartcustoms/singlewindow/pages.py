"""Console pages of the single window: the page routers of its parts."""

from __future__ import annotations

from fastapi import APIRouter

from smartcustoms.singlewindow.parts import modules

router = APIRouter()
for _module in modules("pages"):
    router.include_router(_module.router)
