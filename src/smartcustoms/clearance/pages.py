"""Web console of the clearance core: server-rendered pages for officers and traders, served by the API process.

Sign-in sets an HttpOnly, SameSite=Strict `sc_session` cookie holding a console token (the API's
`principal` dependency reads the same cookie); every form carries a CSRF token derived from that
session token with HMAC and is checked on every POST. All text goes through gettext; the language
comes from `?lang=`, the `sc_lang` cookie, `Accept-Language`, then the user's stored language.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy import select

from smartcustoms.clearance import service, views
from smartcustoms.clearance.lifecycle import Action, Lane, Status, allowed_actions
from smartcustoms.clearance.schema import DecisionIn, InspectionIn
from smartcustoms.platform import auth, i18n, web
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n.validation import validation_problems
from smartcustoms.platform.store import TokenRow
from smartcustoms.platform.web import SESSION_COOKIE, forget_tokens, principal

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(i18n.__file__).resolve().parent.parent / "static"
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
LANG_COOKIE = "sc_lang"
LOGIN_COOKIE = "sc_login"
SESSION_HOURS = 12
PAGE_SIZE = 50
DECIDERS = frozenset({Role.OFFICER, Role.ADMIN})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a message for extraction; it is translated where it is shown."""
    return message


LABELS: dict[str, dict[str, str]] = {
    "status": {
        Status.DRAFT: N_("Draft"),
        Status.SUBMITTED: N_("Submitted"),
        Status.ASSESSED: N_("Assessed"),
        Status.UNDER_CHECK: N_("Under documentary check"),
        Status.UNDER_INSPECTION: N_("Under inspection"),
        Status.HELD: N_("Held"),
        Status.AMENDMENT_REQUESTED: N_("Amendment requested"),
        Status.AMENDED: N_("Amended"),
        Status.RELEASED: N_("Released"),
        Status.REJECTED: N_("Rejected"),
    },
    "action": {
        Action.SUBMIT: N_("Submitted"),
        Action.ASSESS: N_("Duty and tax assessed"),
        Action.ROUTE_C1: N_("Routed to lane C1"),
        Action.ROUTE_C2: N_("Routed to lane C2"),
        Action.ROUTE_C3: N_("Routed to lane C3"),
        Action.ESCALATE: N_("Escalated to inspection"),
        Action.HOLD: N_("Held"),
        Action.REQUEST_AMENDMENT: N_("Amendment requested"),
        Action.AMEND: N_("Amended"),
        Action.RELEASE: N_("Released"),
        Action.REJECT: N_("Rejected"),
        Action.RESUME: N_("Resumed"),
        Action.RECORD_INSPECTION: N_("Inspection recorded"),
        Action.FLAG: N_("Findings raised"),
    },
    "decision": {
        Action.RELEASE: N_("Release"),
        Action.HOLD: N_("Hold"),
        Action.REQUEST_AMENDMENT: N_("Request amendment"),
        Action.REJECT: N_("Reject"),
        Action.ESCALATE: N_("Escalate to inspection"),
        Action.RESUME: N_("Resume check"),
    },
    "lane": {
        Lane.C1: N_("C1 · automatic release"),
        Lane.C2: N_("C2 · documentary check"),
        Lane.C3: N_("C3 · physical inspection"),
    },
    "role": {
        Role.TRADER: N_("Trader"),
        Role.BROKER: N_("Broker"),
        Role.CARRIER: N_("Carrier"),
        Role.OFFICER: N_("Customs officer"),
        Role.ANALYST: N_("Risk analyst"),
        Role.AGENCY: N_("Agency"),
        Role.PARTNER: N_("Partner administration"),
        Role.ADMIN: N_("Administrator"),
    },
    "stage": {
        "submission_to_lane": N_("Submission to lane"),
        "lane_to_release": N_("Lane to release"),
        "submission_to_release": N_("Submission to release"),
    },
    "inspection": {"found": N_("Irregularity found"), "not_found": N_("Nothing found")},
    "type": {"import": N_("Import"), "export": N_("Export")},
    "mode": {
        "sea": N_("Sea"),
        "rail": N_("Rail"),
        "road": N_("Road"),
        "air": N_("Air"),
        "post": N_("Post"),
        "fixed": N_("Fixed installation"),
        "inland_water": N_("Inland waterway"),
    },
}
DECISION_ORDER = (Action.RELEASE, Action.HOLD, Action.REQUEST_AMENDMENT, Action.REJECT, Action.ESCALATE, Action.RESUME)

# ---------------------------------------------------------------------------------------------- i18n plumbing

_translations: ContextVar[Any] = ContextVar("console_translations", default=None)
_language_of_page: ContextVar[str] = ContextVar("console_language", default=i18n.DEFAULT)


def _(message: str) -> str:
    """Translate `message` into the language of the page being built."""
    tr = _translations.get()
    return str(tr.gettext(message)) if tr is not None else message


def _ngettext(singular: str, plural: str, n: int) -> str:
    tr = _translations.get()
    if tr is None:
        return singular if n == 1 else plural
    return str(tr.ngettext(singular, plural, n))


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
env.install_gettext_callables(_, _ngettext, newstyle=True)  # type: ignore[attr-defined]


def tr(text: str | None) -> str:
    """A message made outside the page (problem, lane reason, step, stored in English) in the page's language."""
    return i18n.translate(text, _language_of_page.get()) if text else ""


def tr_joined(text: str | None) -> str:
    """A system note made of messages joined with '; ' (a lane's reasons), each translated."""
    if not text:
        return ""
    lang = _language_of_page.get()
    if lang == i18n.DEFAULT:
        return text
    return "；".join(i18n.translate(part, lang) for part in text.split("; "))


env.filters["tr"] = tr
env.filters["tr_joined"] = tr_joined


# ---------------------------------------------------------------------------------------------- extension points
# Other slices add pages in the console layout, links in its menu, and panels on the declaration page.


@dataclass(frozen=True)
class NavLink:
    href: str
    text: str
    """English text, marked for translation with N_ by the slice that registers it."""
    roles: frozenset[Role]


@dataclass(frozen=True)
class Panel:
    """A section on the declaration page: `build` returns its template context, or None to show nothing."""

    template: str
    build: Any
    """Callable (session, who, detail dict) -> dict | None, run in the page's transaction."""


NAV_LINKS: list[NavLink] = []
PANELS: list[Panel] = []


def add_templates(directory: Path) -> None:
    """Let a slice's templates (which may extend "base.html" and import "_macros.html") be found."""
    loader = env.loader
    assert isinstance(loader, FileSystemLoader)
    path = str(directory)
    if path not in loader.searchpath:
        loader.searchpath.append(path)


def add_nav_link(href: str, text: str, roles: set[Role] | frozenset[Role]) -> None:
    if all(link.href != href for link in NAV_LINKS):
        NAV_LINKS.append(NavLink(href, text, frozenset(roles)))


def add_panel(template: str, build: Any) -> None:
    if all(p.template != template for p in PANELS):
        PANELS.append(Panel(template, build))


def console_page(request: Request) -> Page | Response:
    """The page of the signed-in user, or a redirect to sign-in: for other slices' console pages."""
    return _page(request)


def public_page(request: Request) -> Page:
    """A page anyone may open (signed in or not), in the console layout: e.g. document verification."""
    page = _page(request, anonymous=True)
    assert isinstance(page, Page)
    return page


def refuse_csrf(page: Page) -> Response:
    return _refuse_csrf(page)


def problems_page(page: Page, exc: DomainError) -> Response:
    return _problems_page(page, exc)


def csrf_ok(request: Request, given: str) -> bool:
    return _csrf_ok(request, given)


def label(kind: str, value: Any) -> str:
    """The translated name of a status, action, lane, role... or the raw value when none is known."""
    if value is None:
        return ""
    msg = LABELS.get(kind, {}).get(str(value))
    return _(msg) if msg else str(value)


# ---------------------------------------------------------------------------------------------- sessions, CSRF


def _secret() -> bytes:
    return os.environ.get("SMARTCUSTOMS_SECRET_KEY", "smartcustoms-console-csrf").encode()


def csrf_token(session_token: str) -> str:
    """The per-session CSRF token: an HMAC of the (HttpOnly, unreadable to scripts) session token."""
    return hmac.new(_secret(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def _csrf_ok(request: Request, given: str) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    return bool(token and given) and hmac.compare_digest(csrf_token(token or ""), given)


def _safe_next(target: str | None) -> str:
    """Only local console paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


@dataclass
class Page:
    """What every page needs: the request, the signed-in user, the language and its formatter."""

    request: Request
    who: Principal | None
    lang: str
    set_lang: bool = False
    fmt: i18n.Formatter = field(init=False)

    def __post_init__(self) -> None:
        self.fmt = i18n.Formatter(self.lang)
        _translations.set(i18n.translations(self.lang))
        _language_of_page.set(self.lang)

    @property
    def is_officer(self) -> bool:
        return self.who is not None and self.who.role in DECIDERS

    @property
    def is_customs(self) -> bool:
        return self.who is not None and self.who.is_customs

    def switch_url(self, lang: str) -> str:
        path, params = self.request.url.path, dict(self.request.query_params)
        if self.request.method != "GET":
            # a page answering a form post: switch on the page the form was on (the post URL has no GET)
            referer = urlsplit(self.request.headers.get("referer", ""))
            path, params = _safe_next(referer.path), dict(parse_qsl(referer.query))
        params["lang"] = lang
        params.pop("done", None)
        return f"{path}?{urlencode(params)}"

    def context(self) -> dict[str, Any]:
        token = self.request.cookies.get(SESSION_COOKIE)
        return {
            "page": self,
            "who": self.who,
            "lang": self.lang,
            "languages": i18n.LANGUAGES,
            "csrf": csrf_token(token) if token and self.who else "",
            "fmt": self.fmt,
            "label": label,
            "path": self.request.url.path,
            "nav_links": [link for link in NAV_LINKS if self.who is not None and self.who.role in link.roles],
        }

    def render(self, name: str, status_code: int = 200, **ctx: Any) -> Response:
        html = env.get_template(name).render(**self.context(), **ctx)
        return self.finish(HTMLResponse(html, status_code=status_code))

    def finish(self, response: Response) -> Response:
        if self.set_lang:
            response.set_cookie(LANG_COOKIE, self.lang, max_age=365 * 86400, samesite="lax", path="/")
        response.headers.update(SECURITY_HEADERS)
        return response


def _language(request: Request, who: Principal | None) -> tuple[str, bool]:
    asked = i18n.normalise(request.query_params.get("lang"))
    if asked:
        return asked, True
    return (
        i18n.choose(
            [
                request.cookies.get(LANG_COOKIE),
                i18n.from_accept_language(request.headers.get("accept-language")),
                who.language if who else None,
            ]
        ),
        False,
    )


def _page(request: Request, *, anonymous: bool = False) -> Page | Response:
    """The page of a signed-in user, or a redirect to the sign-in page."""
    who: Principal | None = None
    if request.cookies.get(SESSION_COOKIE):
        try:
            who = principal(request)
        except DomainError:
            who = None
    lang, set_lang = _language(request, who)
    page = Page(request, who, lang, set_lang)
    if who is None and not anonymous:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page.finish(RedirectResponse(f"/console/login?{urlencode({'next': target})}", status_code=303))
    return page


def _refuse_csrf(page: Page) -> Response:
    return page.render(
        "error.html",
        status_code=403,
        title=_("Form expired"),
        problems=[
            Problem("csrf", (), _("The form was not sent from this console or has expired. Reload the page and retry."))
        ],
    )


def _problems_page(page: Page, exc: DomainError) -> Response:
    titles = {401: _("Sign-in required"), 403: _("Not allowed"), 404: _("Not found"), 409: _("Not possible now")}
    return page.render(
        "error.html", status_code=exc.status, title=titles.get(exc.status, _("Error")), problems=exc.problems
    )


# ---------------------------------------------------------------------------------------------- routes

router = APIRouter(include_in_schema=False)
console = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's shared CSS and JS (a fixed list: nothing else on disk is reachable)."""
    return web.static_file(STATIC, name, STATIC_FILES)


@console.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    page = _page(request, anonymous=True)
    assert isinstance(page, Page)
    if page.who is not None:
        return page.finish(RedirectResponse(_safe_next(next), status_code=303))
    return _login_page(page, next, problems=[], status=200)


def _login_page(page: Page, next: str | None, problems: list[Problem], status: int, username: str = "") -> Response:
    nonce = secrets.token_urlsafe(24)
    response = page.render(
        "login.html", status_code=status, nonce=nonce, next=_safe_next(next), problems=problems, username=username
    )
    secure = page.request.url.scheme == "https"
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict", secure=secure, path="/console/login"
    )
    return response


@console.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    nonce: str = Form(""),
    next: str = Form("/console"),
) -> Response:
    page = _page(request, anonymous=True)
    assert isinstance(page, Page)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not (cookie and nonce and hmac.compare_digest(cookie, nonce)):
        return _login_page(page, next, [Problem("csrf", (), _("The sign-in form expired; please try again."))], 403)
    if not username or not password or len(username) > 64 or len(password) > 256:
        return _login_page(page, next, [Problem("bad_credentials", (), _("Wrong username or password."))], 401)
    try:
        with unit_of_work() as session:
            _who, token = auth.sign_in(session, username, password)
    except DomainError:
        return _login_page(
            page, next, [Problem("bad_credentials", (), _("Wrong username or password."))], 401, username
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return page.finish(response)


@console.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    if not _csrf_ok(request, csrf):
        return _refuse_csrf(page)
    token = request.cookies.get(SESSION_COOKIE, "")
    with unit_of_work() as session:
        row = session.scalar(select(TokenRow).where(TokenRow.token_hash == auth.hash_token(token)))
        if row is not None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
    forget_tokens()
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return page.finish(response)


@console.get("")
def dashboard(request: Request) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not page.who.is_customs:
        return page.finish(RedirectResponse("/console/declarations", status_code=303))
    today = datetime.now(UTC).date()
    with unit_of_work() as session:
        counts = service.dashboard_counts(session, page.who, today)
        stats = service.release_time_stats(session, page.who)
        waiting = {lane: len(service.officer_queue(session, page.who, lane, limit=500)) for lane in (Lane.C2, Lane.C3)}
    lanes = [(lane.value, counts["lane"].get(lane.value, 0)) for lane in Lane]
    statuses = [(s.value, counts["status"][s.value]) for s in Status if counts["status"].get(s.value)]
    stages = [
        (name, [(lane, stats.get(name, {}).get(lane)) for lane in ("C1", "C2", "C3", "all")])
        for name in ("submission_to_lane", "lane_to_release", "submission_to_release")
    ]
    return page.render(
        "dashboard.html",
        today=today,
        lanes=lanes,
        total_today=sum(n for _lane, n in lanes),
        statuses=statuses,
        stages=stages,
        waiting=waiting,
    )


def _row(row: Any) -> dict[str, Any]:
    out = views.summary(row)
    out["importer_name"] = (row.payload.get("importer") or {}).get("name", "")
    out["first_reason"] = row.lane_reasons[0] if row.lane_reasons else ""
    out["reason_count"] = len(row.lane_reasons or [])
    return out


@console.get("/queue")
def queue(request: Request, lane: str | None = None) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    chosen = lane if lane in (Lane.C2.value, Lane.C3.value) else None
    try:
        with unit_of_work() as session:
            rows = [_row(r) for r in service.officer_queue(session, page.who, chosen, limit=200)]
    except DomainError as exc:
        return _problems_page(page, exc)
    return page.render("queue.html", rows=rows, lane=chosen)


@console.get("/declarations")
def declarations(
    request: Request, status: str | None = None, lane: str | None = None, offset: int = 0, q: str | None = None
) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    status = status if status in {s.value for s in Status} else None
    lane = lane if lane in {la.value for la in Lane} else None
    offset = max(0, offset)
    reference = (q or "").strip().upper()
    try:
        with unit_of_work() as session:
            if reference:
                try:
                    found = service.get_row(session, page.who, reference)
                    return page.finish(RedirectResponse(f"/console/declarations/{found.reference}", status_code=303))
                except DomainError:
                    pass
            filters = service.Filters(status=status, lane=lane)
            rows, total = service.list_rows(session, page.who, filters, limit=PAGE_SIZE, offset=offset)
            items = [_row(r) for r in rows]
    except DomainError as exc:
        return _problems_page(page, exc)

    def link(at: int) -> str:
        params = {k: v for k, v in {"status": status, "lane": lane, "offset": at}.items() if v}
        return "/console/declarations" + (f"?{urlencode(params)}" if params else "")

    return page.render(
        "declarations.html",
        rows=items,
        total=total,
        offset=offset,
        status=status,
        lane=lane,
        statuses=[s.value for s in Status],
        lanes=[la.value for la in Lane],
        prev_url=link(max(0, offset - PAGE_SIZE)) if offset else None,
        next_url=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
        not_found=reference if reference else None,
    )


def _detail(session: Any, who: Principal, reference: str) -> dict[str, Any]:
    """Everything the detail page shows, read in one transaction."""
    row, events, inspections, versions = service.timeline(session, who, reference)
    d = views.detail(row)
    payload = row.payload
    assessed = {i["line_no"]: i for i in (row.assessment.get("items") or [])}
    d["items"] = [dict(item, assessment=assessed.get(item["line_no"], {})) for item in payload.get("items", [])]
    d["parties"] = [
        (N_("Declarant"), payload.get("declarant")),
        (N_("Importer"), payload.get("importer")),
        (N_("Exporter"), payload.get("exporter")),
        (N_("Seller"), payload.get("seller")),
        (N_("Broker"), payload.get("broker")),
    ]
    d["events"] = [views.event(e) for e in events]
    d["inspections"] = [views.inspection(i) for i in inspections]
    d["versions"] = [views.version(v) for v in versions]
    d["money"] = {
        "customs_value": row.customs_value,
        "duty": row.duty,
        "vat": row.vat,
        "additional_duty": row.additional_duty,
        "total": row.total,
    }
    allowed = allowed_actions(Status(row.status))
    d["decisions"] = [a.value for a in DECISION_ORDER if a in allowed]
    d["can_inspect"] = Action.RECORD_INSPECTION in allowed
    d["panels"] = []
    for panel in PANELS:
        context = panel.build(session, who, d)
        if context is not None:
            d["panels"].append({"template": panel.template, "context": context})
    return d


def _detail_page(page: Page, reference: str, *, status_code: int = 200, **extra: Any) -> Response:
    assert page.who is not None
    try:
        with unit_of_work() as session:
            d = _detail(session, page.who, reference)
    except DomainError as exc:
        return _problems_page(page, exc)
    done = page.request.query_params.get("done")
    done_label = label("action", done) if done in LABELS["action"] else None
    return page.render("detail.html", status_code=status_code, d=d, done=done_label, **extra)


@console.get("/declarations/{reference}")
def detail(request: Request, reference: str) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    return _detail_page(page, reference)


@console.post("/declarations/{reference}/decision")
def decide(
    request: Request, reference: str, csrf: str = Form(""), action: str = Form(""), reason: str = Form("")
) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not _csrf_ok(request, csrf):
        return _refuse_csrf(page)
    form = {"action": action, "reason": reason}
    try:
        decision = DecisionIn(action=action, reason=reason.strip() or None)
        with unit_of_work() as session:
            service.decide(session, page.who, reference, decision, remote_addr=_addr(request))
    except ValidationError as exc:
        return _detail_page(
            page, reference, status_code=422, problems=validation_problems(exc.errors(), page.lang), form=form
        )
    except DomainError as exc:
        return _detail_page(page, reference, status_code=exc.status, problems=exc.problems, form=form)
    return page.finish(RedirectResponse(f"/console/declarations/{reference}?done={action}", status_code=303))


@console.post("/declarations/{reference}/inspection")
def inspect(
    request: Request,
    reference: str,
    csrf: str = Form(""),
    result: str = Form(""),
    findings: str = Form(""),
    additional_duty: str = Form(""),
) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not _csrf_ok(request, csrf):
        return _refuse_csrf(page)
    form = {"result": result, "findings": findings, "additional_duty": additional_duty}
    try:
        amount = Decimal(additional_duty.replace(",", "").strip() or "0")
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        problem = Problem("not_a_number", ("additional_duty",), _("Additional duty must be a number."))
        return _detail_page(page, reference, status_code=422, problems=[problem], insp_form=form)
    try:
        outcome = InspectionIn(result=result, findings=findings.strip() or None, additional_duty=amount)
        with unit_of_work() as session:
            service.record_inspection(session, page.who, reference, outcome, remote_addr=_addr(request))
    except ValidationError as exc:
        return _detail_page(
            page, reference, status_code=422, problems=validation_problems(exc.errors(), page.lang), insp_form=form
        )
    except DomainError as exc:
        return _detail_page(page, reference, status_code=exc.status, problems=exc.problems, insp_form=form)
    return page.finish(
        RedirectResponse(f"/console/declarations/{reference}?done={Action.RECORD_INSPECTION.value}", status_code=303)
    )


@console.get("/declarations/{reference}/release-note")
def release_note(request: Request, reference: str) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    try:
        with unit_of_work() as session:
            note = service.release_note(session, page.who, reference)
    except DomainError as exc:
        return _problems_page(page, exc)
    return page.render("release_note.html", note=note)


def _addr(request: Request) -> str | None:
    return request.client.host if request.client else None


router.include_router(console)
