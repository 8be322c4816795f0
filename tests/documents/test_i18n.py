"""Issue 9 for documents: problems, verification reasons, pages and commands in Traditional Chinese."""

from __future__ import annotations

import copy
import html
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcustoms.api import create_app
from smartcustoms.clearance.pages import csrf_token
from smartcustoms.cli import app
from smartcustoms.documents import exchange, merkle, service, signing, store
from smartcustoms.platform import auth
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.i18n import translate
from smartcustoms.platform.migrate import upgrade
from smartcustoms.platform.web import forget_tokens
from smartcustoms.singlewindow.trade_documents.model import parse_amount
from tests.platform.test_leftover_english import leftover_english

from .test_exchange import FakePartner
from .test_service import coo

ZH = {"Accept-Language": "zh-TW,zh;q=0.9"}


def _token(username: str, role: str) -> dict[str, str]:
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, username, role))
    return {"Authorization": f"Bearer {token}"}


def test_problems_and_verification_reasons_in_chinese(sqlite_url: str) -> None:
    store.forget_trees()
    forget_tokens()
    client = TestClient(create_app())
    admin, officer = _token("adm", "admin"), _token("off", "officer")
    bad_issuer = {"id": "bad id!", "name": "", "kind": "pirate"}
    en = client.post("/documents/issuers", json=bad_issuer, headers=admin)
    zh = client.post("/documents/issuers", json=bad_issuer, headers=admin | ZH)
    assert en.status_code == zh.status_code == 422 and zh.headers["content-language"] == "zh-Hant"
    assert [(p["code"], p["loc"]) for p in en.json()["problems"]] == [
        (p["code"], p["loc"]) for p in zh.json()["problems"]
    ]
    messages = {p["loc"]: p["message"] for p in zh.json()["problems"]}
    assert messages["$.name"] == "簽發者名稱為必填" and messages["$.kind"].startswith("簽發者類別須為 ")

    r = client.post(
        "/documents/issuers", json={"id": "customs-tw", "name": "Taiwan Customs", "kind": "customs"}, headers=admin
    )
    assert r.status_code == 201, r.text
    body = {"issuer": "customs-tw", "type": "certificate_of_origin", "documents": [coo(1), coo(2)]}
    wrong = client.post("/documents/issue", json={**body, "type": "packing_list"}, headers=officer | ZH)
    assert wrong.status_code == 422 and wrong.json()["problems"][0]["code"] == "unknown_schema"
    assert wrong.json()["problems"][0]["message"].startswith("未知的文件類別 'packing_list';須為 ")
    docs = client.post("/documents/issue", json=body, headers=officer).json()["documents"]

    plain = client.post("/documents/verify", json=docs[0]).json()
    assert "localized" not in plain
    assert plain["checks"]["integrity"]["reason"] == "target hash and Merkle proof match"
    v = client.post("/documents/verify", json=docs[0], headers=ZH).json()
    assert v["checks"] == plain["checks"], "reasons stay English; the localized block carries them translated"
    assert v["localized"]["checks"]["integrity"] == "目標雜湊與 Merkle 證明相符"
    assert v["localized"]["checks"]["status"].startswith("customs-tw 日誌第 0 筆,已納入大小為 2 之簽章檢查點;未撤銷")
    assert v["localized"]["checks"]["identity"].startswith("由 customs-tw 以金鑰 ")
    target = docs[1]["signature"]["targetHash"]
    assert client.post(f"/documents/{target}/revoke", json={"reason": "wrong importer"}, headers=officer).is_success
    revoked = client.post("/documents/verify?lang=zh-Hant", json=docs[1]).json()
    assert revoked["localized"]["checks"]["status"] == "已由簽發者撤銷(日誌第 2 筆):wrong importer"
    tampered = json.loads(json.dumps(docs[0]))
    tampered["data"]["certificateNumber"] = "x"
    broken = client.post("/documents/verify", json=tampered, headers=ZH).json()
    assert broken["localized"]["checks"]["integrity"].startswith("文件資料遭變更")


def test_pages_have_no_leftover_english_in_chinese(sqlite_url: str) -> None:
    store.forget_trees()
    forget_tokens()
    key = signing.generate_private_key()
    reg = signing.KeyRegistry()
    reg.rotate("customs-nz", signing.public_key_of(key), datetime(2026, 1, 1, tzinfo=UTC))
    exchange.follow_partner(SYSTEM, "customs-nz", "NZ", "customs", reg.as_dict(), base_url="http://127.0.0.1:9/")
    partner = FakePartner("customs-nz", key)
    partner.add(3)
    exchange.sync_partner(SYSTEM, "customs-nz", partner)
    partner.payloads[1] = json.dumps({"kind": "issue", "targetHash": "ee" * 32})
    with pytest.raises(exchange.ForkAlarm):
        exchange.sync_partner(SYSTEM, "customs-nz", partner)
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "adm2", "admin"))
    admin = TestClient(create_app())
    admin.cookies.set("sc_session", token)
    page = admin.get("/console/documents/partners?lang=zh-Hant")
    assert page.status_code == 200 and "夥伴日誌" in page.text
    assert "樹大小 3 出現兩個不同的根(分叉)" in page.text or "分叉" in page.text
    assert leftover_english(page.text) == []
    synced = admin.post(
        "/console/documents/partners/sync?lang=zh-Hant", data={"csrf": csrf_token(token), "issuer": "customs-nz"}
    )
    assert synced.status_code == 409 and "partner_unreachable" in synced.text
    assert leftover_english(synced.text) == []
    verify = TestClient(create_app()).get("/console/documents/verify?lang=zh-Hant")
    assert verify.status_code == 200 and leftover_english(verify.text) == []


def test_commands_answer_in_chinese(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "missing.json"
    r = runner.invoke(app, ["--lang", "zh-Hant", "documents", "verify", "--no-db", str(missing)])
    assert r.exit_code == 2 and f"error [not_found] {missing}:查無此檔案" in r.output
    (tmp_path / "bad.json").write_text("{nope")
    r = runner.invoke(app, ["documents", "verify", "--no-db", str(tmp_path / "bad.json")], env={"LANG": "zh_TW.UTF-8"})
    assert r.exit_code == 2 and "不是有效的 JSON" in r.output
    r = runner.invoke(app, ["documents", "verify", "--no-db", str(missing)], env={"LANG": "C"})
    assert f"{missing}: no such file" in r.output


class _BrokenCheckpoint(FakePartner):
    """A partner whose checkpoint note is garbled (its size line is not a number)."""

    def checkpoint(self, issuer: str) -> str:
        body, _, sigs = super().checkpoint(issuer).partition("\n\n")
        lines = body.split("\n")
        lines[1] = "many"
        return "\n".join(lines) + "\n\n" + sigs


def test_malformed_proofs_and_checkpoints_are_explained_in_chinese(sqlite_url: str, tmp_path: Path) -> None:
    """A partner's malformed proof or checkpoint: the low-level reason comes back in the caller's language."""
    a_url = f"sqlite:///{tmp_path / 'node-a.db'}"
    upgrade(a_url)
    store.forget_trees()
    forget_tokens()
    service.register_issuer(SYSTEM, "customs-tw", "Taiwan Customs", "customs", url=a_url)
    docs = service.issue_documents(SYSTEM, "customs-tw", "certificate_of_origin", [coo(1), coo(2)], url=a_url)
    client = TestClient(create_app())

    # this node does not follow customs-tw: status is read from the document's own log receipt
    garbled = copy.deepcopy(docs[0])
    lines = garbled["smartcustoms"]["checkpoint"].split("\n")
    lines[1] = "many"
    garbled["smartcustoms"]["checkpoint"] = "\n".join(lines)
    en = client.post("/documents/verify", json=garbled).json()
    assert (
        en["checks"]["status"]["reason"]
        == "malformed log receipt: malformed checkpoint body: size 'many' is not a number"
    )
    zh = client.post("/documents/verify", json=garbled, headers=ZH).json()
    assert zh["localized"]["checks"]["status"] == "日誌收據格式錯誤:檢查點內容格式錯誤:大小 'many' 不是數字"
    garbled["smartcustoms"]["inclusionProof"] = ["%%"]
    garbled["smartcustoms"]["checkpoint"] = docs[0]["smartcustoms"]["checkpoint"]
    zh = client.post("/documents/verify?lang=zh-Hant", json=garbled).json()
    assert zh["localized"]["checks"]["status"] == "日誌收據格式錯誤:inclusionProof 不是 base64 雜湊清單"

    # a followed partner pushes a document whose signature proof is malformed: refused, codes unchanged
    exchange.follow_partner(
        SYSTEM, "customs-tw", "Taiwan Customs", "customs", service.key_registry("customs-tw", url=a_url)
    )
    exchange.sync_partner(SYSTEM, "customs-tw", exchange.LocalPartner(a_url))
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "tw-node", "partner", party_id="customs-tw"))
    push = {"Authorization": f"Bearer {token}"}
    bad = copy.deepcopy(docs[1])
    bad["proof"][0]["created"] = "yesterday"
    en_r = client.post("/documents/inbox", json={"document": bad, "declaration_ref": "DEC-9"}, headers=push)
    zh_r = client.post("/documents/inbox", json={"document": bad, "declaration_ref": "DEC-9"}, headers=push | ZH)
    assert en_r.status_code == zh_r.status_code == 422 and zh_r.headers["content-language"] == "zh-Hant"
    en_p, zh_p = en_r.json()["problems"], zh_r.json()["problems"]
    assert [(p["code"], p["loc"]) for p in en_p] == [(p["code"], p["loc"]) for p in zh_p]
    assert {p["code"]: p["message"] for p in en_p}["identity_invalid"] == (
        "malformed proof: created 'yesterday' is not an ISO 8601 time"
    )
    assert {p["code"]: p["message"] for p in zh_p}[
        "identity_invalid"
    ] == "證明格式錯誤:created 'yesterday' 不是 ISO 8601 時間"
    bad["proof"][0]["created"] = docs[1]["proof"][0]["created"]
    bad["proof"][0]["signature"] = "not base64!"
    zh_r = client.post("/documents/inbox", json={"document": bad, "declaration_ref": "DEC-9"}, headers=push | ZH)
    assert {p["code"]: p["message"] for p in zh_r.json()["problems"]}[
        "identity_invalid"
    ] == "證明格式錯誤:不是有效的 base64"

    # a partner's garbled checkpoint raises an alarm whose reason reads in Chinese (stored English, API, page)
    key = signing.generate_private_key()
    reg = signing.KeyRegistry()
    reg.rotate("customs-nz", signing.public_key_of(key), datetime(2026, 1, 1, tzinfo=UTC))
    exchange.follow_partner(SYSTEM, "customs-nz", "NZ", "customs", reg.as_dict(), base_url="http://127.0.0.1:9/")
    partner = _BrokenCheckpoint("customs-nz", key)
    partner.add(1)
    with pytest.raises(exchange.ForkAlarm) as alarm:
        exchange.sync_partner(SYSTEM, "customs-nz", partner)
    problem = alarm.value.problems[0]
    assert problem.code == "partner_log_alarm"
    assert str(problem.message).endswith(
        "checkpoint signature refused: malformed checkpoint body: size 'many' is not a number"
    )
    assert translate(problem.message, "zh-Hant") == (
        "夥伴日誌警示(customs-nz):檢查點簽章遭拒:檢查點內容格式錯誤:大小 'many' 不是數字"
    )
    admin = TestClient(create_app())
    with unit_of_work() as s:
        admin.cookies.set("sc_session", auth.issue_token(s, auth.create_user(s, "adm3", "admin")))
    page = admin.get("/console/documents/partners?lang=zh-Hant").text
    assert "檢查點內容格式錯誤:大小 'many' 不是數字" in html.unescape(page) and leftover_english(page) == []


def test_merkle_and_checkpoint_errors_are_messages_with_chinese() -> None:
    with pytest.raises(merkle.ProofError) as caught:
        merkle.verify_inclusion(5, 3, b"\0" * 32, [], b"\0" * 32)
    assert translate(caught.value.args[0], "zh-Hant") == "葉節點索引 5 超出樹大小 3"
    with pytest.raises(signing.SignatureError) as bad:
        signing.parse_checkpoint("origin\n1\n%%%%\ntimestamp 1\n\n\u2014 x y\n")
    assert translate(str(bad.value), "zh-Hant") == "檢查點內容格式錯誤:根雜湊不是有效的 base64"
    with pytest.raises(ValueError) as amount:
        parse_amount("12,3,4")
    assert translate(str(amount.value), "zh-Hant") == "不是金額:'12,3,4'"
