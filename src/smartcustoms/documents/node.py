"""A documents-only node: the documents HTTP API without the clearance core, risk or X-ray slices.

For an issuing body that runs no customs clearance (a chamber of commerce, a carrier, or a partner
customs' document service): it issues, logs, publishes its key registry and log, and pushes certificates
to partners. Start it with `uvicorn smartcustoms.documents.node:create_app --factory`; the full platform
(`smartcustoms.api:create_app`) serves the same routes.
"""

from __future__ import annotations

from fastapi import FastAPI

from smartcustoms.documents import api
from smartcustoms.platform.settings import get_settings
from smartcustoms.platform.web import BodyLimit, install_error_handlers


def create_app() -> FastAPI:
    app = FastAPI(title="Smart Customs documents node", version="0.1.0", docs_url="/docs")
    install_error_handlers(app)
    app.include_router(api.router)
    app.add_middleware(BodyLimit, max_bytes=get_settings().max_body_bytes)
    return app
