"""HTTP API of the single window: the routers of its parts."""

from __future__ import annotations

from fastapi import APIRouter

from smartcustoms.singlewindow.parts import modules

router = APIRouter()
for _module in modules("api"):
    router.include_router(_module.router)
