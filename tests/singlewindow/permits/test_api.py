"""HTTP: agencies issue, amend and revoke; role checks; bad input; declarations held and fixed by amendment."""

from __future__ import annotations

from smartcustoms.platform import audit
from smartcustoms.platform.db import unit_of_work
from tests.clearance.conftest import Env
from tests.singlewindow.permits.conftest import meat_declaration, permit_body

BASE = "/singlewindow/permits"


def issue(env: Env, agency: str, body: dict[str, object]) -> dict[str, object]:
    r = env.client.post(BASE, json=body, headers=env.h(agency))
    assert r.status_code == 201, r.text
    return r.json()


def test_agency_issues_amends_revokes_with_history_and_audit(sw_sqlite: Env) -> None:
    env = sw_sqlite
    got = issue(env, "baphiq", permit_body())
    assert got["agency"] == "BAPHIQ" and got["quantity_left"] == "1000" and got["version"] == 1
    r = env.client.patch(
        f"{BASE}/QC-001", json={"reason": "more beef", "quantity_allowance": "1500"}, headers=env.h("baphiq")
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["quantity_allowance"] == "1500"
    r = env.client.post(f"{BASE}/QC-001/revoke", json={"reason": "plant delisted"}, headers=env.h("baphiq"))
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    detail = env.client.get(f"{BASE}/QC-001", headers=env.h("officer")).json()
    assert [(h["version"], h["action"]) for h in detail["history"]] == [(1, "issue"), (2, "amend"), (3, "revoke")]
    assert detail["history"][0]["permit"]["quantity_allowance"] == "1000", "old versions keep their values"
    with unit_of_work() as s:
        actions = [e["action"] for e in audit.query(s, entity_id="QC-001")]
    assert actions == ["revoke_permit", "amend_permit", "issue_permit"]
    again = env.client.post(f"{BASE}/QC-001/revoke", json={"reason": "x"}, headers=env.h("baphiq"))
    assert again.status_code == 409


def test_roles_and_visibility(sw_sqlite: Env) -> None:
    env = sw_sqlite
    issue(env, "baphiq", permit_body())
    # another agency may neither amend nor revoke, and does not see it
    assert env.client.get(f"{BASE}/QC-001", headers=env.h("tfda")).status_code == 404
    r = env.client.post(f"{BASE}/QC-001/revoke", json={"reason": "x"}, headers=env.h("tfda"))
    assert r.status_code == 404
    assert env.client.get(BASE, headers=env.h("tfda")).json()["total"] == 0
    # an agency cannot issue for another agency, nor a type the registry does not give it
    r = env.client.post(BASE, json={**permit_body("X-1"), "agency": "TFDA"}, headers=env.h("baphiq"))
    assert r.status_code == 403
    r = env.client.post(BASE, json=permit_body("X-2", permit_type="strategic_export_licence"), headers=env.h("baphiq"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "unknown_permit_type"
    # traders: the holder reads it, another trader does not; neither may issue
    assert env.client.get(f"{BASE}/QC-001", headers=env.h("trader")).status_code == 200
    assert env.client.get(BASE, headers=env.h("trader")).json()["total"] == 1
    assert env.client.get(f"{BASE}/QC-001", headers=env.h("trader2")).status_code == 404
    assert env.client.post(BASE, json=permit_body("X-3"), headers=env.h("trader")).status_code == 403
    assert env.client.get(BASE, headers=env.h("carrier")).status_code == 403
    # officers read everything; admin issues naming the agency
    assert env.client.get(BASE, headers=env.h("officer")).json()["total"] == 1
    r = env.client.post(BASE, json={**permit_body("ADM-1"), "agency": "BAPHIQ"}, headers=env.h("admin"))
    assert r.status_code == 201 and r.json()["agency"] == "BAPHIQ"
    # requirements: everyone reads, only admin edits
    reqs = env.client.get(f"{BASE}/requirements", params={"code": "020130"}, headers=env.h("trader")).json()
    assert {(r["agency"], r["permit_type"]) for r in reqs} == {
        ("BAPHIQ", "quarantine_certificate"),
        ("TFDA", "food_import_permit"),
    }
    new = {
        "code_prefix": "0905",
        "direction": "import",
        "agency": "TFDA",
        "permit_type": "food_import_permit",
        "title": "Vanilla",
        "valid_from": "2024-01-01",
    }
    assert env.client.post(f"{BASE}/requirements", json=new, headers=env.h("officer")).status_code == 403
    r = env.client.post(f"{BASE}/requirements", json=new, headers=env.h("admin"))
    assert r.status_code == 201, r.text
    assert env.client.post(f"{BASE}/requirements", json=new, headers=env.h("admin")).status_code == 409
    rid = r.json()["id"]
    r = env.client.patch(f"{BASE}/requirements/{rid}", json={"title": "Vanilla beans"}, headers=env.h("admin"))
    assert r.status_code == 200 and r.json()["title"] == "Vanilla beans"
    assert env.client.delete(f"{BASE}/requirements/{rid}", headers=env.h("admin")).status_code == 204


def test_bad_permits_list_every_problem_and_write_nothing(sw_sqlite: Env) -> None:
    env = sw_sqlite
    bad = permit_body(
        "QC 1!",
        quantity_allowance="-5",
        valid_from="2026-05-01",
        valid_to="2026-01-01",
        codes=["0201", "7701", "02x"],
        direction="sideways",
        value_allowance="10",
    )
    r = env.client.post(BASE, json=bad, headers=env.h("baphiq"))
    assert r.status_code == 422
    got = {(p["code"], p["loc"]) for p in r.json()["problems"]}
    assert {
        ("invalid_number", "$.number"),
        ("negative_allowance", "$.quantity_allowance"),
        ("ends_before_start", "$.valid_to"),
        ("unknown_code", "$.codes[1]"),
        ("invalid_code", "$.codes[2]"),
        ("unknown_direction", "$.direction"),
        ("required", "$.value_currency"),
    } <= got
    assert env.client.get(BASE, headers=env.h("baphiq")).json()["total"] == 0
    issue(env, "baphiq", permit_body())
    r = env.client.post(BASE, json=permit_body(), headers=env.h("baphiq"))
    assert r.status_code == 409 and r.json()["problems"][0]["code"] == "duplicate_number"
    r = env.client.post(BASE, json={**permit_body(), "extra": 1}, headers=env.h("baphiq"))
    assert r.status_code == 422
    r = env.client.patch(f"{BASE}/QC-001", json={"reason": "", "quantity_allowance": "-1"}, headers=env.h("baphiq"))
    assert {p["code"] for p in r.json()["problems"]} == {"reason_required", "negative_allowance"}
    csv_text = "code_prefix,direction,agency,permit_type,title,valid_from,valid_to\n0201,import,BAPHIQ,x_y,ok,2024-01-01,\n7701,inward,BAPHIQ,x_y,t,2024-13-01,\n0201,import\n"
    r = env.client.post(f"{BASE}/requirements/import", json={"csv": csv_text}, headers=env.h("admin"))
    assert r.status_code == 422
    locs = {p["loc"] for p in r.json()["problems"]}
    assert {"$.line[3].code_prefix", "$.line[3].direction", "$.line[3].valid_from", "$.line[4]"} <= locs
    reqs = env.client.get(f"{BASE}/requirements", params={"code": "020110"}, headers=env.h("admin")).json()
    assert "x_y" not in {q["permit_type"] for q in reqs}, "nothing half-written"


def test_declaration_held_for_permit_problems_then_fixed_amendment_passes(sw_sqlite: Env) -> None:
    env = sw_sqlite
    issue(env, "baphiq", permit_body())
    issue(
        env,
        "tfda",
        permit_body(
            "FI-001", permit_type="food_import_permit", codes=["02"], quantity_allowance=None, quantity_unit=None
        ),
    )
    r = env.client.post("/declarations", json=meat_declaration(permits=["QC-001", "NOPE-9"]), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    got = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert got["status"] == "held" and got["lane"] == "C2"
    codes = {f["code"] for f in got["findings"]}
    assert codes == {"permit_unknown", "permit_missing"}
    assert all(f["path"] == ["items", 0, "permits"] and f["hold"] for f in got["findings"])
    assert any(v.startswith("permit-rules-1+registry-") for v in got["lane_versions"])
    assert got["risk_score"] >= 0.8
    assert any("food import" in reason.lower() for reason in got["lane_reasons"])

    fixed = meat_declaration(permits=["QC-001", "FI-001"])
    r = env.client.put(
        f"/declarations/{ref}", json={"declaration": fixed, "reason": "permits added"}, headers=env.h("trader")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released" and r.json()["findings"] == []
    qc = env.client.get(f"{BASE}/QC-001", headers=env.h("baphiq")).json()
    assert qc["quantity_used"] == "400"
    assert [(u["declaration_version"], u["state"]) for u in qc["usage"]] == [(1, "returned"), (2, "final")]


def test_classify_shows_requirements(sw_sqlite: Env) -> None:
    env = sw_sqlite
    r = env.client.post(
        "/tariff/classify", json={"text": "fresh chilled beef carcasses", "top": 3}, headers=env.h("trader")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "requirements" in body
    meat = [q for q in body["requirements"] if q["code"].startswith("02")]
    assert meat and {"BAPHIQ", "TFDA"} <= {q["agency"] for q in meat}
    session = env.client.post("/tariff/sessions", json={"text": "fresh chilled beef"}, headers=env.h("trader"))
    assert session.status_code == 200, session.text
    assert any(q["agency"] == "BAPHIQ" for q in session.json()["requirements"])


def test_batch_filings_share_one_allowance_in_order(sw_sqlite: Env) -> None:
    """Two filings of one batch drawing the same permit: the second sees the first's draw."""
    from smartcustoms.clearance import service as clearance
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.platform import auth

    env = sw_sqlite
    issue(env, "baphiq", permit_body())
    issue(
        env,
        "tfda",
        permit_body(
            "FI-001", permit_type="food_import_permit", codes=["02"], quantity_allowance=None, quantity_unit=None
        ),
    )
    decls = [DeclarationIn.model_validate(meat_declaration(f"BATCH-{n}", "600")) for n in (1, 2)]
    with unit_of_work() as s:
        trader = auth.principal_of(auth.find_user(s, "trader"))
        result = clearance.submit_batch(s, trader, decls)
    assert len(result.accepted) == 2
    statuses = [env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json() for ref in result.accepted]
    assert [d["status"] for d in statuses] == ["released", "held"]
    assert statuses[1]["findings"][0]["code"] == "permit_allowance_exceeded"
    qc = env.client.get(f"{BASE}/QC-001", headers=env.h("officer")).json()
    assert qc["quantity_used"] == "600" and qc["quantity_left"] == "400"


def test_classify_command_shows_permits_needed(sw_sqlite: Env) -> None:
    from typer.testing import CliRunner

    from smartcustoms.cli import app

    r = CliRunner().invoke(
        app, ["tariff", "classify", "fresh chilled beef carcasses", "--top", "3"], env={"COLUMNS": "400"}
    )
    assert r.exit_code == 0, r.output
    assert "permits needed" in r.output and "BAPHIQ" in r.output
