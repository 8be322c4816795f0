"""Console pages of the manifests part: manifests with their undeclared lines, the follow-up list, and a
panel on the declaration page with the manifest lines that cover it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smartcustoms.clearance import pages
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.types import iso
from smartcustoms.singlewindow.manifests import service

router = APIRouter(prefix="/console", include_in_schema=False)
READERS = {Role.CARRIER, Role.OFFICER, Role.ANALYST, Role.ADMIN}

pages.add_templates(Path(__file__).resolve().parent / "templates")
pages.add_nav_link("/console/manifests", pages.N_("Manifests"), READERS)


def _panel(session: Any, who: Principal, d: dict[str, Any]) -> dict[str, Any] | None:
    found = service.lines_of_declaration(session, d["reference"])
    decl = d.get("declaration") or {}
    needs = decl.get("type") == "import" and (decl.get("transport") or {}).get("mode") in ("sea", "air")
    if not found and not needs:
        return None
    return {
        "lines": [
            {"manifest": m.reference, "voyage": m.voyage, "port": m.port, "carrier": m.carrier, **service.line_view(ln)}
            for m, ln in found
        ],
        "can_open": who.is_customs,
    }


pages.add_panel("manifests/panel.html", _panel)


@router.get("/manifests")
def manifests_page(request: Request, view: str = "manifests", offset: int = 0) -> Response:
    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    try:
        with unit_of_work() as session:
            if view == "follow-up":
                due = [
                    {
                        "manifest": m.reference,
                        "voyage": m.voyage,
                        "port": m.port,
                        "arrival": m.arrived_at or m.expected_arrival,
                        "days": age,
                        **service.line_view(ln),
                    }
                    for m, ln, age in service.follow_up(session, page.who, limit=500)
                ]
                days = service.current_rules(session).follow_up_days
                return page.render("manifests/follow_up.html", rows=due, days=days, view=view)
            rows, total = service.list_manifests(session, page.who, limit=pages.PAGE_SIZE, offset=max(0, offset))
            items = [
                {**service.manifest_view(r), "unmatched": n, "arrival": r.arrived_at or r.expected_arrival}
                for r, n in rows
            ]
    except DomainError as exc:
        return pages.problems_page(page, exc)
    return page.render(
        "manifests/list.html", rows=items, total=total, offset=offset, view=view, page_size=pages.PAGE_SIZE
    )


@router.get("/manifests/{reference}")
def manifest_page(request: Request, reference: str, only: str | None = None) -> Response:
    page = pages.console_page(request)
    if isinstance(page, Response):
        return page
    assert page.who is not None
    try:
        with unit_of_work() as session:
            row, lines = service.read_manifest(session, page.who, reference)
            m = service.manifest_view(row, lines=lines)
    except DomainError as exc:
        return pages.problems_page(page, exc)
    shown = [ln for ln in m["lines"] if not ln["declared"]] if only == "unmatched" else m["lines"]
    return page.render("manifests/detail.html", m=m, lines=shown, only=only, arrived=iso(row.arrived_at))
