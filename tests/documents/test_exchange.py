"""Two nodes in one process: B mirrors A's log (A's database read directly); forks raise stored alarms."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartcustoms.api import create_app
from smartcustoms.documents import exchange, merkle, service, signing, store
from smartcustoms.platform import auth
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.migrate import upgrade
from smartcustoms.platform.web import forget_tokens

from .test_service import coo

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def node_a(tmp_path: Path) -> str:
    """Node A's own SQLite database, read in-process (the real two-server exchange is in test_two_nodes.py)."""
    url = f"sqlite:///{tmp_path / 'node-a.db'}"
    upgrade(url)
    return url


def test_b_mirrors_a_and_sees_revocations(sqlite_url: str, node_a: str) -> None:
    a_url = node_a
    store.forget_trees()
    service.register_issuer(SYSTEM, "customs-tw", "Taiwan Customs", "customs", url=a_url)
    docs = service.issue_documents(SYSTEM, "customs-tw", "certificate_of_origin", [coo(1), coo(2)], url=a_url)
    registry = service.key_registry("customs-tw", url=a_url)

    exchange.follow_partner(SYSTEM, "customs-tw", "Taiwan Customs", "customs", registry)
    partner = exchange.LocalPartner(a_url)
    assert exchange.sync_partner(SYSTEM, "customs-tw", partner) == {"issuer": "customs-tw", "treeSize": 2, "new": 2}
    v = service.verify_document(docs[0], use_db=True)
    assert v["valid"] and v["checks"]["status"]["status"] == "valid", v

    # A pushes certificates to B's API (role partner); B verifies and links them to declarations
    forget_tokens()
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "tw-node", "partner", party_id="customs-tw"))
    b_api = TestClient(create_app())
    push = {"Authorization": f"Bearer {token}"}
    for doc, dec in ((docs[0], "DEC-1"), (docs[1], "DEC-2")):
        r = b_api.post("/documents/inbox", json={"document": doc, "declaration_ref": dec}, headers=push)
        assert r.status_code == 201, r.text
    tampered = copy.deepcopy(docs[0])
    tampered["data"]["fta"] += "X"
    r = b_api.post("/documents/inbox", json={"document": tampered, "declaration_ref": "DEC-3"}, headers=push)
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "integrity_invalid"
    assert exchange.certificate_for_declaration("DEC-3") is None
    found = exchange.certificate_for_declaration("DEC-1")
    assert found is not None and found["fta"] == "ANZTEC"
    assert exchange.certificate_for_declaration("DEC-2") is not None
    assert exchange.certificate_for_declaration("CO-2026-00001")["fta"] == "ANZTEC"  # type: ignore[index]

    # an OpenAttestation v3 certificate of A: checked the same way (status from the mirror, identity from A's keys)
    v3 = service.issue_documents(SYSTEM, "customs-tw", "certificate_of_origin", [coo(5)], url=a_url, fmt="oa-v3")[0]
    assert exchange.sync_partner(SYSTEM, "customs-tw", partner)["new"] == 1
    r = b_api.post("/documents/inbox", json={"document": v3, "declaration_ref": "DEC-5"}, headers=push)
    assert r.status_code == 201 and r.json()["reference"] == "CO-2026-00005", r.text
    found = exchange.certificate_for_declaration("CO-2026-00005")
    assert found is not None and found["verdict"]["format"] == "smartcustoms-oa-v3"

    service.issue_documents(SYSTEM, "customs-tw", "certificate_of_origin", [coo(3)], url=a_url)
    service.revoke_document(SYSTEM, docs[1]["signature"]["targetHash"], "goods not originating", url=a_url)
    assert exchange.sync_partner(SYSTEM, "customs-tw", partner)["new"] == 2
    v = service.verify_document(docs[1], use_db=True)
    assert not v["valid"] and "goods not originating" in v["checks"]["status"]["reason"]
    assert exchange.sync_partner(SYSTEM, "customs-tw", partner)["new"] == 0
    assert exchange.certificate_for_declaration("DEC-2") is None  # revoked at A, mirrored to B
    assert exchange.certificate_for_declaration("DEC-1") is not None


class FakePartner:
    """Node A as plain objects, so a test can make it fork or lie."""

    def __init__(self, issuer: str, private_key: bytes) -> None:
        self.issuer, self.key = issuer, private_key
        self.payloads: list[str] = []
        self.lie_in_entries = False

    def add(self, n: int, tag: str = "") -> None:
        for _ in range(n):
            i = len(self.payloads)
            self.payloads.append(json.dumps({"kind": "issue", "targetHash": f"{i:064x}", "tag": tag}))

    def tree(self) -> merkle.MerkleTree:
        return merkle.MerkleTree(merkle.leaf_hash(p.encode()) for p in self.payloads)

    def checkpoint(self, issuer: str) -> str:
        cp = signing.Checkpoint(f"smartcustoms/{issuer}", len(self.payloads), self.tree().root(), datetime.now(UTC))
        return signing.sign_checkpoint(cp, issuer, self.key)

    def consistency(self, issuer: str, from_size: int, size: int) -> list[bytes]:
        return self.tree().consistency_proof(from_size, size)

    def entries(self, issuer: str, start: int, end: int) -> list[dict[str, Any]]:
        out = [{"index": i, "payload": self.payloads[i]} for i in range(start, end)]
        if self.lie_in_entries:
            out[-1]["payload"] = json.dumps({"kind": "issue", "targetHash": "ff" * 32})
        return out


def _mirrored(issuer: str) -> int:
    with unit_of_work() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(store.LogEntryRow).where(store.LogEntryRow.issuer_id == issuer)
            )
            or 0
        )


def test_fork_rollback_and_lies_raise_alarms_and_store_nothing(db_url: str) -> None:
    store.forget_trees()
    key = signing.generate_private_key()
    reg = signing.KeyRegistry()
    reg.rotate("customs-nz", signing.public_key_of(key), datetime(2026, 1, 1, tzinfo=UTC))
    exchange.follow_partner(SYSTEM, "customs-nz", "NZ Customs", "customs", reg.as_dict())
    a = FakePartner("customs-nz", key)
    a.add(5)
    assert exchange.sync_partner(SYSTEM, "customs-nz", a)["new"] == 5

    honest = list(a.payloads)
    a.payloads[2] = json.dumps({"kind": "issue", "targetHash": "ab" * 32})  # history rewritten ...
    a.add(3)  # ... and extended
    with pytest.raises(exchange.ForkAlarm, match="not consistent"):
        exchange.sync_partner(SYSTEM, "customs-nz", a)
    a.payloads = honest[:5]
    a.payloads[4] = json.dumps({"kind": "issue", "targetHash": "cd" * 32})
    for _ in range(2):  # the same evidence twice (a background sync retrying): one alarm is recorded
        with pytest.raises(exchange.ForkAlarm, match="fork"):
            exchange.sync_partner(SYSTEM, "customs-nz", a)
    a.payloads = honest[:4]
    with pytest.raises(exchange.ForkAlarm, match="rollback"):
        exchange.sync_partner(SYSTEM, "customs-nz", a)
    a.payloads = list(honest)
    a.add(2)
    a.lie_in_entries = True
    with pytest.raises(exchange.ForkAlarm, match="do not hash"):
        exchange.sync_partner(SYSTEM, "customs-nz", a)
    assert _mirrored("customs-nz") == 5
    a.lie_in_entries = False
    a.payloads.append("not a log entry")  # a leaf the signed root covers, but not an entry of ours
    with pytest.raises(exchange.ForkAlarm, match="not a JSON log entry"):
        exchange.sync_partner(SYSTEM, "customs-nz", a)
    a.payloads.pop()
    impostor = FakePartner("customs-nz", signing.generate_private_key())
    impostor.payloads = list(a.payloads)
    with pytest.raises(exchange.ForkAlarm, match="signature refused"):
        exchange.sync_partner(SYSTEM, "customs-nz", impostor)
    assert exchange.sync_partner(SYSTEM, "customs-nz", a)["new"] == 2
    assert _mirrored("customs-nz") == 7

    # A rotates its key: B refuses the new checkpoints until it takes in A's newer registry
    new_key = signing.generate_private_key()
    reg.rotate("customs-nz", signing.public_key_of(new_key), datetime.now(UTC))
    a.key = new_key
    a.add(1)
    with pytest.raises(exchange.ForkAlarm, match="not in the registry"):
        exchange.sync_partner(SYSTEM, "customs-nz", a)
    assert exchange.update_partner_keys(SYSTEM, "customs-nz", reg.as_dict())["added"]
    assert exchange.sync_partner(SYSTEM, "customs-nz", a)["new"] == 1
    forged = reg.as_dict()
    forged["keys"][0]["publicKey"] = signing.b64(signing.public_key_of(signing.generate_private_key()))
    with pytest.raises(DomainError, match="different public key"):
        exchange.update_partner_keys(SYSTEM, "customs-nz", forged)
    recorded = [a["reason"] for a in exchange.alarms("customs-nz")]
    assert len(recorded) == 7 and "not in the registry" in recorded[0] and "not consistent" in recorded[-1]
