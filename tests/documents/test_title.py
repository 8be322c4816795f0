"""Electronic bill of lading: one holder at a time, signed endorsements, surrender, double transfer refused."""

from __future__ import annotations

from typing import Any

import pytest

from smartcustoms.documents import service, signing, store, title
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.errors import DomainError

T = "ab" * 32


def bill(n: int = 1) -> dict[str, Any]:
    return {
        "blNumber": f"EGLV-{n:06d}",
        "shipper": {"name": "Formosa Bikes Ltd"},
        "consignee": {"name": "To order"},
        "carrier": {"name": "Evergreen Line"},
        "portOfLoading": "TWKHH",
        "portOfDischarge": "NZAKL",
        "goods": [{"description": "Bicycles", "packages": 40}],
    }


def _keys(n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for _ in range(n):
        private = signing.generate_private_key()
        out.append((private, signing.public_key_of(private)))
    return out


def test_pure_title_rules() -> None:
    (a, a_pub), (b, b_pub), (_c, c_pub) = _keys(3)
    state = title.TitleState(T).open(a_pub)
    state = state.apply("transfer", 1, title.sign_action(a, T, 1, "transfer", b_pub), b_pub)
    assert state.holder == b_pub and state.seq == 2
    with pytest.raises(title.TitleError, match="double transfer"):
        state.apply("transfer", 1, title.sign_action(a, T, 1, "transfer", c_pub), c_pub)
    with pytest.raises(title.TitleError, match="not signed by the current holder"):
        state.apply("transfer", 2, title.sign_action(a, T, 2, "transfer", c_pub), c_pub)
    with pytest.raises(title.TitleError, match="not signed"):  # signature for another recipient
        state.apply("transfer", 2, title.sign_action(b, T, 2, "transfer", a_pub), c_pub)
    done = state.apply("surrender", 2, title.sign_action(b, T, 2, "surrender"))
    assert done.surrendered
    with pytest.raises(title.TitleError, match="surrendered"):
        done.apply("transfer", 3, title.sign_action(b, T, 3, "transfer", c_pub), c_pub)


def test_ebl_endorsement_chain_in_the_log(db_url: str) -> None:
    store.forget_trees()
    service.register_issuer(SYSTEM, "evergreen", "Evergreen Line", "carrier")
    doc = service.issue_documents(SYSTEM, "evergreen", "bill_of_lading", [bill()])[0]
    target = doc["signature"]["targetHash"]
    (shipper, shipper_pub), (bank, bank_pub), (consignee, consignee_pub) = _keys(3)
    service.open_title(SYSTEM, target, shipper_pub)
    with pytest.raises(DomainError, match="already open"):
        service.open_title(SYSTEM, target, bank_pub)
    service.holder_action(target, "transfer", 1, title.sign_action(shipper, target, 1, "transfer", bank_pub), bank_pub)
    with pytest.raises(DomainError, match="double transfer"):
        service.holder_action(
            target, "transfer", 1, title.sign_action(shipper, target, 1, "transfer", consignee_pub), consignee_pub
        )
    service.holder_action(
        target, "transfer", 2, title.sign_action(bank, target, 2, "transfer", consignee_pub), consignee_pub
    )
    out = service.holder_action(target, "surrender", 3, title.sign_action(consignee, target, 3, "surrender"))
    assert out["surrendered"] and out["holder"] == signing.b64(consignee_pub)
    assert service.title_of(target)["seq"] == 4
    assert service.verify_document(doc, use_db=True)["valid"]
    proof = service.log_proof("evergreen", from_size=1)
    assert proof["treeSize"] == 5  # issue, title, two transfers, surrender
    coo = {
        "certificateNumber": "CO-1",
        "exporter": {"name": "A", "country": "TW"},
        "importer": {"name": "B", "country": "NZ"},
        "fta": "ANZTEC",
        "goods": [{"description": "x", "hsCode": "871200", "originCriterion": "WO"}],
    }
    other = service.issue_documents(SYSTEM, "evergreen", "certificate_of_origin", [coo])[0]
    with pytest.raises(DomainError, match="not a transferable"):
        service.open_title(SYSTEM, other["signature"]["targetHash"], shipper_pub)


def test_ebl_over_http_and_cli(sqlite_url: str) -> None:
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from smartcustoms.api import create_app
    from smartcustoms.documents.cli import app as cli_app
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.platform.web import forget_tokens

    store.forget_trees()
    forget_tokens()
    service.register_issuer(SYSTEM, "evergreen", "Evergreen Line", "carrier")
    target = service.issue_documents(SYSTEM, "evergreen", "bill_of_lading", [bill(7)])[0]["signature"]["targetHash"]
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "eva", "carrier", party_id="EGLV"))
    client = TestClient(create_app())
    runner = CliRunner()
    keys = [json.loads(runner.invoke(cli_app, ["holder-keygen"]).output) for _ in range(2)]
    r = client.post(f"/documents/{target}/title", json={"holder": keys[0]["publicKey"]})
    assert r.status_code == 401
    r = client.post(
        f"/documents/{target}/title",
        json={"holder": keys[0]["publicKey"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    sig = runner.invoke(
        cli_app,
        [
            "holder-sign",
            target,
            "--action",
            "transfer",
            "--seq",
            "1",
            "--private-key",
            keys[0]["privateKey"],
            "--to",
            keys[1]["publicKey"],
        ],
    ).output.strip()
    body = {"seq": 1, "signature": sig, "to": keys[1]["publicKey"]}
    assert client.post(f"/documents/{target}/title/transfer", json=body).status_code == 200
    again = client.post(f"/documents/{target}/title/transfer", json=body)
    assert again.status_code == 409 and "double transfer" in again.json()["problems"][0]["message"]
    bad = client.post(f"/documents/{target}/title/transfer", json={**body, "seq": 2, "signature": "!!"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["code"] == "invalid_base64"
    assert client.get(f"/documents/{target}/title").json()["holder"] == keys[1]["publicKey"]
