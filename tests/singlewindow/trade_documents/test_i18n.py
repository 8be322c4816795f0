"""Issue 9 for trade documents: problems, check findings, the panel and the report command in Chinese."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcustoms.api import create_app
from smartcustoms.cli import app
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import sign_in
from tests.platform.test_leftover_english import leftover_english
from tests.singlewindow.i18n_help import ZH, messages, problems
from tests.singlewindow.trade_documents.conftest import doc


def test_trade_document_problems_in_chinese_with_the_same_codes_and_paths(env_sqlite: Env) -> None:
    env = env_sqlite
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    url = f"/declarations/{ref}/trade-documents"
    body = {"type": "packing_list", "data": doc("packing_list", packages="-4")}
    en = env.client.post(url, json=body, headers=env.h("trader"))
    zh = env.client.post(url, json=body, headers=env.h("trader") | ZH)
    assert en.status_code == zh.status_code == 422 and problems(en) == problems(zh)
    assert messages(en)["$.data.packages"] == "packages must be a number, got '-4'"
    assert messages(zh)["$.data.packages"] == "packages 須為數字,收到「-4」"
    unknown = env.client.post(url, json={"type": "certificate", "data": {}}, headers=env.h("trader") | ZH)
    assert problems(unknown) == [("unknown_type", "$.type")]
    assert messages(unknown)["$.type"].startswith("未知的文件類別「certificate」")


def test_trade_document_findings_in_chinese_on_the_page_and_in_the_command(env_sqlite: Env) -> None:
    env = env_sqlite
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    body = {"type": "bill_of_lading", "data": doc("bill_of_lading", consignee={"name": "Another Importer"})}
    assert (
        env.client.post(f"/declarations/{ref}/trade-documents", json=body, headers=env.h("trader")).status_code == 201
    )
    zh = env.client.get(f"/declarations/{ref}", headers=env.h("officer") | ZH).json()
    assert any(r.startswith("提單收貨人:申報 ") for r in zh["localized"]["findings"] or zh["localized"]["lane_reasons"])
    officer = TestClient(create_app())
    sign_in(officer, "officer", "officer-pw-123")
    page = officer.get(f"/console/declarations/{ref}?lang=zh-Hant").text
    assert "貿易文件比對" in page and "收貨人" in page and "名稱相似度 ≥" in page and "不符 · 高" in page
    assert leftover_english(page) == []
    r = CliRunner().invoke(app, ["--lang", "zh-Hant", "singlewindow", "trade-documents", "report", ref])
    assert r.exit_code == 0, r.output
    assert "報告第 1 版" in r.output and "1 處不符" in r.output and "嚴重程度" in r.output
    assert "提單" in r.output and "收貨人" in r.output and "不符" in r.output
    r = CliRunner().invoke(app, ["singlewindow", "trade-documents", "report", ref], env={"LANG": "C"})
    assert "1 mismatches" in r.output
