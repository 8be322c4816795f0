"""Issue 9 for risk: rule problems, lane reasons, pages and commands in Traditional Chinese when asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcustoms.api import create_app
from smartcustoms.cli import app
from smartcustoms.platform.i18n import translate
from smartcustoms.risk.revenue import ExpectedRevenue
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import sign_in
from tests.platform.test_leftover_english import leftover_english
from tests.risk.conftest import make_kcs, write_csv
from tests.risk.test_api import _token
from tests.risk.test_pages import WHEN, registry  # noqa: F401  (fixture)

ZH = {"Accept-Language": "zh-TW,zh;q=0.9"}
RULE = {"rule_id": "PHONES-CN", "when": WHEN, "lane": "C3", "reason": "Phones from CN"}


def test_rule_problems_in_chinese_with_the_same_codes_and_paths(env_sqlite: Env) -> None:
    c, analyst = env_sqlite.client, _token("analyst")
    bad = {**RULE, "when": {"field": "orign", "op": "eq", "value": "CN"}, "score": 2}
    en = c.post("/risk/targeting-rules", json=bad, headers=analyst)
    zh = c.post("/risk/targeting-rules", json=bad, headers=analyst | ZH)
    assert en.status_code == zh.status_code == 422 and zh.headers["content-language"] == "zh-Hant"
    assert [(p["code"], p["loc"]) for p in en.json()["problems"]] == [
        (p["code"], p["loc"]) for p in zh.json()["problems"]
    ]
    msgs = {p["loc"]: p["message"] for p in zh.json()["problems"]}
    assert msgs["$.when.field"].startswith("未知的欄位 'orign';可用:")
    assert msgs["$.score"] == "score 須為 0 至 1 之數值,收到 2.0"
    denied = c.post("/risk/targeting-rules", json=RULE, headers=env_sqlite.h("trader") | ZH)
    assert denied.status_code == 403 and denied.json()["problems"][0]["message"].startswith("角色 trader ")


def test_model_reasons_read_back_from_their_english_text() -> None:
    assert (
        translate("importer's past fraud rate 12 % vs 5 % average (3 of 25)", "zh-Hant")
        == "進口人過去違規率 12 %,平均為 5 %(25 件中 3 件)"
    )
    assert translate("HS heading 8517 has no inspection history", "zh-Hant") == "稅則 8517 節無查驗紀錄"
    assert (
        translate("unit price 60 % below the reference for HS 851713 from CN; revenue at risk about 1,200", "zh-Hant")
        == "單價低於來自 CN 之 HS 851713之參考價格 60 %;涉及稅收約 1,200"
    )
    expected = ExpectedRevenue(
        amount=1234.0, probability=0.5, yield_per_finding=2468.0, chapter="85", findings=3, source="yields"
    )
    english = expected.reason()
    assert english.startswith("expected additional revenue about 1,234 (risk 50 % x average yield 2,468 of 3 findings")
    assert translate(english, "zh-Hant").startswith(
        "預期增徵稅額約 1,234(風險 50 % x 稅則第 85 章 3 件查獲之平均增徵稅額 2,468"
    )


def test_lane_reasons_and_risk_pages_in_chinese(env_sqlite: Env, registry: tuple[str, str]) -> None:  # noqa: F811
    c, env = env_sqlite.client, env_sqlite
    assert c.post("/risk/targeting-rules", json=RULE, headers=_token("analyst")).status_code == 201
    ref = c.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    en = c.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert any(r.startswith("Targeting rule PHONES-CN v1: Phones from CN") for r in en["lane_reasons"])
    zh = c.get(f"/declarations/{ref}", headers=env.h("officer") | ZH).json()
    assert any(r.startswith("目標規則 PHONES-CN 第 1 版:Phones from CN") for r in zh["localized"]["lane_reasons"])
    officer = TestClient(create_app())
    sign_in(officer, "officer", "officer-pw-123")
    queue = officer.get("/console/risk?lang=zh-Hant").text
    assert "目標規則 PHONES-CN 第 1 版:Phones from CN" in queue and "預期增徵稅額約" in queue
    assert "Targeting rule PHONES-CN" not in queue
    for url in (
        "/console/risk",
        "/console/risk/rules",
        "/console/risk/rules/PHONES-CN",
        "/console/risk/models",
        "/console/risk/audit",
        f"/console/declarations/{ref}",
    ):
        page = officer.get(url + "?lang=zh-Hant")
        assert page.status_code == 200, url
        assert leftover_english(page.text) == [], url


def test_risk_commands_answer_in_chinese(registry: tuple[str, str]) -> None:  # noqa: F811
    old, new = registry
    runner = CliRunner()
    r = runner.invoke(app, ["--lang", "zh-Hant", "risk", "models", "rollback", old])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"目前啟用之模型為 {old}"
    r = runner.invoke(app, ["risk", "models", "list"], env={"SMARTCUSTOMS_LANG": "zh-Hant"})
    assert "訓練期間" in r.output and "AUC" in r.output
    r = runner.invoke(app, ["risk", "models", "rollback", new], env={"LANG": "C"})
    assert r.output.strip() == f"active model is now {new}"


def test_train_and_backtest_summaries_in_chinese(tmp_path: Path) -> None:
    """`risk train` metrics and the `risk backtest` table in the reader's language; the model files unchanged."""
    data = write_csv(make_kcs(900, seed=3), tmp_path / "a.csv")
    runner = CliRunner()
    zh = runner.invoke(
        app,
        [
            "--lang",
            "zh-Hant",
            "risk",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--n-estimators",
            "20",
        ],
    )
    assert zh.exit_code == 0, zh.output
    assert "模型 selectivity-kcs-" in zh.output and "較晚期間驗證" in zh.output and "AUC" in zh.output
    assert "基準方法(稅則章過去違規率)於同一驗證區間" in zh.output
    assert "written to" not in zh.output and "baseline" not in zh.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["format"] == "kcs"
    en = runner.invoke(
        app,
        ["risk", "train", "--data", str(data), "--out", str(tmp_path / "m2"), "--n-estimators", "20"],
        env={"LANG": "C"},
    )
    assert re.search(
        r"model selectivity-kcs-\S+ written to .*time-later slice .*: AUC [\d.]+, precision@10% ", en.output
    )
    assert "baseline (HS chapter past fraud rate) on the same slice: AUC " in en.output

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: CN\n    when: {field: origin, op: eq, value: CN}\n    lane: C2\n    reason: x\n")
    args = ["risk", "backtest", "--rules", str(rules), "--data", str(data), "--format", "kcs"]
    zh = runner.invoke(app, args, env={"SMARTCUSTOMS_LANG": "zh-Hant"})
    assert zh.exit_code == 0, zh.output
    assert "命中件數" in zh.output and "精確率" in zh.output and "hits" not in zh.output
    assert "1 條規則,回測 900 筆報單" in zh.output
    en = runner.invoke(app, args, env={"LANG": "C"})
    assert "hits" in en.output and "1 rule(s) over 900 declarations" in en.output


def test_what_people_wrote_is_never_translated_even_when_it_equals_a_catalogue_entry(
    env_sqlite: Env,
    registry: tuple[str, str],  # noqa: F811
) -> None:
    """An analyst's rule reason and the filer's goods descriptions "Used" / "Office" (both catalogue msgids)
    stay as written on a Chinese page and in the API's localized block; the sentence around them is Chinese."""
    c, env = env_sqlite.client, env_sqlite
    rule = RULE | {"rule_id": "USED-GOODS", "reason": "Used"}
    assert c.post("/risk/targeting-rules", json=rule, headers=_token("analyst")).status_code == 201
    filing = declaration(lrn="I18N-USED")
    filing["items"][0]["description"] = "Used"
    filing["items"][1]["description"] = "Office"
    ref = c.post("/declarations", json=filing, headers=env.h("trader")).json()["reference"]
    zh = c.get(f"/declarations/{ref}", headers=env.h("officer") | ZH).json()
    assert [i["description"] for i in zh["declaration"]["items"]] == ["Used", "Office"]
    assert any(r.startswith("目標規則 USED-GOODS 第 1 版:Used") for r in zh["localized"]["lane_reasons"])
    assert not any("已使用" in r for r in zh["localized"]["lane_reasons"] + zh["localized"]["findings"])
    officer = TestClient(create_app())
    sign_in(officer, "officer", "officer-pw-123")
    page = officer.get(f"/console/declarations/{ref}?lang=zh-Hant").text
    assert "目標規則 USED-GOODS 第 1 版:Used" in page and "已使用" not in page
    assert ">Used<" in page and ">Office<" in page
    assert set(leftover_english(page)) <= {"Used", "Office"}, "only the filer's words stay English"
    queue = officer.get("/console/risk?lang=zh-Hant").text
    assert "目標規則 USED-GOODS 第 1 版:Used" in queue and "已使用" not in queue
