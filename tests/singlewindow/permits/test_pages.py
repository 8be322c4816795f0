"""Console: the agency's permits page (issue and revoke forms, usage), the requirements list, the panel on
the declaration page."""

from __future__ import annotations

import re

from tests.clearance.conftest import Env
from tests.clearance.test_pages import sign_in
from tests.singlewindow.permits.conftest import meat_declaration, permit_body


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_agency_issues_and_revokes_in_the_console(sw_sqlite: Env) -> None:
    env = sw_sqlite
    c = env.client
    sign_in(c, "baphiq", "baphiq-pw-123")
    page = c.get("/console/permits")
    assert page.status_code == 200
    assert 'href="/console/permits"' in page.text, "menu link"
    assert "Issue a permit" in page.text and "BAPHIQ/quarantine_certificate" in page.text
    assert "TFDA/food_import_permit" not in page.text, "only its own permit types"
    csrf = _csrf(page.text)
    form = {
        "csrf": csrf,
        "number": "QC-WEB-1",
        "kind": "BAPHIQ/quarantine_certificate",
        "direction": "import",
        "holder": "TW10000001",
        "codes": "0201, 0202",
        "quantity_allowance": "800",
        "quantity_unit": "kg",
        "valid_from": "2026-01-01",
        "valid_to": "2027-12-31",
    }
    bad = c.post("/console/permits", data={**form, "quantity_allowance": "-3", "valid_to": "2025-01-01"})
    assert bad.status_code == 422
    assert "must not be negative" in bad.text and "ends before it starts" in bad.text
    assert 'value="QC-WEB-1"' in bad.text, "the form keeps what was typed"
    r = c.post("/console/permits", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/permits/QC-WEB-1")
    detail = c.get("/console/permits/QC-WEB-1")
    assert "0201 0202" in detail.text and "Revoke this permit" in detail.text
    assert c.post("/console/permits/QC-WEB-1/revoke", data={"csrf": "nope", "reason": "x"}).status_code == 403
    r = c.post(
        "/console/permits/QC-WEB-1/revoke", data={"csrf": csrf, "reason": "plant delisted"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "plant delisted" in c.get("/console/permits/QC-WEB-1").text
    reqs = c.get("/console/permits/requirements?code=020130")
    assert reqs.status_code == 200 and "Food import inspection permit" in reqs.text
    assert "Add a requirement" not in reqs.text, "agencies read the registry; administrators edit it"


def test_panel_on_the_declaration_page_and_admin_edits_registry(sw_sqlite: Env) -> None:
    env = sw_sqlite
    env.client.post("/singlewindow/permits", json=permit_body(), headers=env.h("baphiq"))
    ref = env.client.post("/declarations", json=meat_declaration(permits=["QC-001"]), headers=env.h("trader")).json()[
        "reference"
    ]
    sign_in(env.client, "officer", "officer-pw-123")
    html = env.client.get(f"/console/declarations/{ref}").text
    assert 'id="permit-checks"' in html
    assert "Food import inspection permit" in html and "permit_missing" in html
    assert "QC-001: drew 400" in html
    admin = env.client
    admin.cookies.clear()
    sign_in(admin, "admin", "admin-pw-123")
    page = admin.get("/console/permits/requirements")
    assert "Add a requirement" in page.text
    r = admin.post(
        "/console/permits/requirements",
        data={
            "csrf": _csrf(page.text),
            "code_prefix": "7701",
            "direction": "import",
            "agency": "TFDA",
            "permit_type": "food_import_permit",
            "title": "x",
            "valid_from": "2026-01-01",
        },
    )
    assert r.status_code == 422 and "No tariff line starts with 7701" in r.text
