"""Post-clearance audit: the stored audit list, audit results as labels, and rule backtests on the
platform's declarations (API, console, CLI; SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.store import AuditRow
from smartcustoms.risk.labels import export_labels
from smartcustoms.risk.pages import parse_findings
from smartcustoms.risk.store import AuditListRow, AuditResultRow
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import _field, sign_in
from tests.risk.test_api import _token
from tests.risk.test_cli import run
from tests.risk.test_pages import WHEN, _analyst, registry  # noqa: F401  (fixture)

TODAY = date.today().isoformat()


def _file(env: Env, n: int, *, importer: str = "TW10000001", lrn: str = "PCA") -> list[str]:
    refs = []
    for i in range(n):
        d = declaration(lrn=f"{lrn}-{i}")
        d["importer"] = {**d["importer"], "id": importer}
        d["declarant"] = {**d["declarant"], "id": importer}
        r = env.client.post("/declarations", json=d, headers=env.h("admin"))
        assert r.status_code == 201, r.text
        refs.append(r.json()["reference"])
    return refs


def test_audit_list_is_computed_on_request_and_kept(env: Env, registry: tuple[str, str]) -> None:  # noqa: F811
    c = env.client
    analyst = _token("analyst")
    _file(env, 3)
    assert c.get("/risk/audit-list", headers=env.h("officer")).status_code == 404
    assert c.post("/risk/audit-list", headers=env.h("officer")).status_code == 403
    r = c.post("/risk/audit-list?top=5", headers=analyst)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["model_version"] == registry[1] and first["rows"][0]["importer_id"] == "TW10000001"
    assert first["rows"][0]["declarations"] == 3 and first["computed_by"] == "uanalyst"
    # later filings do not change what is shown until it is computed again
    _file(env, 2, lrn="LATER")
    assert c.get("/risk/audit-list", headers=env.h("officer")).json() == first
    again = c.post("/risk/audit-list", headers=analyst).json()
    assert again["rows"][0]["declarations"] == 5
    assert c.get("/risk/audit-list", headers=env.h("officer")).json()["rows"][0]["declarations"] == 5
    with unit_of_work() as s:
        assert len(s.scalars(select(AuditListRow)).all()) == 2  # earlier computations kept
        assert [a.action for a in s.scalars(select(AuditRow).where(AuditRow.actor == "uanalyst"))] == [
            "risk.audit_list.computed",
            "risk.audit_list.computed",
        ]
    assert c.get("/risk/audit-list", headers=env.h("trader")).status_code == 403


def test_audit_results_are_checked_then_become_labels(env: Env) -> None:
    c = env.client
    analyst = _token("analyst")
    mine = _file(env, 3)
    other = _file(env, 1, importer="TW20000002", lrn="OTHER")[0]
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    bad = c.post(
        "/risk/audit-results",
        json={
            "importer_id": "TW10000001",
            "period_from": TODAY,
            "period_to": yesterday,
            "findings": [
                {"reference": "NOPE", "additional_duty": "1"},
                {"reference": other, "additional_duty": "1"},
                {"reference": mine[0], "additional_duty": "-5"},
                {"reference": mine[1]},
                {"reference": mine[1]},
            ],
        },
        headers=analyst,
    )
    assert bad.status_code == 422
    locs = {(p["loc"], p["code"]) for p in bad.json()["problems"]}
    assert ("$.period_to", "invalid_period") in locs
    assert ("$.findings[0].reference", "unknown_declaration") in locs
    assert ("$.findings[1].reference", "other_importer") in locs
    assert ("$.findings[2].additional_duty", "invalid_amount") in locs
    assert ("$.findings[4].reference", "duplicate") in locs
    assert ("$.findings[1].reference", "outside_period") not in locs  # reported as another importer's
    with unit_of_work() as s:
        assert s.scalars(select(AuditResultRow)).first() is None  # nothing half-written
    assert c.post("/risk/audit-results", json={}, headers=env.h("officer")).status_code == 403

    ok = c.post(
        "/risk/audit-results",
        json={
            "importer_id": "TW10000001",
            "period_from": TODAY,
            "period_to": TODAY,
            "findings": [{"reference": mine[0], "additional_duty": "1250.50"}],
            "note": "valuation audit",
        },
        headers=analyst,
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["recovered"] == "1250.50"
    listed = c.get("/risk/audit-results?importer_id=TW10000001", headers=env.h("officer")).json()
    assert [r["id"] for r in listed] == [ok.json()["id"]]

    with unit_of_work() as s:
        labels = export_labels(s).drop_duplicates("declaration_id").set_index("declaration_id")
    assert labels.loc[mine[0], "fraud"] == 1 and labels.loc[mine[0], "additional_duty"] == pytest.approx(1250.5)
    assert labels.loc[mine[1], "fraud"] == 0 and labels.loc[mine[1], "label_source"] == "audit"
    assert labels.loc[mine[0], "label_source"] == "audit"
    assert pd.isna(labels.loc[other, "fraud"]) and pd.isna(labels.loc[other, "label_source"])  # never looked at


def test_backtest_counts_declarations_hit_and_frauds_among_them(env: Env) -> None:
    c = env.client
    analyst = _token("analyst")
    phones = _file(env, 3)  # the demo filing: phones (8517) from CN
    rule = {"rule_id": "PHONES-CN", "when": WHEN, "lane": "C3", "reason": "Phones from CN", "valid_from": "2999-01-01"}
    bad = c.post(
        "/risk/targeting-rules/backtest", json={**rule, "when": "{field: orign, op: eq, value: CN}"}, headers=analyst
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["loc"] == "$.when.field"
    assert c.post("/risk/targeting-rules/backtest", json=rule, headers=env.h("officer")).status_code == 403
    c.post(
        "/risk/audit-results",
        json={
            "importer_id": "TW10000001",
            "period_from": TODAY,
            "period_to": TODAY,
            "findings": [{"reference": phones[0], "additional_duty": "10"}],
        },
        headers=analyst,
    )
    out = c.post("/risk/targeting-rules/backtest", json=rule, headers=analyst).json()
    assert out["declarations"] == 3 and out["hits"] == 3  # validity period not applied: as if active all along
    assert out["hits_labelled"] == 3 and out["hits_fraud"] == 1
    assert out["precision"] == pytest.approx(1 / 3) and out["fraud_share"] == 1.0
    assert out["from"] == TODAY and set(out["examples"]) == set(phones)
    miss = c.post(
        "/risk/targeting-rules/backtest", json={**rule, "when": "{field: origin, op: eq, value: JP}"}, headers=analyst
    )
    assert miss.json()["hits"] == 0 and miss.json()["precision"] is None
    with unit_of_work() as s:  # nothing saved by a backtest
        from smartcustoms.risk.store import TargetingRuleRow

        assert s.scalars(select(TargetingRuleRow)).first() is None


def test_console_backtest_audit_list_and_results(env_sqlite: Env, registry: tuple[str, str]) -> None:  # noqa: F811
    env = env_sqlite
    refs = _file(env, 2)
    _analyst()
    c = env.client
    sign_in(c, "ana", "ana-pw-12345")
    form = c.get("/console/risk/rules/new").text
    assert 'id="backtest-button"' in form
    csrf = _field(form, "csrf")
    page = c.post(
        "/console/risk/backtest",
        data={"csrf": csrf, "rule_id": "PHONES-CN", "when": WHEN, "lane": "C3", "reason": "Phones from CN"},
    )
    assert page.status_code == 200 and 'id="backtest"' in page.text
    assert 'id="bt-hits">2<' in page.text and refs[0] in page.text
    assert "PHONES-CN" in page.text and "Phones from CN" in page.text  # the form comes back as typed
    bad = c.post("/console/risk/backtest", data={"csrf": csrf, "rule_id": "X", "when": "{field: orign}"})
    assert bad.status_code == 422 and 'id="err-when"' in bad.text
    assert c.post("/console/risk/backtest", data={"csrf": "forged"}).status_code == 403

    audit = c.get("/console/risk/audit").text
    assert "The audit list has not been computed yet." in audit and 'id="audit-refresh"' in audit
    r = c.post("/console/risk/audit/refresh", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    audit = c.get("/console/risk/audit").text
    assert 'id="audit-list"' in audit and "TW10000001" in audit and 'id="audit-computed"' in audit

    wrong = c.post(
        "/console/risk/audit/results",
        data={"csrf": csrf, "importer_id": "TW10000001", "period_from": "soon", "period_to": TODAY, "findings": "X1 5"},
    )
    assert wrong.status_code == 422 and 'id="err-period_from"' in wrong.text and 'value="X1 5"' not in wrong.text
    assert "X1 5" in wrong.text  # the findings typed come back
    unknown = c.post(
        "/console/risk/audit/results",
        data={"csrf": csrf, "importer_id": "TW10000001", "period_from": TODAY, "period_to": TODAY, "findings": "X1 5"},
    )
    assert unknown.status_code == 422 and 'id="err-findings"' in unknown.text
    done = c.post(
        "/console/risk/audit/results",
        data={
            "csrf": csrf,
            "importer_id": "TW10000001",
            "period_from": TODAY,
            "period_to": TODAY,
            "findings": f"{refs[0]}\t300\n\n{refs[1]}, 0",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    listed = c.get("/console/risk/audit").text
    assert 'id="audit-results"' in listed and "300.00" in listed


def test_findings_text_lines() -> None:
    assert parse_findings("A 1\n\n  B\t2.5 \nC;3\nD, 4") == [
        {"reference": "A", "additional_duty": "1"},
        {"reference": "B", "additional_duty": "2.5"},
        {"reference": "C", "additional_duty": "3"},
        {"reference": "D", "additional_duty": "4"},
    ]
    assert parse_findings("E") == [{"reference": "E", "additional_duty": "0"}]


def test_cli_audit_refresh(
    env_sqlite: Env,
    registry: tuple[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _file(env_sqlite, 2)
    _analyst()
    assert run(monkeypatch, "risk", "audit-refresh", "--user", "ana", "--top", "3") == 0
    assert "Audit list: 1 importer(s) ranked with model" in capsys.readouterr().out
    assert run(monkeypatch, "risk", "audit-refresh", "--user", "trader") != 0
    assert "may not" in capsys.readouterr().err
    with unit_of_work() as s:
        assert len(s.scalars(select(AuditListRow)).all()) == 1


def test_audit_list_counts_codes_that_do_not_fit_their_description(env_sqlite: Env, registry: tuple[str, str]) -> None:  # noqa: F811
    env = env_sqlite
    analyst = _token("analyst")
    _file(env, 2)  # phones declared as phones
    odd = declaration(lrn="ODD-1")
    odd["importer"] = {**odd["importer"], "id": "TW30000003"}
    odd["declarant"] = {**odd["declarant"], "id": "TW30000003"}
    odd["items"][0]["description"] = "frozen boneless beef cuts"  # declared as phone parts: a mismatch
    assert env.client.post("/declarations", json=odd, headers=env.h("admin")).status_code == 201
    out = env.client.post("/risk/audit-list", headers=analyst).json()
    by = {r["importer_id"]: r for r in out["rows"]}
    assert by["TW30000003"]["code_mismatches"] == 1 and by["TW30000003"]["lines_checked"] == len(odd["items"])
    assert "lines checked have a code that fits their description poorly" in by["TW30000003"]["reason"]
    assert by["TW10000001"]["code_mismatches"] == 0
    assert [r["rank"] for r in out["rows"]] == list(range(1, len(out["rows"]) + 1))
    quick = env.client.post("/risk/audit-list?check_codes=false", headers=analyst).json()
    assert all(r.get("lines_checked") is None for r in quick["rows"])
