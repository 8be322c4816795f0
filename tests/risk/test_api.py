from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.risk.registry import ModelRegistry
from smartcustoms.risk.selectivity import SelectivityModel


def _token(role: str) -> dict[str, str]:
    with unit_of_work() as s:
        user = auth.create_user(s, f"u{role}", role, party_id="TW12345678" if role == "trader" else None)
        return {"Authorization": f"Bearer {auth.issue_token(s, user)}"}


def test_rules_validate_try_and_assess(
    sqlite_url: str, fitted_model: SelectivityModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app())
    analyst, trader = _token("analyst"), _token("trader")
    doc = "rules:\n  - id: CN\n    when: {field: origin, op: eq, value: CN}\n    lane: C3\n    reason: origin CN\n"
    r = client.post("/risk/rules/validate", json={"document": doc}, headers=analyst)
    assert r.status_code == 200 and r.json()["rules"] == ["CN@v1"]
    bad = client.post("/risk/rules/validate", json={"document": doc.replace("origin,", "orign,")}, headers=analyst)
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["loc"] == "$.rules[0].when.field"
    assert client.post("/risk/rules/validate", json={"document": doc}, headers=trader).status_code == 403
    hits = client.post("/risk/rules/try", json={"document": doc, "declaration": {"origin": "CN"}}, headers=analyst)
    assert hits.json()[0]["lane"] == "C3"

    ModelRegistry(tmp_path / "reg").save_and_register(fitted_model)
    monkeypatch.setenv("SMARTCUSTOMS_RISK_REGISTRY", str(tmp_path / "reg"))
    decl = {
        "importer_id": "IMP003",
        "declarant_id": "DEC1",
        "items": [{"hs_code": "851762", "origin": "CN", "net_mass_kg": "10.5", "value": "900.00", "tax_rate": "8"}],
    }
    out = client.post("/risk/assess", json=decl, headers=analyst)
    assert out.status_code == 200, out.text
    assert out.json()["lane"] in ("C1", "C2", "C3") and out.json()["versions"] == [fitted_model.version]
    assert client.post("/risk/assess", json={**decl, "items": []}, headers=analyst).status_code == 422
