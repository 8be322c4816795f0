"""The manifests HTTP API: roles, carriers' own data, bad input listing every problem, follow-up, rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.clearance.conftest import Env, declaration
from tests.singlewindow.manifests.conftest import manifest


def test_file_read_replace_and_roles(env_sqlite: Env) -> None:
    env = env_sqlite
    assert env.client.post("/manifests", json=manifest(), headers=env.h("trader")).status_code == 403
    assert env.client.post("/manifests", json=manifest()).status_code == 401
    r = env.client.post("/manifests", json=manifest(), headers=env.h("carrier"))
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    assert r.json()["carrier"] == "EVGM" and r.json()["matching"]["unmatched_lines"] == 2
    again = env.client.post("/manifests", json=manifest(), headers=env.h("carrier"))
    assert again.status_code == 409 and again.json()["problems"][0]["code"] == "duplicate_manifest"

    got = env.client.get(f"/manifests/{ref}", headers=env.h("officer")).json()
    assert [ln["doc_ref"] for ln in got["lines"]] == ["EGLV000123456", "EGLV000999999"]
    assert got["lines"][0]["containers"][0]["seals"] == ["EMCSEAL01"]
    assert env.client.get(f"/manifests/{ref}", headers=env.h("trader")).status_code == 403

    body = manifest()
    body["lines"] = body["lines"][:1]
    put = env.client.put(
        f"/manifests/{ref}", json={"manifest": body, "reason": "short shipped"}, headers=env.h("carrier")
    )
    assert put.status_code == 200 and put.json()["version"] == 2
    versions = env.client.get(f"/manifests/{ref}/versions", headers=env.h("carrier")).json()["versions"]
    assert [v["reason"] for v in versions] == ["original filing", "short shipped"]
    assert env.client.post(f"/manifests/{ref}/arrival", headers=env.h("officer")).status_code == 200
    late = env.client.put(f"/manifests/{ref}", json={"manifest": body}, headers=env.h("carrier"))
    assert late.status_code == 409

    admin = env.client.post("/manifests?carrier=MAEU", json=manifest(voyage="X1"), headers=env.h("admin"))
    assert admin.status_code == 201 and admin.json()["carrier"] == "MAEU"
    listed = env.client.get("/manifests", headers=env.h("carrier")).json()
    assert listed["total"] == 1 and listed["manifests"][0]["reference"] == ref
    assert env.client.get(f"/manifests/{admin.json()['reference']}", headers=env.h("carrier")).status_code == 404


def test_bad_manifest_lists_every_problem_and_stores_nothing(env_sqlite: Env) -> None:
    env = env_sqlite
    body = manifest(mode="hovercraft")
    body["lines"][1]["doc_ref"] = body["lines"][0]["doc_ref"]
    body["lines"][0]["packages"] = -1
    body["lines"][1]["gross_weight_kg"] = "-20"
    r = env.client.post("/manifests", json=body, headers=env.h("carrier"))
    assert r.status_code == 422
    assert {(p["code"], p["loc"]) for p in r.json()["problems"]} == {
        ("unknown_mode", "$.mode"),
        ("duplicate_document", "$.lines[1].doc_ref"),
        ("negative", "$.lines[0].packages"),
        ("negative", "$.lines[1].gross_weight_kg"),
    }
    assert env.client.get("/manifests", headers=env.h("officer")).json()["total"] == 0
    assert (
        env.client.post(
            "/manifests", content=b"{nope", headers={**env.h("carrier"), "content-type": "application/json"}
        ).status_code
        == 422
    )


def test_follow_up_declaration_lines_and_rules(env_sqlite: Env) -> None:
    env = env_sqlite
    arrived = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    ref = env.client.post("/manifests", json=manifest(expected_arrival=arrived), headers=env.h("carrier")).json()[
        "reference"
    ]
    decl = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()
    due = env.client.get("/manifests/follow-up", headers=env.h("officer")).json()
    assert due["count"] == 1 and due["lines"][0]["doc_ref"] == "EGLV000999999" and due["lines"][0]["manifest"] == ref
    assert env.client.get("/manifests/follow-up?days=30", headers=env.h("carrier")).json()["count"] == 0
    lines = env.client.get(f"/declarations/{decl['reference']}/manifest-lines", headers=env.h("trader")).json()
    assert [ln["doc_ref"] for ln in lines["lines"]] == ["EGLV000123456"]
    assert (
        env.client.get(f"/declarations/{decl['reference']}/manifest-lines", headers=env.h("trader2")).status_code == 404
    )

    assert env.client.put("/manifests/rules", json={"follow_up_days": 30}, headers=env.h("officer")).status_code == 403
    bad = env.client.put("/manifests/rules", json={"follow_up_days": -1, "lanes": {"x": "C2"}}, headers=env.h("admin"))
    assert bad.status_code == 422 and len(bad.json()["problems"]) == 2
    ok = env.client.put("/manifests/rules", json={"follow_up_days": 30}, headers=env.h("admin")).json()
    assert ok["version"] == "manifest-rules-v2"
    assert env.client.get("/manifests/follow-up", headers=env.h("officer")).json()["count"] == 0
    assert env.client.post("/manifests/sweep", headers=env.h("officer")).json() == {"flagged": []}
