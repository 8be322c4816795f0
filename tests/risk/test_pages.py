"""Risk pages in the console (TestClient): queue, rule editor, models with the gain chart, audit list."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartcustoms.api import create_app
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.store import AuditRow
from smartcustoms.risk.registry import ModelRegistry
from smartcustoms.risk.selectivity import SelectivityModel
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import _field, sign_in

WHEN = "all:\n  - {field: hs4, op: eq, value: '8517'}\n  - {field: origin, op: eq, value: CN}"


def older_copy(model: SelectivityModel) -> SelectivityModel:
    """The same model saved as an earlier version (another created_at, so another content hash)."""
    m = copy.copy(model)
    m._fitted = dataclasses.replace(model.fitted, manifest={**model.manifest, "created_at": "2020-01-01T00:00:00Z"})
    return m


@pytest.fixture
def registry(tmp_path: Path, fitted_model: SelectivityModel, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    reg = ModelRegistry(tmp_path / "models")
    old = reg.save_and_register(older_copy(fitted_model))
    new = reg.save_and_register(fitted_model)
    monkeypatch.setenv("SMARTCUSTOMS_RISK_REGISTRY", str(reg.root))
    return old, new


def _analyst() -> None:
    with unit_of_work() as s:
        auth.create_user(s, "ana", "analyst", password="ana-pw-12345")


def test_console_risk_pages(env_sqlite: Env, registry: tuple[str, str]) -> None:
    old, new = registry
    env = env_sqlite
    _analyst()
    c = env.client
    sign_in(c, "ana", "ana-pw-12345")
    assert 'href="/console/risk"' in c.get("/console").text, "menu link for analysts"

    # Rule editor: every problem beside its field, nothing stored.
    form = c.get("/console/risk/rules/new").text
    csrf = _field(form, "csrf")
    bad = c.post(
        "/console/risk/rules",
        data={
            "csrf": csrf,
            "rule_id": "no spaces",
            "when": "{field: orign, op: eq, value: CN}",
            "lane": "C3",
            "reason": "x",
            "score": "lots",
        },
    )
    assert bad.status_code == 422
    for name in ("rule_id", "when", "score"):
        assert f'id="err-{name}"' in bad.text, name
    assert "unknown field &#39;orign&#39;" in bad.text and 'aria-invalid="true"' in bad.text
    assert "PHONES" not in c.get("/console/risk/rules").text
    assert c.post("/console/risk/rules", data={"csrf": "forged", "rule_id": "X"}).status_code == 403
    ok = c.post(
        "/console/risk/rules",
        data={
            "csrf": csrf,
            "rule_id": "PHONES-CN",
            "when": WHEN,
            "lane": "C3",
            "reason": "Phones from CN",
            "note": "n1",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"].startswith("/console/risk/rules/PHONES-CN")
    edit = c.get("/console/risk/rules/PHONES-CN").text
    assert "PHONES-CN@v1" in edit and "readonly" in edit

    # A filing the rule catches: the risk queue shows it with reasons, versions and expected revenue.
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    q = c.get("/console/risk").text
    assert ref in q and "PHONES-CN@v1" in q and new in q
    assert "Targeting rule PHONES-CN v1: Phones from CN" in q and "expected additional revenue about" in q
    assert ref in c.get("/console/risk?order=revenue&lane=C3").text
    panel = c.get(f"/console/declarations/{ref}").text
    assert 'id="risk-panel"' in panel and 'href="/console/risk/rules/PHONES-CN">PHONES-CN@v1<' in panel
    assert "expected additional revenue about" in panel

    # Disable from the list: a new version, audited.
    r = c.post("/console/risk/rules/PHONES-CN/enabled", data={"csrf": csrf, "enabled": "0"}, follow_redirects=False)
    assert r.status_code == 303
    listing = c.get("/console/risk/rules").text
    assert "v2" in listing and "Disabled" in listing and ">Enable<" in listing

    # Models: metrics, baseline, the gain chart as inline SVG, activate / roll back.
    page = c.get("/console/risk/models").text
    assert page.count('<polyline class="model"') == 2 and '<polyline class="baseline"' in page
    assert (
        "Baseline: HS chapter past fraud rate" in page
        and "Precision at 10 %<" in page
        and "Lift at 10 % inspected" in page
    )
    assert "Roll back to this version" in page and 'name="version" value="' + old + '"' in page
    r = c.post("/console/risk/models/activate", data={"csrf": csrf, "version": old}, follow_redirects=False)
    assert r.status_code == 303
    assert ModelRegistry(Path(registry_root(env))).active_version() == old
    assert c.post("/console/risk/models/activate", data={"csrf": csrf, "version": "nope"}).status_code == 404
    with unit_of_work() as s:
        actions = [a.action for a in s.scalars(select(AuditRow).where(AuditRow.actor == "ana").order_by(AuditRow.id))]
    assert actions == ["create_rule", "disable_rule", "activate_model"]

    # Post-clearance audit list from the platform's declarations, scored by the active model.
    assert c.post("/console/risk/audit/refresh", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    audit = c.get("/console/risk/audit").text
    assert 'id="audit-list"' in audit and "TW10000001" in audit

    # Officers read the rules and the models but change neither.
    officer = TestClient(create_app())
    sign_in(officer, "officer", "officer-pw-123")
    rules_page = officer.get("/console/risk/rules").text
    assert "PHONES-CN" in rules_page and "/console/risk/rules/new" not in rules_page and ">Disable<" not in rules_page
    officer_csrf = _field(officer.get("/console/risk").text, "csrf")
    denied = officer.post("/console/risk/rules/PHONES-CN/enabled", data={"csrf": officer_csrf, "enabled": "1"})
    assert denied.status_code == 403
    assert "Roll back to this version" not in officer.get("/console/risk/models").text

    # Traders see neither the link nor the pages.
    trader = TestClient(create_app())
    sign_in(trader, "trader", "trader-pw-123")
    assert 'href="/console/risk"' not in trader.get("/console/declarations").text
    assert trader.get("/console/risk").status_code == 403
    assert 'id="risk-panel"' not in trader.get(f"/console/declarations/{ref}").text
    assert trader.get("/console/risk/models").status_code == 403


def registry_root(env: Env) -> str:
    import os

    return os.environ["SMARTCUSTOMS_RISK_REGISTRY"]


def test_pages_need_sign_in(env_sqlite: Env) -> None:
    r = TestClient(create_app()).get("/console/risk/rules", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    assert re.search(r"next=%2Fconsole%2Frisk%2Frules", r.headers["location"])
