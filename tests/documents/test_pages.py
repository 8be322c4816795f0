"""Console page of partner logs: officers see mirrored partners and recorded alarms; only admins sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from smartcustoms.clearance.pages import csrf_token
from smartcustoms.documents import exchange, signing, store
from smartcustoms.platform import auth
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import forget_tokens

from .test_exchange import FakePartner


def _signed_in(role: str, name: str) -> tuple[TestClient, str]:
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, name, role, party_id="TW1" if role == "trader" else None))
    client = TestClient(create_app())
    client.cookies.set("sc_session", token)
    return client, csrf_token(token)


def test_partner_logs_page_shows_alarms_and_admin_sync(sqlite_url: str) -> None:
    store.forget_trees()
    forget_tokens()
    key = signing.generate_private_key()
    reg = signing.KeyRegistry()
    reg.rotate("customs-nz", signing.public_key_of(key), datetime(2026, 1, 1, tzinfo=UTC))
    # a partner node nobody listens at (port 9, discard): syncing it from the page reports it unreachable
    exchange.follow_partner(SYSTEM, "customs-nz", "NZ", "customs", reg.as_dict(), base_url="http://127.0.0.1:9/")
    a = FakePartner("customs-nz", key)
    a.add(3)
    assert exchange.sync_partner(SYSTEM, "customs-nz", a)["new"] == 3
    a.payloads[1] = json.dumps({"kind": "issue", "targetHash": "ee" * 32})
    with pytest.raises(exchange.ForkAlarm):
        exchange.sync_partner(SYSTEM, "customs-nz", a)

    officer, _ = _signed_in("officer", "off1")
    r = officer.get("/console/documents/partners")
    assert r.status_code == 200, r.text
    assert "customs-nz" in r.text and "http://127.0.0.1:9" in r.text and "two different roots" in r.text
    assert "Sync now" not in r.text and 'href="/console/documents/partners"' in r.text

    admin, csrf = _signed_in("admin", "adm1")
    assert admin.post("/console/documents/partners/sync", data={"csrf": "x", "issuer": "customs-nz"}).status_code == 403
    r = admin.post("/console/documents/partners/sync", data={"csrf": csrf, "issuer": "customs-nz"})
    assert r.status_code == 409 and "partner_unreachable" in r.text, r.text
    r = admin.post("/console/documents/partners/sync", data={"csrf": csrf, "issuer": "customs-xx"})
    assert r.status_code == 404

    trader, _ = _signed_in("trader", "tr1")
    assert trader.get("/console/documents/partners").status_code == 403
    anonymous = TestClient(create_app())
    r = anonymous.get("/console/documents/partners", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
