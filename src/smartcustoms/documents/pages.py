"""Console pages of the documents slice: public document verification (anyone, signed in or not, drops a
wrapped document and sees the three checks with their reasons) and, for officers, the partner logs this
node mirrors with their recorded alarms.

The page holds no logic: its script posts the file to the public `POST /documents/verify` and shows
the verdict. Scripts and styles are served from this slice (the console's CSP allows only 'self').
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from smartcustoms.clearance import pages
from smartcustoms.documents import exchange, store
from smartcustoms.platform import web
from smartcustoms.platform.auth import Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Forbidden, Problem
from smartcustoms.platform.i18n import t

HERE = Path(__file__).resolve().parent
STATIC = {"verify.js": "text/javascript", "verify.css": "text/css"}
VERIFY_PATH = "/console/documents/verify"

pages.add_templates(HERE / "templates")
pages.add_nav_link(VERIFY_PATH, pages.N_("Verify a document"), set(Role))
PARTNERS_PATH = "/console/documents/partners"
WATCHERS = {Role.ADMIN, Role.OFFICER, Role.ANALYST}
pages.add_nav_link(PARTNERS_PATH, pages.N_("Partner logs"), WATCHERS)
pages.add_panel("documents/panel.html", exchange.preference_panel)

router = APIRouter(include_in_schema=False, tags=["documents pages"])


def _public_page(request: Request) -> pages.Page:
    """The console page for anyone: signed-in users keep their menu, anonymous visitors get the bare layout."""
    return pages.public_page(request)


@router.get(VERIFY_PATH)
def verify_page(request: Request) -> Response:
    page = _public_page(request)
    if not isinstance(page, pages.Page):
        return page
    return page.render("documents/verify.html")


def _partners_page(page: pages.Page, *, status_code: int = 200, **extra: object) -> Response:
    assert page.who is not None
    return page.render(
        "documents/partners.html",
        status_code=status_code,
        partners=exchange.partners(),
        alarms=exchange.alarms(limit=50),
        can_sync=page.who.role is Role.ADMIN,
        **extra,
    )


def _watcher(request: Request) -> pages.Page | Response:
    page = pages.console_page(request)
    if isinstance(page, pages.Page) and (page.who is None or page.who.role not in WATCHERS):
        return pages.problems_page(
            page, Forbidden(Problem("forbidden_role", (), t("Partner logs are for customs officers")))
        )
    return page


@router.get(PARTNERS_PATH)
def partners_page(request: Request) -> Response:
    """Followed partner logs with the state of their last sync, and the recorded alarms (officers)."""
    page = _watcher(request)
    if not isinstance(page, pages.Page):
        return page
    return _partners_page(page)


@router.post(PARTNERS_PATH + "/sync")
def sync_now(request: Request, csrf: str = Form(""), issuer: str = Form("")) -> Response:
    """Admin: sync one followed partner issuer now; an alarm shows in the list below."""
    page = _watcher(request)
    if not isinstance(page, pages.Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    if page.who.role is not Role.ADMIN:
        return pages.problems_page(page, Forbidden(Problem("forbidden_role", (), t("Only an administrator syncs"))))
    with unit_of_work() as session:
        row = session.get(store.PartnerRow, issuer)
        base_url = row.base_url if row else None
    if base_url is None:
        return _partners_page(
            page,
            status_code=404,
            problems=[Problem("unknown_partner", ("issuer",), t("{issuer} is not followed", issuer=issuer))],
        )
    try:
        result = exchange.sync_from(page.who, base_url, issuer)
    except DomainError as exc:
        return _partners_page(page, status_code=exc.status, problems=exc.problems)
    problems = [Problem("partner_log_alarm", ("issuer",), a["reason"]) for a in result["alarms"]] + [
        Problem("partner_unreachable", ("issuer",), e["reason"]) for e in result["errors"]
    ]
    if problems:
        return _partners_page(page, status_code=409, problems=problems)
    new = sum(int(s["new"]) for s in result["synced"])
    return _partners_page(page, done=pages._("Synced: new entries mirrored: ") + str(new))


@router.get("/documents/verify")
def old_verify_page() -> RedirectResponse:
    """The page's former address (links already handed out keep working)."""
    return RedirectResponse(VERIFY_PATH, status_code=308)


@router.get("/documents/static/{name}")
def static(name: str) -> Response:
    """The page's script and style (a fixed list: nothing else on disk is reachable)."""
    return web.static_file(HERE / "static", name, STATIC)
