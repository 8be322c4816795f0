"""Console page: public document verification, in the console layout. Anyone (signed in or not) drops a
wrapped document and sees the three checks with their reasons.

The page holds no logic: its script posts the file to the public `POST /documents/verify` and shows
the verdict. Scripts and styles are served from this slice (the console's CSP allows only 'self').
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from smartcustoms.clearance import pages
from smartcustoms.platform.auth import Role

HERE = Path(__file__).resolve().parent
STATIC = {"verify.js": "text/javascript", "verify.css": "text/css"}
VERIFY_PATH = "/console/documents/verify"

pages.add_templates(HERE / "templates")
pages.add_nav_link(VERIFY_PATH, pages.N_("Verify a document"), set(Role))

router = APIRouter(include_in_schema=False, tags=["documents pages"])


def _public_page(request: Request) -> pages.Page | Response:
    """The console page for anyone: signed-in users keep their menu, anonymous visitors get the bare layout.
    Uses the console's anonymous page (as its sign-in page does) until it exposes a public extension point."""
    public = getattr(pages, "public_page", None)
    if public is not None:
        page: pages.Page | Response = public(request)
        return page
    return pages._page(request, anonymous=True)


@router.get(VERIFY_PATH)
def verify_page(request: Request) -> Response:
    page = _public_page(request)
    if not isinstance(page, pages.Page):
        return page
    return page.render("documents/verify.html")


@router.get("/documents/verify")
def old_verify_page() -> RedirectResponse:
    """The page's former address (links already handed out keep working)."""
    return RedirectResponse(VERIFY_PATH, status_code=308)


@router.get("/documents/static/{name}")
def static(name: str) -> Response:
    """The page's script and style (a fixed list: nothing else on disk is reachable)."""
    if name not in STATIC:
        return Response(status_code=404)
    response = FileResponse(HERE / "static" / name, media_type=STATIC[name])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
