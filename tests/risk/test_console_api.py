"""HTTP routes behind the console pages: stored targeting rules, risk queue, models, audit selection."""

from __future__ import annotations

from pathlib import Path

from smartcustoms.risk.registry import ModelRegistry
from tests.clearance.conftest import Env, declaration
from tests.risk.test_api import _token
from tests.risk.test_pages import WHEN, registry  # noqa: F401  (fixture)


def test_rules_queue_models_and_audit_over_http(env_sqlite: Env, registry: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    old, new = registry
    c, env = env_sqlite.client, env_sqlite
    analyst = _token("analyst")
    rule = {"rule_id": "PHONES-CN", "when": WHEN, "lane": "C3", "reason": "Phones from CN"}

    bad = c.post(
        "/risk/targeting-rules",
        json={**rule, "when": {"field": "orign", "op": "eq", "value": "CN"}, "score": 2},
        headers=analyst,
    )
    assert bad.status_code == 422
    assert {p["loc"] for p in bad.json()["problems"]} == {"$.when.field", "$.score"}
    assert c.post("/risk/targeting-rules", json=rule, headers=env.h("officer")).status_code == 403
    r = c.post("/risk/targeting-rules", json=rule, headers=analyst)
    assert r.status_code == 201 and r.json()["ref"] == "PHONES-CN@v1"
    assert r.json()["when"] == {
        "all": [{"field": "hs4", "op": "eq", "value": "8517"}, {"field": "origin", "op": "eq", "value": "CN"}]
    }
    assert c.post("/risk/targeting-rules", json=rule, headers=analyst).status_code == 409
    r = c.put("/risk/targeting-rules/PHONES-CN", json={**rule, "lane": "", "score": 0.9}, headers=analyst)
    assert r.json()["ref"] == "PHONES-CN@v2" and r.json()["score"] == "0.9"
    assert c.put("/risk/targeting-rules/NOPE", json=rule, headers=analyst).status_code == 404

    # A score-only rule raises the score, not the lane; both the score and the version are recorded.
    ref = c.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    queue = c.get("/risk/queue?order=revenue", headers=env.h("officer"))
    assert queue.status_code == 200
    d = c.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert "PHONES-CN@v2" in d["lane_versions"] and d["risk_score"] >= 0.9

    r = c.post("/risk/targeting-rules/PHONES-CN/disable", json={"note": "retired"}, headers=analyst)
    assert r.json()["enabled"] is False and r.json()["note"] == "retired"
    assert c.post("/risk/targeting-rules/PHONES-CN/disable", headers=analyst).status_code == 409
    assert c.post("/risk/targeting-rules/PHONES-CN/enable", headers=analyst).json()["ref"] == "PHONES-CN@v4"
    assert [x["version"] for x in c.get("/risk/targeting-rules/PHONES-CN", headers=env.h("officer")).json()] == [
        4,
        3,
        2,
        1,
    ]
    assert [x["ref"] for x in c.get("/risk/targeting-rules", headers=env.h("officer")).json()] == ["PHONES-CN@v4"]

    models = c.get("/risk/models", headers=env.h("officer")).json()
    assert [m["version"] for m in models] == [new, old] and models[0]["active"]
    assert len(models[0]["validation"]["gain"]) == 21 and models[0]["revenue"]["overall"] > 0
    assert c.post(f"/risk/models/{old}/activate", headers=env.h("officer")).status_code == 403
    r = c.post(f"/risk/models/{old}/activate", headers=analyst)
    assert r.status_code == 200 and r.json()["active"]
    assert c.post(f"/risk/models/{old}/activate", headers=analyst).status_code == 409
    assert ModelRegistry(Path(models and tmp_path / "models")).active_version() == old

    audit = c.get("/risk/audit-selection?top=5", headers=env.h("officer")).json()
    assert audit[0]["rank"] == 1 and audit[0]["importer_id"] == "TW10000001"
    assert c.get("/risk/queue", headers=env.h("trader")).status_code == 403
