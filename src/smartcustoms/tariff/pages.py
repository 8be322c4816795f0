"""Console page for traders (and officers): describe the goods, see ranked tariff codes with confidence, the
nomenclature path and the words behind each, duty rate and permits needed, answer the progressive questions,
confirm a code. Plain forms (works without JavaScript); the session lives in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from smartcustoms.clearance import pages
from smartcustoms.clearance.pages import N_
from smartcustoms.platform.auth import Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from smartcustoms.tariff import service

router = APIRouter(prefix="/console/tariff", include_in_schema=False)

pages.add_templates(Path(__file__).resolve().parent / "templates")
pages.add_nav_link("/console/tariff", N_("Classify goods"), set(Role))


def _rate_text(line: Any) -> str:
    return line.general_rate.text if line is not None and line.general_rate is not None else ""


def _view(st: Any) -> dict[str, Any]:
    """What the page shows of a session: the leading candidates explained, with rate and permits."""
    from smartcustoms.tariff.classifier import service as classifier

    cands = classifier.explained(st)
    permits: dict[str, list[dict[str, Any]]] = {}
    for req in service.permit_requirements([c.code for c in cands]):
        permits.setdefault(req["code"], []).append(req)
    rows = []
    for c in cands:
        line = classifier.line_of(st.schedule, c.code)
        rows.append(
            {
                "code": c.code,
                "confidence": c.confidence,
                "description": (line.description_en or line.description_zh) if line else "",
                "path": c.path,
                "matched": c.matched,
                "terms": c.terms,
                "rate": _rate_text(line),
                "unit": line.unit if line else None,
                "requirements": list(line.requirements) if line else [],
                "permits": permits.get(c.code, []),
            }
        )
    return {"state": st, "candidates": rows}


@router.get("")
def start_page(request: Request) -> Response:
    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    return page.render("tariff/classify.html", text="")


@router.post("/sessions")
def start(request: Request, text: str = Form(""), schedule: str = Form("hs"), csrf: str = Form("")) -> Response:
    from smartcustoms.tariff.classifier import service as classifier

    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            st = classifier.start_session(session, text, schedule, owner=page.who.username)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return RedirectResponse(f"/console/tariff/sessions/{st.id}", status_code=303)


@router.get("/sessions/{sid}")
def session_page(request: Request, sid: str) -> Response:
    from smartcustoms.tariff.classifier import service as classifier

    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    try:
        with unit_of_work(read_only=True) as session:
            st = classifier.session_result(session, sid, owner=page.who.username)
        view = _view(st)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return page.render("tariff/session.html", **view)


@router.post("/sessions/{sid}/answer")
def answer(
    request: Request, sid: str, question_id: str = Form(""), option: int = Form(-1), csrf: str = Form("")
) -> Response:
    from smartcustoms.tariff.classifier import service as classifier

    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            classifier.answer_session(session, sid, question_id, option, owner=page.who.username)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return RedirectResponse(f"/console/tariff/sessions/{sid}", status_code=303)


@router.post("/sessions/{sid}/confirm")
def confirm(request: Request, sid: str, code: str = Form(""), csrf: str = Form("")) -> Response:
    from smartcustoms.tariff.classifier import service as classifier

    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            classifier.confirm_session(session, page.who, sid, code or None)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return RedirectResponse(f"/console/tariff/sessions/{sid}", status_code=303)
