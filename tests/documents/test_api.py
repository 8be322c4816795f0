"""HTTP routes: issuing needs admin/officer, verification is public."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from smartcustoms.documents import store
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import forget_tokens
from tests.conftest import shared_data

from .test_service import coo


def _token(username: str, role: str, party: str | None = None) -> dict[str, str]:
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, username, role, party_id=party))
    return {"Authorization": f"Bearer {token}"}


def test_issue_verify_proofs_over_http(db_url: str) -> None:
    store.forget_trees()
    forget_tokens()
    client = TestClient(create_app())
    admin, officer = _token("adm", "admin"), _token("off", "officer")
    trader = _token("tr", "trader", "TW12345678")
    r = client.post(
        "/documents/issuers", json={"id": "customs-tw", "name": "Taiwan Customs", "kind": "customs"}, headers=admin
    )
    assert r.status_code == 201, r.text
    body = {"issuer": "customs-tw", "type": "certificate_of_origin", "documents": [coo(1), coo(2)]}
    assert client.post("/documents/issue", json=body).status_code == 401
    assert client.post("/documents/issue", json=body, headers=trader).status_code == 403
    r = client.post("/documents/issue", json=body, headers=officer)
    assert r.status_code == 201, r.text
    docs = r.json()["documents"]

    r = client.post("/documents/verify", json=docs[0])
    assert r.status_code == 200 and r.json()["valid"], r.text
    assert r.json()["checks"]["status"]["status"] == "valid"

    r = client.post("/documents/redact", json={"document": docs[1], "fields": ["importer"]})
    assert r.status_code == 200 and "importer" not in r.json()["data"]
    assert client.post("/documents/verify", json=r.json()).json()["valid"]

    target = docs[1]["signature"]["targetHash"]
    r = client.get("/documents/log/customs-tw/proof", params={"target_hash": target, "from": 1})
    assert r.status_code == 200 and r.json()["leafIndex"] == 1
    assert client.get("/documents/log/customs-tw/proof", params={"index": 5}).status_code == 422
    assert client.get("/documents/log/customs-tw/checkpoint").json()["treeSize"] == 2
    assert client.get("/documents/registry").json()["keys"][0]["issuer"] == "customs-tw"

    r = client.post(f"/documents/{target}/revoke", json={"reason": "wrong importer"}, headers=officer)
    assert r.status_code == 200, r.text
    v = client.post("/documents/verify", json=docs[1]).json()
    assert not v["valid"] and "wrong importer" in v["checks"]["status"]["reason"]

    bad = client.post("/documents/issue", json={**body, "type": "packing_list"}, headers=officer)
    assert bad.status_code == 422 and bad.json()["problems"][0]["code"] == "unknown_schema"


def test_public_verify_of_foreign_document(sqlite_url: str) -> None:
    client = TestClient(create_app())
    doc = json.loads((shared_data("docverify", "oa_verify_fixtures") / "v2_documentMainnetValid.json").read_text())
    r = client.post("/documents/verify", json=doc)
    assert r.status_code == 200 and r.json()["valid"]
    assert r.json()["checks"]["status"]["status"] == "unknown"


def test_public_verification_page(sqlite_url: str) -> None:
    client = TestClient(create_app())
    r = client.get("/console/documents/verify")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"], "public: no sign-in redirect"
    assert "Verify a trade document" in r.text and '<script src="/documents/static/verify.js"' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'type="file"' in r.text and "Sign out" not in r.text
    js = client.get("/documents/static/verify.js")
    assert js.status_code == 200 and 'fetch("/documents/verify"' in js.text
    assert client.get("/documents/static/../api.py").status_code == 404
    old = client.get("/documents/verify", follow_redirects=False)
    assert old.status_code == 308 and old.headers["location"] == "/console/documents/verify"
    forget_tokens()
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "tr1", "trader", party_id="TW1"))
    client.cookies.set("sc_session", token)
    r = client.get("/console/documents/verify")
    assert r.status_code == 200 and "Sign out" in r.text and 'href="/console/documents/verify"' in r.text
