"""Console pages of permits: an agency's permits (usage, issue and revoke forms), one permit with its
history, the requirements registry (administrators edit it), and a panel on the declaration page."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from smartcustoms.clearance import pages
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.singlewindow.permits import service
from smartcustoms.singlewindow.permits.model import DIRECTIONS, PermitInput

router = APIRouter(prefix="/console/permits", include_in_schema=False)
ISSUERS = frozenset({Role.AGENCY, Role.ADMIN})

pages.add_templates(Path(__file__).resolve().parent / "templates")
pages.add_nav_link("/console/permits", pages.N_("Permits"), {Role.AGENCY, Role.OFFICER, Role.ANALYST, Role.ADMIN})
pages.add_panel("permits/panel.html", service.declaration_panel)


def _types(session: Any, who: Principal) -> list[tuple[str, str, str]]:
    """(agency, permit type, direction) the registry lets the caller issue."""
    seen = {(r.agency, r.permit_type, r.direction) for r in service.list_requirements(session)}
    return sorted(t for t in seen if who.role is Role.ADMIN or t[0] == who.party_id)


def _list_page(page: pages.Page, *, status_code: int = 200, **extra: Any) -> Response:
    assert page.who is not None
    try:
        with unit_of_work() as session:
            rows, total = service.list_permits(session, page.who, limit=200)
            permits = [service.permit_view(r) for r in rows]
            types = _types(session, page.who) if page.who.role in ISSUERS else []
    except DomainError as exc:
        return pages.problems_page(page, exc)
    can_issue = page.who.role in ISSUERS
    return page.render(
        "permits/list.html",
        status_code=status_code,
        permits=permits,
        total=total,
        can_issue=can_issue,
        types=types,
        directions=DIRECTIONS,
        today=date.today(),
        **extra,
    )


@router.get("")
def permits_page(request: Request) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    return _list_page(page, done=request.query_params.get("done"))


def _decimal(text: str, field: str, problems: list[Problem]) -> Decimal | None:
    text = text.replace(",", "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
        if not value.is_finite():
            raise InvalidOperation
        return value
    except InvalidOperation:
        problems.append(Problem("not_a_number", (field,), pages._("Not a number: ") + text))
        return None


def _date(text: str, field: str, problems: list[Problem]) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        problems.append(Problem("invalid_date", (field,), pages._("Not a date (YYYY-MM-DD): ") + text))
        return None


@router.post("")
async def issue(request: Request) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    assert page.who is not None
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not pages.csrf_ok(request, form.get("csrf", "")):
        return pages.refuse_csrf(page)
    problems: list[Problem] = []
    kind = form.get("kind", "")
    agency, _sep, permit_type = kind.partition("/")
    p = PermitInput(
        number=form.get("number", ""),
        permit_type=permit_type,
        direction=form.get("direction", ""),
        holder=form.get("holder", ""),
        holder_name=form.get("holder_name"),
        codes=[c for c in re.split(r"[\s,;]+", form.get("codes", "")) if c],
        valid_from=_date(form.get("valid_from", ""), "valid_from", problems),
        valid_to=_date(form.get("valid_to", ""), "valid_to", problems),
        quantity_allowance=_decimal(form.get("quantity_allowance", ""), "quantity_allowance", problems),
        quantity_unit=form.get("quantity_unit"),
        value_allowance=_decimal(form.get("value_allowance", ""), "value_allowance", problems),
        value_currency=form.get("value_currency"),
        conditions=form.get("conditions"),
    )
    if problems:
        return _list_page(page, status_code=422, problems=problems, form=form)
    try:
        with unit_of_work() as session:
            row = service.issue_permit(session, page.who, p, agency=agency or None)
            number = row.number
    except DomainError as exc:
        return _list_page(page, status_code=exc.status, problems=exc.problems, form=form)
    return page.finish(RedirectResponse(f"/console/permits/{number}?done=issued", status_code=303))


@router.get("/requirements")
def requirements_page(request: Request, code: str | None = None) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    return _requirements_page(page, code, done=request.query_params.get("done"))


def _requirements_page(page: pages.Page, code: str | None, *, status_code: int = 200, **extra: Any) -> Response:
    code = (code or "").strip()[:14] or None
    with unit_of_work() as session:
        reqs = service.list_requirements(session, code=code)
        version = service.registry_version(session)
    return page.render(
        "permits/requirements.html",
        status_code=status_code,
        requirements=reqs,
        code=code,
        version=version,
        can_edit=page.who is not None and page.who.role is Role.ADMIN,
        directions=DIRECTIONS,
        **extra,
    )


@router.post("/requirements")
def add_requirement(
    request: Request,
    csrf: str = Form(""),
    code_prefix: str = Form(""),
    direction: str = Form(""),
    agency: str = Form(""),
    permit_type: str = Form(""),
    title: str = Form(""),
    valid_from: str = Form(""),
    valid_to: str = Form(""),
    legal_basis: str = Form(""),
) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    form = {
        "code_prefix": code_prefix,
        "direction": direction,
        "agency": agency,
        "permit_type": permit_type,
        "title": title,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "legal_basis": legal_basis,
    }
    try:
        with unit_of_work() as session:
            service.add_requirement(session, page.who, form)
    except DomainError as exc:
        return _requirements_page(page, None, status_code=exc.status, problems=exc.problems, form=form)
    return page.finish(RedirectResponse("/console/permits/requirements?done=added", status_code=303))


@router.post("/requirements/{req_id}/delete")
def delete_requirement(request: Request, req_id: int, csrf: str = Form("")) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            service.delete_requirement(session, page.who, req_id)
    except DomainError as exc:
        return _requirements_page(page, None, status_code=exc.status, problems=exc.problems)
    return page.finish(RedirectResponse("/console/permits/requirements?done=deleted", status_code=303))


def _detail_page(page: pages.Page, number: str, *, status_code: int = 200, **extra: Any) -> Response:
    assert page.who is not None
    try:
        with unit_of_work() as session:
            row = service.get_permit(session, page.who, number)
            permit = service.permit_view(row)
            hist = service.history(session, row)
            uses = service.usage(session, row)
            can_manage = page.who.role is Role.ADMIN or (
                page.who.role is Role.AGENCY and page.who.party_id == row.agency
            )
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return page.render(
        "permits/detail.html",
        status_code=status_code,
        p=permit,
        history=hist,
        usage=uses,
        can_manage=can_manage,
        done=page.request.query_params.get("done"),
        **extra,
    )


@router.get("/{number}")
def permit_page(request: Request, number: str) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    return _detail_page(page, number)


@router.post("/{number}/revoke")
def revoke(request: Request, number: str, csrf: str = Form(""), reason: str = Form("")) -> Response:
    page = pages.console_page(request)
    if not isinstance(page, pages.Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            service.revoke_permit(session, page.who, number, reason)
    except DomainError as exc:
        return _detail_page(page, number, status_code=exc.status, problems=exc.problems)
    return page.finish(RedirectResponse(f"/console/permits/{number}?done=revoked", status_code=303))
