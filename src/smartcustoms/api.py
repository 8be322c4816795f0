"""The FastAPI application: mounts each slice's router and pages, maps errors to 4xx with every problem listed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from fastapi import FastAPI

from smartcustoms.clearance.fastpath import FilingFastPath
from smartcustoms.platform.runtime import settle_heap
from smartcustoms.platform.settings import get_settings
from smartcustoms.platform.slices import SLICES, slice_module
from smartcustoms.platform.web import BodyLimit, install_error_handlers

log = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    if get_settings().warm_start:
        try:
            from smartcustoms.clearance.service import tariff_index

            tariff_index(date.today())
        except Exception:
            log.warning("tariff index not loaded at start-up", exc_info=True)
        settle_heap()
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Smart Customs",
        version="0.1.0",
        description="Customs clearance platform: declarations, duty, lanes, risk, tariff, single window.",
        docs_url="/docs",
    )
    install_error_handlers(app)
    for name in SLICES:
        for module_name in ("api", "pages"):
            module = slice_module(name, module_name)
            if module is not None and hasattr(module, "router"):
                app.include_router(module.router)
    settings = get_settings()
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    # the busiest route, answered before the router (added last: runs first)
    app.add_middleware(FilingFastPath, max_bytes=settings.max_body_bytes)
    return app
