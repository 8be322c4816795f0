"""Risk pages in the clearance console: the risk queue, the targeting rule editor, the model registry
(with a cumulative gain chart drawn server-side as SVG, no JavaScript) and the post-clearance audit list.

Officers, analysts and admins read them; analysts and admins edit rules and switch the active model.
Every change is checked for CSRF, validated with the problems shown beside their fields, and audited.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from smartcustoms.clearance import pages
from smartcustoms.clearance.pages import N_, Page
from smartcustoms.platform.auth import Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Forbidden, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.risk import postclearance, service

TEMPLATES = Path(__file__).resolve().parent / "templates"
pages.add_templates(TEMPLATES)
pages.add_nav_link("/console/risk", N_("Risk"), {Role.OFFICER, Role.ANALYST, Role.ADMIN})

router = APIRouter(prefix="/console/risk", include_in_schema=False)


def risk_panel(session: Any, who: Any, d: dict[str, Any]) -> dict[str, Any] | None:
    """The declaration page's risk section (customs staff only): expected revenue and what decided."""
    if who is None or who.role not in service.READERS:
        return None
    codes = [str(i.get("tariff_code", "")) for i in d.get("items", [])]
    expected = service.current_yields().expected(float(d.get("risk_score") or 0.0), codes)
    versions = list(d.get("lane_versions") or [])
    rules = [v for v in versions if "@v" in v]
    return {
        "expected": expected,
        "models": [v for v in versions if v.startswith("selectivity-")],
        "rules": [(v, v.split("@v")[0]) for v in rules],
    }


pages.add_panel("risk/panel.html", risk_panel)


def _page(request: Request) -> Page | Response:
    page = pages.console_page(request)
    if isinstance(page, Page) and page.who is not None and page.who.role not in service.READERS:
        return pages.problems_page(
            page, Forbidden(Problem("forbidden_role", (), t("Risk pages are for customs staff")))
        )
    return page


def _addr(request: Request) -> str | None:
    return request.client.host if request.client else None


# ---------------------------------------------------------------------------------------------- queue


@router.get("")
def queue(request: Request, order: str = "score", lane: str | None = None) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    order = order if order in ("score", "revenue") else "score"
    lane = lane if lane in ("C2", "C3") else None
    try:
        with unit_of_work() as session:
            rows = service.risk_queue(session, page.who, order=order, lane=lane)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return page.render("risk/queue.html", rows=rows, order=order, lane=lane, tab="queue")


# ---------------------------------------------------------------------------------------------- rules

EMPTY_RULE = {
    "rule_id": "",
    "reason": "",
    "when": "",
    "lane": "",
    "score": "",
    "valid_from": "",
    "valid_to": "",
    "note": "",
}


def _field_errors(exc: DomainError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in exc.problems:
        key = str(p.path[0]) if p.path else ""
        sub = ".".join(str(x) for x in p.path[1:])
        out.setdefault(key, []).append(f"{sub}: {pages.tr(p.message)}" if sub else pages.tr(p.message))
    return out


@router.get("/rules")
def rules(request: Request) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    with unit_of_work() as session:
        items = service.list_rules(session, page.who)
    return page.render("risk/rules.html", rules=items, can_edit=page.who.role in service.EDITORS, tab="rules")


def _rule_form(
    page: Page,
    form: dict[str, Any],
    *,
    editing: str | None,
    history: list[dict[str, Any]] | None = None,
    exc: DomainError | None = None,
    status_code: int = 200,
    backtest: dict[str, Any] | None = None,
) -> Response:
    assert page.who is not None
    return page.render(
        "risk/rule_form.html",
        backtest=backtest,
        status_code=status_code,
        form=form,
        editing=editing,
        history=history or [],
        errors=_field_errors(exc) if exc else {},
        problems=exc.problems if exc else [],
        can_edit=page.who.role in service.EDITORS,
        lanes=service.LANES,
        tab="rules",
    )


@router.get("/rules/new")
def new_rule(request: Request) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    return _rule_form(page, dict(EMPTY_RULE), editing=None)


@router.get("/rules/{rule_id}")
def edit_rule(request: Request, rule_id: str) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    try:
        with unit_of_work() as session:
            history = service.rule_history(session, page.who, rule_id)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    form = {k: history[0][k] for k in EMPTY_RULE if k != "note"} | {"note": ""}
    return _rule_form(page, form, editing=rule_id, history=history)


def _save(request: Request, editing: str | None, fields: dict[str, str]) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, fields.pop("csrf", "")):
        return pages.refuse_csrf(page)
    form = service.as_mapping(fields)
    try:
        with unit_of_work() as session:
            saved = service.save_rule(session, page.who, form, editing=editing, remote_addr=_addr(request))
    except DomainError as exc:
        history: list[dict[str, Any]] = []
        if editing:
            try:
                with unit_of_work() as session:
                    history = service.rule_history(session, page.who, editing)
            except DomainError:
                history = []
        return _rule_form(page, fields, editing=editing, history=history, exc=exc, status_code=exc.status)
    target = f"/console/risk/rules/{quote(saved['rule_id'], safe='')}?done=saved"
    return page.finish(RedirectResponse(target, status_code=303))


class RuleFields(BaseModel):
    """The rule editor's form (create, save a version, backtest): text fields as typed."""

    csrf: str = ""
    editing: str = ""
    rule_id: str = ""
    reason: str = ""
    when: str = ""
    lane: str = ""
    score: str = ""
    valid_from: str = ""
    valid_to: str = ""
    note: str = ""

    def fields(self) -> dict[str, str]:
        return self.model_dump(exclude={"editing"})


@router.post("/rules")
def create_rule(request: Request, form: Annotated[RuleFields, Form()]) -> Response:
    return _save(request, None, form.fields())


@router.post("/rules/{rule_id}")
def update_rule(request: Request, rule_id: str, form: Annotated[RuleFields, Form()]) -> Response:
    return _save(request, rule_id, form.fields() | {"rule_id": rule_id})


@router.post("/backtest")
def backtest_rule(request: Request, form: Annotated[RuleFields, Form()]) -> Response:
    """The rule as typed, run over past declarations; the form comes back unchanged with the result."""
    editing = form.editing
    fields = {k: v for k, v in form.fields().items() if k in EMPTY_RULE}
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, form.csrf):
        return pages.refuse_csrf(page)
    if editing:
        fields["rule_id"] = editing
    history: list[dict[str, Any]] = []
    try:
        with unit_of_work(read_only=True) as session:
            if editing:
                history = service.rule_history(session, page.who, editing)
            result = service.backtest_rule(session, page.who, service.as_mapping(fields))
    except DomainError as exc:
        return _rule_form(page, fields, editing=editing or None, history=history, exc=exc, status_code=exc.status)
    return _rule_form(page, fields, editing=editing or None, history=history, backtest=result)


@router.post("/rules/{rule_id}/enabled")
def toggle_rule(
    request: Request, rule_id: str, csrf: str = Form(""), enabled: str = Form(""), note: str = Form("")
) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            service.set_enabled(session, page.who, rule_id, enabled == "1", note=note, remote_addr=_addr(request))
    except DomainError as exc:
        return pages.problems_page(page, exc)
    state = "enabled" if enabled == "1" else "disabled"
    return page.finish(RedirectResponse(f"/console/risk/rules?done={state}", status_code=303))


# ---------------------------------------------------------------------------------------------- models

CHART_W, CHART_H, PAD, LEFT = 380, 240, 36, 56


def gain_chart(curve: list[list[float]], baseline: list[list[float]] | None = None) -> dict[str, Any]:
    """Coordinates of the cumulative gain chart (share inspected -> share of frauds caught) for the SVG."""

    def pts(c: list[list[float]]) -> str:
        return " ".join(
            f"{LEFT + x * (CHART_W - LEFT - PAD):.1f},{CHART_H - PAD - y * (CHART_H - 2 * PAD):.1f}" for x, y in c
        )

    lift10 = next((y / x for x, y in curve if abs(x - 0.1) < 1e-6 and x > 0), None)
    ticks = [
        {"v": v, "x": LEFT + v * (CHART_W - LEFT - PAD), "y": CHART_H - PAD - v * (CHART_H - 2 * PAD)}
        for v in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return {
        "w": CHART_W,
        "h": CHART_H,
        "pad": PAD,
        "left": LEFT,
        "model": pts(curve),
        "baseline": pts(baseline) if baseline else "",
        "random": pts([[0.0, 0.0], [1.0, 1.0]]),
        "ticks": ticks,
        "lift10": lift10,
    }


@router.get("/models")
def models(request: Request) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    try:
        overview = service.models_overview(page.who)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    active_at = next((m.get("created_at", "") for m in overview["versions"] if m["active"]), None)
    for m in overview["versions"]:
        m["older"] = active_at is not None and m.get("created_at", "") < active_at
        v = m.get("validation") or {}
        m["chart"] = gain_chart(v["gain"], (v.get("baseline") or {}).get("gain")) if v.get("gain") else None
    return page.render("risk/models.html", overview=overview, can_edit=page.who.role in service.EDITORS, tab="models")


@router.post("/models/activate")
def activate(request: Request, csrf: str = Form(""), version: str = Form("")) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            service.activate_model(session, page.who, version, remote_addr=_addr(request))
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return page.finish(RedirectResponse("/console/risk/models?done=activated", status_code=303))


# ---------------------------------------------------------------------------------------------- audit


@router.get("/audit")
def audit_list(request: Request) -> Response:
    """The stored audit list (computed on request, not per view) and the audit results recorded."""
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    with unit_of_work(read_only=True) as session:
        stored = postclearance.latest_audit_list(session, page.who)
        results = postclearance.audit_results(session, page.who)
    return _audit_page(page, stored, results)


def _audit_page(
    page: Page,
    stored: dict[str, Any] | None,
    results: list[dict[str, Any]],
    *,
    form: dict[str, str] | None = None,
    exc: DomainError | None = None,
) -> Response:
    assert page.who is not None
    return page.render(
        "risk/audit.html",
        stored=stored,
        rows=(stored or {}).get("rows", []),
        results=results,
        form=form or {},
        errors=_field_errors(exc) if exc else {},
        problems=exc.problems if exc else [],
        can_edit=page.who.role in postclearance.AUDITORS,
        status_code=exc.status if exc else 200,
        tab="audit",
    )


@router.post("/audit/refresh")
def refresh_audit_list(request: Request, csrf: str = Form("")) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    try:
        with unit_of_work() as session:
            postclearance.refresh_audit_list(session, page.who)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return page.finish(RedirectResponse("/console/risk/audit?done=computed", status_code=303))


def parse_findings(text: str) -> list[dict[str, Any]]:
    """Lines of `REFERENCE [additional duty]` (space, tab, comma or semicolon between) as findings."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = [p for p in re.split(r"[\s,;]+", line.strip()) if p]
        if parts:
            out.append({"reference": parts[0], "additional_duty": parts[1] if len(parts) > 1 else "0"})
    return out


@router.post("/audit/results")
def record_audit_result(
    request: Request,
    csrf: str = Form(""),
    importer_id: str = Form(""),
    period_from: str = Form(""),
    period_to: str = Form(""),
    findings: str = Form(""),
    note: str = Form(""),
) -> Response:
    page = _page(request)
    if not isinstance(page, Page):
        return page
    assert page.who is not None
    if not pages.csrf_ok(request, csrf):
        return pages.refuse_csrf(page)
    form = {
        "importer_id": importer_id,
        "period_from": period_from,
        "period_to": period_to,
        "findings": findings,
        "note": note,
    }
    problems = []
    days: dict[str, date] = {}
    for key in ("period_from", "period_to"):
        try:
            days[key] = date.fromisoformat(form[key].strip())
        except ValueError:
            problems.append(Problem("invalid_date", (key,), t("Give a date as YYYY-MM-DD")))
    try:
        if problems:
            raise DomainError(problems)
        with unit_of_work() as session:
            postclearance.record_audit_result(
                session,
                page.who,
                importer_id=importer_id,
                period_from=days["period_from"],
                period_to=days["period_to"],
                findings=parse_findings(findings),
                note=note,
                remote_addr=_addr(request),
            )
    except DomainError as exc:
        with unit_of_work(read_only=True) as session:
            stored = postclearance.latest_audit_list(session, page.who)
            results = postclearance.audit_results(session, page.who)
        return _audit_page(page, stored, results, form=form, exc=exc)
    return page.finish(RedirectResponse("/console/risk/audit?done=recorded", status_code=303))
