"""Console pages in the console layout: the live map (zones, routes, corridors, vehicles, alerts) and a
trip's track replay with its alert history.

Templates under `templates/tracking/` (translated with `{% trans %}`); the map is drawn in SVG by a small
script served from this slice (`static/tracking.js`, with the page's words handed over as JSON by the
template) from `/tracking/map`, `/tracking/vehicles`, `/tracking/alerts` and the alert stream; no internet
map tiles: the base layer is a generated graticule. The API calls use the console session cookie.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smartcustoms.clearance import pages
from smartcustoms.clearance.pages import N_
from smartcustoms.platform import web
from smartcustoms.platform.auth import Role

HERE = Path(__file__).resolve().parent
STATIC = {"tracking.js": "text/javascript; charset=utf-8", "tracking.css": "text/css; charset=utf-8"}
VIEWERS = {Role.OFFICER, Role.ADMIN, Role.ANALYST, Role.CARRIER}

router = APIRouter(include_in_schema=False)

pages.add_templates(HERE / "templates")
pages.add_nav_link("/tracking/console", N_("Cargo monitoring"), VIEWERS)


@router.get("/tracking/console")
def console_page(request: Request) -> Response:
    """Live map and alert list (the data comes from the authenticated API)."""
    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    return page.render("tracking/console.html")


@router.get("/tracking/console/static/{name}")
def static(name: str) -> Response:
    """The pages' script and style sheet (a fixed list: nothing else on disk is reachable)."""
    return web.static_file(HERE / "static", name, STATIC)


@router.get("/tracking/console/trips/{trip_id}")
def trip_page(request: Request, trip_id: str) -> Response:
    """Track replay and alert history of one trip."""
    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    return page.render("tracking/trip.html", trip_id=trip_id)
