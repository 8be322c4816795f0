"""The clearance API end to end on SQLite and PostgreSQL: filing, validation, access, officer work."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, text

from smartcustoms.clearance.store import DeclarationRow, EventRow, ItemRow
from smartcustoms.platform.db import get_engine, unit_of_work
from tests.clearance.conftest import Env, declaration, watch_phones


def _count() -> int:
    with unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(DeclarationRow)) or 0)


def test_submit_assess_and_read(env: Env) -> None:
    r = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/declarations/{body['reference']}"
    assert body["lane"] == "C1" and body["status"] == "released"
    a = body["assessment"]
    # CIF = 10000 + 400 + 50 = 10450 USD at 32.10
    assert Decimal(a["customs_value"]) == Decimal("335445")
    assert Decimal(a["duty"]) > 0 and Decimal(a["vat"]) > 0
    assert Decimal(body["total_due"]) == Decimal(a["duty"]) + Decimal(a["vat"])
    assert all(item["steps"] for item in a["items"])
    assert body["lane_reasons"] and body["lane_versions"]
    ref = body["reference"]
    assert env.client.get(f"/declarations/{ref}", headers=env.h("officer")).status_code == 200
    assert env.client.get(f"/declarations/{ref}", headers=env.h("trader")).json()["reference"] == ref
    assert (
        env.client.get(f"/declarations/{ref}/release-note", headers=env.h("trader")).json()["total_due"]
        == body["total_due"]
    )


def test_other_trader_cannot_read_or_list(env: Env) -> None:
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    r = env.client.get(f"/declarations/{ref}", headers=env.h("trader2"))
    assert r.status_code == 404 and r.json()["problems"][0]["code"] == "unknown_declaration"
    assert env.client.get("/declarations", headers=env.h("trader2")).json()["total"] == 0
    assert env.client.get("/declarations", headers=env.h("trader")).json()["total"] == 1
    assert env.client.get("/declarations", headers=env.h("carrier")).status_code == 403


def test_resubmission_is_idempotent_and_changed_content_conflicts(env: Env) -> None:
    first = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    again = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["reference"] == first.json()["reference"]
    changed = declaration(freight="401.00")
    r = env.client.post("/declarations", json=changed, headers=env.h("trader"))
    assert r.status_code == 409 and r.json()["problems"][0]["code"] == "duplicate_lrn"
    assert _count() == 1


def test_every_validation_problem_at_once_and_nothing_stored(env: Env) -> None:
    bad = declaration(currency="XYZ", invoice_total="9999.00", country_of_dispatch="QQ")
    bad["items"][0]["tariff_code"] = "770100"
    bad["items"][1]["tariff_code"] = "6109"
    bad["items"][1]["origin_country"] = "ZX"
    bad["items"][1]["net_mass_kg"] = "-3"
    r = env.client.post("/declarations", json=bad, headers=env.h("trader"))
    assert r.status_code == 422
    got = {(p["code"], p["loc"]) for p in r.json()["problems"]}
    assert ("unknown_currency", "$.currency") in got
    assert ("unknown_country", "$.country_of_dispatch") in got
    assert ("unknown_tariff_code", "$.items[0].tariff_code") in got
    assert ("non_leaf_tariff_code", "$.items[1].tariff_code") in got
    assert ("unknown_country", "$.items[1].origin_country") in got
    assert ("not_positive", "$.items[1].net_mass_kg") in got
    assert ("totals_mismatch", "$.invoice_total") in got
    assert _count() == 0


def test_wrong_types_missing_fields_and_malformed_json(env: Env) -> None:
    bad = declaration(invoice_total="lots", items=[{"line_no": "one"}])
    del bad["importer"]
    r = env.client.post("/declarations", json=bad, headers=env.h("trader"))
    assert r.status_code == 422
    locs = {p["loc"] for p in r.json()["problems"]}
    assert {"$.importer", "$.invoice_total", "$.items[0].line_no", "$.items[0].description"} <= locs
    r = env.client.post(
        "/declarations", content=b'{"lrn": "x",', headers=env.h("trader") | {"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "malformed_json"
    r = env.client.post("/declarations", json=declaration(surprise=1), headers=env.h("trader"))
    assert r.status_code == 422 and r.json()["problems"][0]["loc"] == "$.surprise"


def test_oversized_body_refused(env: Env) -> None:
    big = declaration()
    big["items"][0]["description"] = "x" * 500
    big["documents"] = [
        {"type": "invoice", "reference": f"INV-{i}", "content_base64": "A" * 1_000_000} for i in range(3)
    ]
    r = env.client.post("/declarations", json=big, headers=env.h("trader"))
    assert r.status_code == 413 and r.json()["problems"][0]["code"] == "body_too_large"


def test_authentication_and_roles(env: Env) -> None:
    assert env.client.post("/declarations", json=declaration()).status_code == 401
    assert (
        env.client.post("/declarations", json=declaration(), headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    r = env.client.post("/declarations", json=declaration(), headers=env.h("officer"))
    assert r.status_code == 403
    r = env.client.post("/declarations", json=declaration(), headers=env.h("trader2"))
    assert r.status_code == 403 and r.json()["problems"][0]["code"] == "not_your_party"
    broker_filed = declaration(lrn="B-1", declarant={"id": "TWB0000001", "name": "Harbour Brokers"})
    assert env.client.post("/declarations", json=broker_filed, headers=env.h("broker")).status_code == 201
    assert (
        env.client.post("/declarations/x/decisions", json={"action": "release"}, headers=env.h("trader")).status_code
        == 403
    )


def test_officer_inspects_finds_and_releases(env: Env) -> None:
    watch_phones(env)
    body = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()
    ref = body["reference"]
    assert body["lane"] == "C3" and body["status"] == "under_inspection"
    assert any("8517" in r for r in body["lane_reasons"])
    queue = env.client.get("/queue?lane=C3", headers=env.h("officer")).json()["items"]
    assert [q["reference"] for q in queue] == [ref]
    r = env.client.post(f"/declarations/{ref}/decisions", json={"action": "hold"}, headers=env.h("officer"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "reason_required"
    r = env.client.post(
        f"/declarations/{ref}/inspection",
        json={"result": "found", "findings": "200 phones more than declared", "additional_duty": "15000"},
        headers=env.h("officer"),
    )
    assert r.status_code == 200, r.text
    assert Decimal(r.json()["total_due"]) == Decimal(body["total_due"]) + 15000
    r = env.client.post(f"/declarations/{ref}/decisions", json={"action": "release"}, headers=env.h("officer"))
    assert r.status_code == 200 and r.json()["status"] == "released"
    r = env.client.post(
        f"/declarations/{ref}/decisions", json={"action": "reject", "reason": "late"}, headers=env.h("officer")
    )
    assert r.status_code == 409 and r.json()["problems"][0]["code"] == "illegal_transition"
    tl = env.client.get(f"/declarations/{ref}/timeline", headers=env.h("trader")).json()
    assert [e["action"] for e in tl["events"]] == ["submit", "assess", "route_c3", "record_inspection", "release"]
    assert all(e["at"] and e["actor"] for e in tl["events"])
    assert tl["inspections"][0]["result"] == "found"
    note = env.client.get(f"/declarations/{ref}/release-note", headers=env.h("trader")).json()
    assert note["released_by"] == "officer" and Decimal(note["additional_duty"]) == 15000
    with get_engine().connect() as conn:
        actions = [
            a
            for (a,) in conn.execute(
                text("SELECT action FROM platform_audit WHERE entity_id = :r ORDER BY id"), {"r": ref}
            )
        ]
    assert actions == ["submit_declaration", "record_inspection", "release"]


def test_amendment_requested_then_filed_keeps_history(env: Env) -> None:
    watch_phones(env)
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    r = env.client.post(
        f"/declarations/{ref}/decisions",
        json={"action": "request_amendment", "reason": "Wrong code for line 1"},
        headers=env.h("officer"),
    )
    assert r.json()["status"] == "amendment_requested"
    fixed = declaration()
    fixed["items"][0]["tariff_code"] = "847130"
    r = env.client.put(
        f"/declarations/{ref}", json={"declaration": fixed, "reason": "Corrected line 1"}, headers=env.h("trader")
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["lane"] == "C1" and r.json()["status"] == "released"
    tl = env.client.get(f"/declarations/{ref}/timeline", headers=env.h("officer")).json()
    assert [v["version"] for v in tl["versions"]] == [1, 2]
    assert tl["versions"][0]["declaration"]["items"][0]["tariff_code"] == "851713"
    with unit_of_work() as s:
        codes = sorted(s.scalars(select(ItemRow.tariff_code)))
    assert codes == ["610910", "847130"]


def test_amendment_in_wrong_state_refused(env: Env) -> None:
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    r = env.client.put(
        f"/declarations/{ref}", json={"declaration": declaration(), "reason": "x"}, headers=env.h("trader")
    )
    assert r.status_code == 409
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == 3


def test_filters_and_pagination(env: Env) -> None:
    for i in range(5):
        d = declaration(lrn=f"P-{i}")
        if i % 2:
            d["items"] = [d["items"][1]]
            d["invoice_total"] = "4000.00"
        assert env.client.post("/declarations", json=d, headers=env.h("trader")).status_code == 201
    page = env.client.get("/declarations?limit=2&offset=0", headers=env.h("officer")).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert env.client.get("/declarations?hs_chapter=85", headers=env.h("officer")).json()["total"] == 3
    assert (
        env.client.get("/declarations?status=released&lane=C1&office=TWKHH", headers=env.h("officer")).json()["total"]
        == 5
    )
    assert env.client.get("/declarations?importer=TW999", headers=env.h("officer")).json()["total"] == 0
    r = env.client.get("/declarations?lane=C9", headers=env.h("officer"))
    assert r.status_code == 422 and r.json()["problems"][0]["loc"] == "$.query.lane"


def test_list_finds_a_filing_by_lrn_and_refuses_unknown_filters(env: Env) -> None:
    for lrn in ("FIND-1", "FIND-2"):
        assert env.client.post("/declarations", json=declaration(lrn=lrn), headers=env.h("trader")).status_code == 201
    mine = env.client.get("/declarations?lrn=FIND-2", headers=env.h("trader")).json()
    assert mine["total"] == 1 and mine["items"][0]["lrn"] == "FIND-2"
    # another trader's LRN search looks only among their own filings
    assert env.client.get("/declarations?lrn=FIND-2", headers=env.h("trader2")).json()["total"] == 0
    officer = env.client.get("/declarations?lrn=FIND-1&declarant=TW10000001", headers=env.h("officer")).json()
    assert [d["lrn"] for d in officer["items"]] == ["FIND-1"]
    assert env.client.get("/declarations?declarant=TW10000001", headers=env.h("officer")).json()["total"] == 2
    r = env.client.get("/declarations?lrn=FIND-1", headers=env.h("officer"))
    assert r.status_code == 422 and r.json()["problems"][0]["loc"] == "$.query.declarant"
    # a misspelt filter is refused, not ignored (it would list everything); every problem at once
    r = env.client.get("/declarations?stauts=held&limit=0&lang=en", headers=env.h("officer"))
    assert r.status_code == 422
    assert sorted(p["loc"] for p in r.json()["problems"]) == ["$.query.limit", "$.query.stauts"]
    r = env.client.get("/declarations?date_from=2026-11-24&date_to=2026-11-01", headers=env.h("officer"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "invalid_date_range"
    # a role that may not list declarations is told only that, whatever its filters
    r = env.client.get("/declarations?date_from=2026-11-24&date_to=2026-11-01&lrn=X", headers=env.h("carrier"))
    assert r.status_code == 403


def test_admin_manages_users_tokens_and_rates(env: Env) -> None:
    r = env.client.post(
        "/admin/users", json={"username": "new1", "role": "trader", "party_id": "TW30000003"}, headers=env.h("admin")
    )
    assert r.status_code == 201
    tok = r.json()["token"]
    assert env.client.get("/auth/me", headers={"Authorization": f"Bearer {tok}"}).json()["party_id"] == "TW30000003"
    assert env.client.delete("/admin/users/new1/tokens", headers=env.h("admin")).json()["revoked"] == 1
    assert env.client.get("/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    assert (
        env.client.post("/admin/users", json={"username": "x", "role": "admin"}, headers=env.h("trader")).status_code
        == 403
    )
    r = env.client.post(
        "/admin/exchange-rates",
        json={"rates": [{"currency": "EUR", "valid_from": "2026-01-01", "rate": "35.1"}]},
        headers=env.h("admin"),
    )
    assert r.status_code == 200 and r.json()["loaded"] == 1
    r = env.client.post(
        "/admin/exchange-rates",
        json={"rates": [{"currency": "QQQ", "valid_from": "2026-01-01", "rate": "1"}]},
        headers=env.h("admin"),
    )
    assert r.status_code == 422
    r = env.client.put("/admin/settings/lane_rules", json={"random_c3_share": 7}, headers=env.h("admin"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "invalid_setting"


def test_console_password_login(env: Env) -> None:
    r = env.client.post("/auth/login", json={"username": "officer", "password": "officer-pw-123"})
    assert r.status_code == 200
    assert env.client.get("/queue", headers={"Authorization": f"Bearer {r.json()['token']}"}).status_code == 200
    assert env.client.post("/auth/login", json={"username": "officer", "password": "nope"}).status_code == 401


def test_missing_exchange_rate_is_a_clear_problem(env: Env) -> None:
    r = env.client.post("/declarations", json=declaration(currency="EUR"), headers=env.h("trader"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "no_exchange_rate"
    assert _count() == 0


def test_release_time_stats(env: Env) -> None:
    watch_phones(env)
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    env.client.post(f"/declarations/{ref}/decisions", json={"action": "release"}, headers=env.h("officer"))
    stats = env.client.get("/stats/release-times", headers=env.h("officer")).json()
    assert stats["submission_to_release"]["C3"]["count"] == 1
    assert env.client.get("/stats/release-times", headers=env.h("trader")).status_code == 403


def test_admin_changes_role_deactivates_and_reads_audit(env: Env) -> None:
    r = env.client.patch("/admin/users/trader2", json={"active": False}, headers=env.h("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert env.client.get("/auth/me", headers=env.h("trader2")).status_code == 401
    r = env.client.patch("/admin/users/carrier", json={"role": "emperor"}, headers=env.h("admin"))
    assert r.status_code == 422
    users = env.client.get("/admin/users", headers=env.h("admin")).json()["items"]
    assert {u["username"] for u in users} >= {"admin", "trader", "trader2"}
    log = env.client.get("/admin/audit?entity_id=trader2", headers=env.h("admin")).json()["items"]
    assert log[0]["action"] == "change_user" and log[0]["actor"] == "admin"
    assert env.client.get("/admin/audit", headers=env.h("trader")).status_code == 403


def test_preference_refused_without_a_received_certificate(env: Env) -> None:
    r = env.client.put(
        "/admin/settings/tax_rules", json={"preference_requires_certificate": True}, headers=env.h("admin")
    )
    assert r.status_code == 200 and r.json()["preference_requires_certificate"] is True
    d = declaration()
    d["items"][1]["tariff_code"] = "020130"
    d["items"][1]["preference"] = {"fta": "ANZTEC", "proof_of_origin_ref": "CO-TW-0001"}
    body = env.client.post("/declarations", json=d, headers=env.h("trader")).json()
    line = body["assessment"]["items"][1]
    assert line["rate_basis"] == "general"
    assert any("no verified certificate of origin CO-TW-0001" in s for s in line["steps"])


def test_scan_uploads_get_the_larger_upload_limit() -> None:
    from smartcustoms.platform.web import BodyLimit

    async def app(scope: object, receive: object, send: object) -> None:  # never reached in this test
        raise AssertionError

    limit = BodyLimit(app, max_bytes=2_000_000, max_upload_bytes=64_000_000)  # type: ignore[arg-type]
    assert limit.limit_for("/declarations") == 2_000_000
    assert limit.limit_for("/xray/declarations/26TWABC/scans") == 64_000_000
    assert limit.limit_for("/declarations/26TWABC/trade-documents/scan") == 64_000_000
    assert limit.limit_for("/declarations/26TWABC/trade-documents") == 2_000_000
    assert BodyLimit(app, max_bytes=5, max_upload_bytes=1).limit_for("/xray/declarations/x/scans") == 5  # type: ignore[arg-type]
