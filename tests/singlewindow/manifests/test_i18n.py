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
