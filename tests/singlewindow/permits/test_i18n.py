"""Issue 9 for permits: problems, findings, pages and commands in Traditional Chinese when asked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcustoms.api import create_app
from smartcustoms.cli import app
from smartcustoms.singlewindow.manifests import pages as manifest_pages
from smartcustoms.singlewindow.permits import pages as permit_pages
from smartcustoms.singlewindow.trade_documents import pages as document_pages
from tests.clearance.conftest import Env
from tests.clearance.test_pages import sign_in
from tests.clearance.test_pages_i18n import untranslated
from tests.platform.test_leftover_english import leftover_english
from tests.singlewindow.i18n_help import ZH, messages, problems
from tests.singlewindow.permits.conftest import meat_declaration, permit_body

TEMPLATES = sorted(
    p
    for module in (permit_pages, manifest_pages, document_pages)
    for p in (Path(str(module.__file__)).parent / "templates").glob("**/*.html")
)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_single_window_templates_have_no_literal_text(template: Path) -> None:
    assert untranslated(template.read_text(encoding="utf-8")) == []


def test_permit_problems_in_chinese_with_the_same_codes_and_paths(sw_sqlite: Env) -> None:
    env = sw_sqlite
    bad = permit_body(quantity_allowance="-3", valid_to="2020-01-01", valid_from="2026-01-01")
    en = env.client.post("/singlewindow/permits", json=bad, headers=env.h("baphiq"))
    zh = env.client.post("/singlewindow/permits", json=bad, headers=env.h("baphiq") | ZH)
    assert en.status_code == zh.status_code == 422
    assert problems(en) == problems(zh) and zh.headers["content-language"] == "zh-Hant"
    assert messages(en)["$.quantity_allowance"] == "An allowance must not be negative"
    assert messages(zh)["$.quantity_allowance"] == "核准額度不得為負數"
    assert messages(zh)["$.valid_to"] == "有效期間之終止日早於起始日"
    missing = env.client.get("/singlewindow/permits/NOPE", headers=env.h("baphiq") | ZH)
    assert missing.status_code == 404 and messages(missing)["$.number"] == "查無許可證 NOPE"


def test_unknown_permit_type_offers_the_agencys_types_by_name_in_chinese(sw_sqlite: Env) -> None:
    env = sw_sqlite
    body = permit_body("X-2", permit_type="strategic_export_licence")
    en = env.client.post("/singlewindow/permits", json=body, headers=env.h("baphiq"))
    zh = env.client.post("/singlewindow/permits", json=body, headers=env.h("baphiq") | ZH)
    assert en.status_code == zh.status_code == 422 and problems(en) == problems(zh)
    english, chinese = messages(en)["$.permit_type"], messages(zh)["$.permit_type"]
    assert "plant quarantine certificate (code plant_quarantine_certificate, import)" in english
    assert "animal quarantine certificate (code quarantine_certificate, import)" in english
    assert chinese.startswith("輸出入規定登錄中機關 BAPHIQ 無進口許可證類別「strategic_export_licence」;登錄所列:")
    assert "植物檢疫證明書(代碼 plant_quarantine_certificate,進口)" in chinese
    assert "動物檢疫證明書(代碼 quarantine_certificate,進口)" in chinese
    assert "(import)" not in chinese and "quarantine certificate" not in chinese


def test_permit_findings_in_chinese_in_the_api_and_on_the_declaration_page(sw_sqlite: Env) -> None:
    env = sw_sqlite
    env.client.post("/singlewindow/permits", json=permit_body(), headers=env.h("baphiq"))
    filed = env.client.post(
        "/declarations", json=meat_declaration(permits=["QC-001", "NOPE-9"]), headers=env.h("trader")
    ).json()
    ref = filed["reference"]
    en = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert any("Item 1: permit NOPE-9 is not known" in r for r in en["lane_reasons"])
    zh = env.client.get(f"/declarations/{ref}", headers=env.h("officer") | ZH).json()
    assert zh["lane_reasons"] == en["lane_reasons"], "stored and API text stays English"
    reasons = zh["localized"]["lane_reasons"]
    assert any("第 1 項:查無許可證 NOPE-9" in r for r in reasons)
    assert any("須有Food import inspection permit(TFDA)" in r for r in reasons)
    sign_in(env.client, "officer", "officer-pw-123")
    page = env.client.get(f"/console/declarations/{ref}?lang=zh-Hant").text
    assert "許可證檢核" in page and "第 1 項:查無許可證 NOPE-9" in page and "已保留" in page
    assert "Item 1: permit NOPE-9 is not known" not in page
    assert leftover_english(page) == []


def test_permit_pages_have_no_leftover_english_in_chinese(sw_sqlite: Env) -> None:
    env = sw_sqlite
    env.client.post("/singlewindow/permits", json=permit_body(), headers=env.h("baphiq"))
    env.client.post("/declarations", json=meat_declaration(permits=["QC-001"]), headers=env.h("trader"))
    for user, password in (("baphiq", "baphiq-pw-123"), ("admin", "admin-pw-123")):
        client = TestClient(create_app())
        sign_in(client, user, password)
        for url in ("/console/permits", "/console/permits/QC-001", "/console/permits/requirements?code=020130"):
            page = client.get(url + ("&" if "?" in url else "?") + "lang=zh-Hant")
            assert page.status_code == 200, url
            assert leftover_english(page.text) == [], url
    bad = client.post("/console/permits", data={"csrf": "nope"})
    assert bad.status_code in (403, 422)


def test_permit_commands_answer_in_chinese(sw_sqlite: Env) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["--lang", "zh-Hant", "singlewindow", "permits", "requirements", "--code", "020130"])
    assert r.exit_code == 0, r.output
    assert re.search(r"\d+ 項規定", r.output)
    assert re.search(r"│ 進口\s+│ BAPHIQ", r.output)  # the direction cell as a word
    r = runner.invoke(
        app, ["singlewindow", "permits", "revoke", "NOPE", "--reason", "x"], env={"SMARTCUSTOMS_LANG": "zh-Hant"}
    )
    assert r.exit_code == 2 and "[unknown_permit]" in r.output and "查無許可證 NOPE" in r.output
    r = runner.invoke(app, ["singlewindow", "permits", "requirements", "--code", "020130"], env={"LANG": "C"})
    assert re.search(r"\d+ requirement\(s\)", r.output) and re.search(r"│ import\s+│ BAPHIQ", r.output)
