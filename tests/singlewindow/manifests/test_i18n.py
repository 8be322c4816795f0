"""Issue 9 for manifests: problems, discrepancy findings, pages and commands in Traditional Chinese."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcustoms.api import create_app
from smartcustoms.cli import app
from tests.clearance.conftest import Env, declaration
from tests.clearance.test_pages import sign_in
from tests.platform.test_leftover_english import leftover_english
from tests.singlewindow.i18n_help import ZH, messages, problems
from tests.singlewindow.manifests.conftest import manifest


def test_manifest_problems_in_chinese_with_the_same_codes_and_paths(env_sqlite: Env) -> None:
    env = env_sqlite
    body = manifest(mode="hovercraft")
    body["lines"][0]["packages"] = -1
    en = env.client.post("/manifests", json=body, headers=env.h("carrier"))
    zh = env.client.post("/manifests", json=body, headers=env.h("carrier") | ZH)
    assert en.status_code == zh.status_code == 422 and problems(en) == problems(zh)
    assert messages(zh)["$.mode"].startswith("未知的運輸方式「hovercraft」")
    assert messages(zh)["$.lines[0].packages"] == "packages 不得為負數(-1)"
    assert messages(en)["$.lines[0].packages"] == "packages may not be negative (-1)"


def test_manifest_findings_in_chinese_and_pages_without_leftover_english(env_sqlite: Env) -> None:
    env = env_sqlite
    arrived = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    mref = env.client.post("/manifests", json=manifest(expected_arrival=arrived), headers=env.h("carrier")).json()[
        "reference"
    ]
    bad = declaration(lrn="SW-ZH-2", transport_documents=[{"type": "BL", "reference": "EGLV000999999"}])
    ref = env.client.post("/declarations", json=bad, headers=env.h("trader")).json()["reference"]
    zh = env.client.get(f"/declarations/{ref}", headers=env.h("officer") | ZH).json()
    reasons = " ".join(zh["localized"]["lane_reasons"])
    assert "艙單項目 EGLV000999999 之收貨人為 Taipei Apparel Ltd" in reasons
    assert "申報毛重" in reasons and "超過容許範圍" in reasons
    officer = TestClient(create_app())
    sign_in(officer, "officer", "officer-pw-123")
    for url in (
        f"/console/declarations/{ref}",
        "/console/manifests",
        f"/console/manifests/{mref}",
        "/console/manifests?view=follow-up",
    ):
        page = officer.get(url + ("&" if "?" in url else "?") + "lang=zh-Hant")
        assert page.status_code == 200, url
        assert leftover_english(page.text) == [], url
    assert "艙單" in officer.get("/console/manifests?lang=zh-Hant").text


def test_manifest_commands_answer_in_chinese(env_sqlite: Env) -> None:
    env_sqlite.client.post("/manifests", json=manifest(), headers=env_sqlite.h("carrier"))
    runner = CliRunner()
    r = runner.invoke(app, ["--lang", "zh-Hant", "singlewindow", "manifests", "list"])
    assert r.exit_code == 0, r.output
    assert "1 份艙單" in r.output and "航次" in r.output
    r = runner.invoke(app, ["singlewindow", "manifests", "list"], env={"LANG": "C"})
    assert "1 manifests" in r.output and "Voyage" in r.output


def test_transport_modes_and_directions_inside_sentences_read_as_words() -> None:
    """Codes inside sentences (`sea`, `import`) stay codes in English and become words in Chinese."""
    from smartcustoms.clearance.lifecycle import MODE_WORDS, TYPE_WORDS
    from smartcustoms.platform.i18n import t, t_plain, translate

    stored = t_plain(
        "No manifest line for this {mode_text} import (no transport document given)", mode_text=MODE_WORDS["sea"]
    )
    assert stored == "No manifest line for this sea import (no transport document given)"  # old rows read the same
    assert translate(stored, "zh-Hant") == "本海運進口貨物無艙單項目(未提供運輸單據)"
    assert (
        translate("No manifest line for this inland_water import (transport documents: BL1, BL2)", "zh-Hant")
        == "本內河運輸進口貨物無艙單項目(運輸單據:BL1, BL2)"
    )
    arrived = t(
        "Manifest {reference} can no longer be replaced: the {mode_text} arrival at {port} is past",
        reference="M1",
        mode_text=MODE_WORDS["air"],
        port="TWTPE",
    )
    assert arrived == "Manifest M1 can no longer be replaced: the air arrival at TWTPE is past"
    assert (
        translate(arrived, "zh-Hant")
        == translate(str(arrived), "zh-Hant")
        == "艙單 M1 已不得更正:貨物已以空運抵達 TWTPE"
    )
    assert (
        translate("Goods arriving by road need a transport document (B/L, AWB, CMR or CIM)", "zh-Hant")
        == "以公路運輸方式到達的貨物須附運輸單據(提單、空運提單、CMR 或 CIM)"
    )
    unknown = t(
        "The requirements registry names no {direction_text} permit type '{permit_type}' for agency {agency}; "
        "it names: {offered_texts}",
        direction_text=TYPE_WORDS["export"],
        permit_type="X",
        agency="BAPHIQ",
        offered_texts="-",
    )
    assert "names no export permit type" in unknown
    assert translate(unknown, "zh-Hant") == "輸出入規定登錄中機關 BAPHIQ 無出口許可證類別「X」;登錄所列:-"
