"""Console pages: manifests list with undeclared lines, follow-up, and the panels on the declaration page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import sign_in
from tests.singlewindow.manifests.conftest import manifest
from tests.singlewindow.trade_documents.conftest import doc


def test_manifest_pages_and_declaration_panels(env_sqlite: Env) -> None:
    env = env_sqlite
    arrived = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    ref = env.client.post("/manifests", json=manifest(expected_arrival=arrived), headers=env.h("carrier")).json()[
        "reference"
    ]
    decl = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    env.client.post(
        f"/declarations/{decl}/trade-documents",
        json={"type": "invoice", "data": doc("invoice", total="11000.00")},
        headers=env.h("trader"),
    )

    carrier = TestClient(create_app(), headers={"accept-language": "en"})
    sign_in(carrier, "carrier", "carrier-pw-123")
    home = carrier.get("/console/manifests")
    assert home.status_code == 200 and 'href="/console/manifests"' in home.text
    assert ref in home.text and f"/console/manifests/{ref}?only=unmatched" in home.text
    detail = carrier.get(f"/console/manifests/{ref}?only=unmatched")
    assert "EGLV000999999" in detail.text and "EGLV000123456" not in detail.text
    assert carrier.get(f"/console/declarations/{decl}").status_code == 404

    officer = TestClient(create_app(), headers={"accept-language": "en"})
    sign_in(officer, "officer", "officer-pw-123")
    follow = officer.get("/console/manifests?view=follow-up")
    assert follow.status_code == 200 and "EGLV000999999" in follow.text
    page = officer.get(f"/console/declarations/{decl}")
    assert page.status_code == 200
    assert 'id="manifest-lines"' in page.text and ref in page.text
    assert 'id="trade-documents"' in page.text and "1 mismatches" in page.text and "document-rules-v1" in page.text

    trader = TestClient(create_app(), headers={"accept-language": "en"})
    sign_in(trader, "trader", "trader-pw-123")
    assert 'href="/console/manifests"' not in trader.get("/console").text
    assert trader.get("/console/manifests").status_code == 403
