"""Issue 9: problems, lane reasons, steps, the release note and CLI output in Traditional Chinese or English."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from smartcustoms.cli import app
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import forget_tokens
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import sign_in

ZH = {"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"}


def _bad() -> dict[str, object]:
    bad = declaration(lrn="I18N-BAD", currency="XYZ")
    bad["items"][0]["tariff_code"] = "770100"  # type: ignore[index]
    return bad


def test_problems_come_back_in_the_callers_language_with_the_same_codes_and_paths(env_sqlite: Env) -> None:
    en = env_sqlite.client.post("/declarations", json=_bad(), headers=env_sqlite.h("trader"))
    zh = env_sqlite.client.post("/declarations", json=_bad(), headers=env_sqlite.h("trader") | ZH)
    assert en.status_code == zh.status_code == 422
    assert en.headers["content-language"] == "en" and zh.headers["content-language"] == "zh-Hant"
    pe, pz = en.json()["problems"], zh.json()["problems"]
    assert [(p["code"], p["loc"]) for p in pe] == [(p["code"], p["loc"]) for p in pz]
    by_code = {p["code"]: p["message"] for p in pz}
    assert by_code["unknown_currency"] == "「XYZ」不是 ISO 4217 幣別代碼"
    assert {p["code"]: p["message"] for p in pe}["unknown_currency"] == "'XYZ' is not an ISO 4217 currency code"
    assert "稅則" in by_code["unknown_tariff_code"] or "稅則" in by_code.get("non_leaf_tariff_code", "")
    q = env_sqlite.client.post("/declarations?lang=zh-Hant", json=_bad(), headers=env_sqlite.h("trader"))
    assert q.json()["problems"] == pz


def test_pydantic_errors_are_translated_by_type(env_sqlite: Env) -> None:
    body = declaration(lrn="I18N-PYD")
    del body["currency"]
    body["items"][0]["quantity"] = "lots"  # type: ignore[index]
    zh = env_sqlite.client.post("/declarations", json=body, headers=env_sqlite.h("trader") | ZH)
    en = env_sqlite.client.post("/declarations", json=body, headers=env_sqlite.h("trader"))
    assert zh.status_code == en.status_code == 422
    assert [p["code"] for p in zh.json()["problems"]] == [p["code"] for p in en.json()["problems"]]
    messages = {p["loc"]: p["message"] for p in zh.json()["problems"]}
    assert messages["$.currency"] == "必填欄位"
    assert {p["loc"]: p["message"] for p in en.json()["problems"]}["$.currency"] == "Field required"
    assert zh.headers["content-language"] == "zh-Hant"


def test_the_users_stored_language_applies_when_the_request_names_none(env_sqlite: Env) -> None:
    with unit_of_work() as s:
        auth.update_user(s, "trader2", language="zh-Hant")
    forget_tokens()
    r = env_sqlite.client.get("/declarations/NOSUCHREF", headers=env_sqlite.h("trader2"))
    assert r.status_code == 404 and r.json()["problems"][0]["message"] == "查無報單 NOSUCHREF"
    r = env_sqlite.client.get("/declarations/NOSUCHREF?lang=en", headers=env_sqlite.h("trader2"))
    assert r.json()["problems"][0]["message"] == "No declaration NOSUCHREF"


def _watched(env: Env) -> str:
    r = env.client.put(
        "/admin/settings/lane_rules",
        json={"watch_hs_prefixes": ["8517"], "watch_importers": ["TW10000001"]},
        headers=env.h("admin"),
    )
    assert r.status_code == 200, r.text
    r = env.client.post("/declarations", json=declaration(lrn="I18N-WATCH"), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


def test_lane_reasons_and_steps_in_chinese_through_the_api_english_kept(env_sqlite: Env) -> None:
    ref = _watched(env_sqlite)
    en = env_sqlite.client.get(f"/declarations/{ref}", headers=env_sqlite.h("officer")).json()
    assert "localized" not in en
    assert "Importer TW10000001 is on the watchlist" in en["lane_reasons"]
    r = env_sqlite.client.get(f"/declarations/{ref}", headers=env_sqlite.h("officer") | ZH)
    zh = r.json()
    assert r.headers["content-language"] == "zh-Hant"
    assert zh["lane_reasons"] == en["lane_reasons"]
    loc = zh["localized"]
    assert loc["lang"] == "zh-Hant"
    assert "進口人 TW10000001 列於注檢名單" in loc["lane_reasons"]
    assert any(r.startswith("第 1 項:稅則號別 851713") for r in loc["lane_reasons"])
    assert any(s.startswith("完稅價格(CIF)") for s in loc["assessment_steps"])
    assert any("營業稅" in s for s in loc["item_steps"]["1"])
    queue = env_sqlite.client.get("/queue", headers=env_sqlite.h("officer") | ZH).json()["items"]
    assert any("進口人 TW10000001 列於注檢名單" in i["localized"]["lane_reasons"] for i in queue)


def test_lane_reasons_and_release_note_in_chinese_on_the_console(env_sqlite: Env) -> None:
    ref = _watched(env_sqlite)
    sign_in(env_sqlite.client, "officer", "officer-pw-123")
    page = env_sqlite.client.get(f"/console/declarations/{ref}?lang=zh-Hant").text
    assert "進口人 TW10000001 列於注檢名單" in page and "完稅價格(CIF)" in page
    assert "Importer TW10000001 is on the watchlist" not in page
    english = env_sqlite.client.get(f"/console/declarations/{ref}?lang=en").text
    assert "Importer TW10000001 is on the watchlist" in english
    r = env_sqlite.client.post(
        f"/declarations/{ref}/decisions", json={"action": "release"}, headers=env_sqlite.h("officer")
    )
    assert r.status_code == 200, r.text
    note = env_sqlite.client.get(f"/console/declarations/{ref}/release-note?lang=zh-Hant").text
    assert f"報單 {ref} 所列貨物已於" in note and "海關放行" in note
    api = env_sqlite.client.get(f"/declarations/{ref}/release-note", headers=env_sqlite.h("trader") | ZH).json()
    assert api["title"] == f"海關放行通知 {ref}" and api["statement"].startswith(f"報單 {ref} 所列貨物")
    api_en = env_sqlite.client.get(f"/declarations/{ref}/release-note", headers=env_sqlite.h("trader")).json()
    assert api_en["statement"].startswith(f"The goods of declaration {ref} were released")


def test_console_validation_errors_in_chinese(env_sqlite: Env) -> None:
    ref = _watched(env_sqlite)
    sign_in(env_sqlite.client, "officer", "officer-pw-123")
    page = env_sqlite.client.get(f"/console/declarations/{ref}?lang=zh-Hant").text

    csrf = re.search(r'name="csrf" value="([^"]*)"', page)
    assert csrf
    r = env_sqlite.client.post(
        f"/console/declarations/{ref}/decision",
        data={"csrf": csrf.group(1), "action": "hold", "reason": ""},
        headers={"Referer": f"http://testserver/console/declarations/{ref}?lang=zh-Hant"},
    )
    assert r.status_code == 422 and "「暫緩」須填寫理由" in r.text
    # the language switch on a page answering a form goes back to the form's page, not to the POST URL
    assert f'href="/console/declarations/{ref}?lang=en"' in r.text


def test_cli_speaks_chinese_when_asked(env_sqlite: Env, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_bad()))
    r = runner.invoke(app, ["declarations", "submit", str(bad), "--user", "trader", "--lang", "zh-Hant"])
    assert r.exit_code == 1
    assert "「XYZ」不是 ISO 4217 幣別代碼" in r.output and "unknown_currency" in r.output
    assert "1 份報單中有 1 份被拒絕" in r.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps(declaration(lrn="I18N-CLI")))
    r = runner.invoke(
        app, ["declarations", "submit", str(good), "--user", "trader"], env={"SMARTCUSTOMS_LANG": "zh-Hant"}
    )
    assert r.exit_code == 0 and "通關方式 C1" in r.output and "已放行" in r.output
    r = runner.invoke(app, ["declarations", "list", "--user", "trader"], env={"LANG": "zh_TW.UTF-8"})
    assert r.exit_code == 0 and "顯示 1 筆,共 1 筆" in r.output
    r = runner.invoke(app, ["declarations", "list", "--user", "trader", "--lang", "en"], env={"LANG": "zh_TW.UTF-8"})
    assert "1 of 1" in r.output


def test_filing_answers_in_chinese_when_asked_and_as_before_otherwise(env_sqlite: Env) -> None:
    zh = env_sqlite.client.post("/declarations", json=declaration(lrn="I18N-F1"), headers=env_sqlite.h("trader") | ZH)
    assert zh.status_code == 201 and zh.headers["content-language"] == "zh-Hant"
    body = zh.json()
    assert body["lane_reasons"] == ["No rule selected this declaration: paperless release"]
    assert body["localized"]["lane_reasons"] == ["未觸發任何規則:免審免驗,無紙化放行"]
    en = env_sqlite.client.post("/declarations", json=declaration(lrn="I18N-F2"), headers=env_sqlite.h("trader"))
    assert en.status_code == 201 and "localized" not in en.json()
    again = env_sqlite.client.post("/declarations", json=declaration(lrn="I18N-F1"), headers=env_sqlite.h("trader"))
    assert again.status_code == 200 and "localized" not in again.json()


def test_cli_problems_left_to_the_main_command_are_in_the_output_language(env_sqlite: Env, tmp_path: Path) -> None:
    f = tmp_path / "fx.csv"
    f.write_text("currency,rate\nEUR,1\n")
    r = CliRunner().invoke(app, ["fx", "import", str(f), "--lang", "zh-Hant"])
    assert r.exit_code != 0 and r.exception is not None
    problem = r.exception.problems[0]  # type: ignore[attr-defined]
    assert problem.code == "missing_columns" and problem.message == "缺少欄位:valid_from"
    r = CliRunner().invoke(app, ["declarations", "list", "--user", "nobody"], env={"SMARTCUSTOMS_LANG": "zh-Hant"})
    assert r.exception.problems[0].message == "查無使用者「nobody」"  # type: ignore[union-attr]
    assert "--lang" in CliRunner().invoke(app, ["declarations", "submit", "--help"]).output


def test_assessment_steps_with_long_rate_texts_read_in_chinese(env_sqlite: Env) -> None:
    """A schedule's rate text is data (shown as written), so a step carrying a long rate in words still
    reads in Chinese: on the declaration page and in the API, for rows stored before this change too."""
    from sqlalchemy import select

    from smartcustoms.clearance.store import DeclarationRow

    r = env_sqlite.client.post("/declarations", json=declaration(lrn="I18N-RATE"), headers=env_sqlite.h("trader"))
    ref = r.json()["reference"]
    rate = "25% or NT$3.50/kg, whichever is higher, but not less than the rate applicable to the parts"
    steps = [
        f"Preference ECFA claimed (proof CO-1): rate {rate}",
        f"{rate}: free = 0.00",
        f"Duty ({rate}) = TWD 1,234.00",
    ]
    with unit_of_work() as s:
        row = s.scalars(select(DeclarationRow).where(DeclarationRow.reference == ref)).one()
        assessment = dict(row.assessment)
        items = [dict(i) for i in assessment["items"]]
        items[0]["steps"] = steps
        assessment["items"] = items
        row.assessment = assessment
    zh = env_sqlite.client.get(f"/declarations/{ref}", headers=env_sqlite.h("officer") | ZH).json()
    assert zh["assessment"]["items"][0]["steps"] == steps, "stored English kept"
    assert zh["localized"]["item_steps"]["1"] == [
        f"申請適用 ECFA 優惠稅率(原產地證明 CO-1):稅率 {rate}",
        f"{rate}:免稅 = 0.00",
        f"關稅({rate})= TWD 1,234.00",
    ]
    sign_in(env_sqlite.client, "officer", "officer-pw-123")
    page = env_sqlite.client.get(f"/console/declarations/{ref}?lang=zh-Hant").text
    assert f"關稅({rate})= TWD 1,234.00" in page.replace("&#39;", "'")
    assert "Duty (" not in page
