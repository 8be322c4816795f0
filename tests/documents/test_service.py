"""Issuing, verifying, revoking and log proofs against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from smartcustoms.documents import merkle, service, signing, store
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from tests.conftest import shared_data


def coo(n: int = 1) -> dict[str, Any]:
    return {
        "certificateNumber": f"CO-2026-{n:05d}",
        "exporter": {"name": "Formosa Bikes Ltd", "country": "TW"},
        "importer": {"name": "Kiwi Cycles Ltd", "country": "NZ"},
        "fta": "ANZTEC",
        "goods": [
            {"description": "Bicycles", "hsCode": "8712.00", "quantity": 40, "originCriterion": "WO", "price": 12000.5}
        ],
    }


@pytest.fixture
def issuer(db_url: str) -> str:
    store.forget_trees()
    service.register_issuer(SYSTEM, "chamber-tw", "Taiwan Chamber of Commerce", "chamber_of_commerce")
    return "chamber-tw"


def _issue(issuer: str, count: int = 3) -> list[dict[str, Any]]:
    return service.issue_documents(SYSTEM, issuer, "certificate_of_origin", [coo(i) for i in range(count)])


def test_issue_verify_redact_revoke(issuer: str) -> None:
    docs = _issue(issuer)
    for doc in docs:
        v = service.verify_document(json.loads(json.dumps(doc)), use_db=True)
        assert v["valid"], v
        assert v["checks"]["status"]["status"] == "valid"
        assert v["checks"]["identity"]["status"] == "valid"
    hidden = service.redact_document(docs[0], ["goods.0.price"])
    assert "price" not in json.dumps(hidden["data"])
    assert service.verify_document(hidden, use_db=True)["valid"]

    tampered = copy.deepcopy(docs[1])
    tampered["data"]["fta"] = tampered["data"]["fta"].rsplit(":", 1)[0] + ":CPTPP"
    v = service.verify_document(tampered, use_db=True)
    assert not v["valid"] and v["checks"]["integrity"]["status"] == "invalid"

    service.revoke_document(SYSTEM, docs[2]["signature"]["targetHash"], "issued in error")
    v = service.verify_document(docs[2], use_db=True)
    assert not v["valid"]
    assert v["checks"]["status"]["status"] == "invalid" and "issued in error" in v["checks"]["status"]["reason"]
    with pytest.raises(DomainError, match="already revoked"):
        service.revoke_document(SYSTEM, docs[2]["signature"]["targetHash"], "again")


def test_offline_verification_uses_receipt_and_registry(issuer: str) -> None:
    doc = _issue(issuer, 2)[1]
    registry = signing.KeyRegistry.from_dict(service.key_registry())
    v = service.verify_document(doc, registry=registry)
    assert v["valid"]
    assert v["checks"]["identity"]["status"] == "valid"
    assert (
        v["checks"]["status"]["status"] == "unknown" and "inclusion proof verified" in v["checks"]["status"]["reason"]
    )
    v = service.verify_document(doc)
    assert v["valid"] and v["checks"]["identity"]["status"] == "unknown"
    bad = copy.deepcopy(doc)
    bad["smartcustoms"]["logIndex"] = 0
    assert service.verify_document(bad)["checks"]["status"]["status"] == "invalid"


def test_rotation_and_key_compromise(issuer: str) -> None:
    old_doc = _issue(issuer, 1)[0]
    service.rotate_key(SYSTEM, issuer)
    new_doc = _issue(issuer, 2)[1]
    assert service.verify_document(old_doc, use_db=True)["valid"]
    assert service.verify_document(new_doc, use_db=True)["valid"]
    old_kid = old_doc["proof"][0]["verificationMethod"].split("#")[1]
    service.revoke_key(SYSTEM, issuer, old_kid, at=datetime.now(UTC) - timedelta(hours=1))
    v = service.verify_document(old_doc, use_db=True)
    assert v["checks"]["identity"]["status"] == "invalid" and "revoked" in v["checks"]["identity"]["reason"]


def test_log_proofs_verify(issuer: str) -> None:
    first = _issue(issuer, 3)
    size1 = 3
    _issue_more = service.issue_documents(SYSTEM, issuer, "certificate_of_origin", [coo(10 + i) for i in range(4)])
    assert len(_issue_more) == 4
    target = first[1]["signature"]["targetHash"]
    out = service.log_proof(issuer, target_hash=target, from_size=size1)
    registry = signing.KeyRegistry.from_dict(service.key_registry(issuer))
    cp = signing.verify_checkpoint(out["checkpoint"], registry)
    assert cp.size == 7
    merkle.verify_inclusion(
        out["leafIndex"],
        cp.size,
        signing.unb64(out["leafHash"]),
        [signing.unb64(h) for h in out["inclusionProof"]],
        cp.root,
    )
    merkle.verify_consistency(
        size1, cp.size, [signing.unb64(h) for h in out["consistencyProof"]], signing.unb64(out["fromRootHash"]), cp.root
    )
    with pytest.raises(DomainError, match="not in the tree"):
        service.log_proof(issuer, index=7)
    with pytest.raises(DomainError, match="consistency"):
        service.log_proof(issuer, from_size=8)


def test_bad_input_stores_nothing(issuer: str) -> None:
    with pytest.raises(DomainError) as exc:
        service.issue_documents(SYSTEM, issuer, "packing_list", [coo()])
    assert exc.value.problems[0].code == "unknown_schema"
    broken = coo()
    del broken["exporter"]["name"]
    broken["goods"][0]["hsCode"] = "87"
    with pytest.raises(DomainError) as exc:
        service.issue_documents(SYSTEM, issuer, "certificate_of_origin", [coo(), broken])
    assert {(p.code, p.path) for p in exc.value.problems} == {
        ("required", ("documents", 1, "exporter", "name")),
        ("invalid_hs_code", ("documents", 1, "goods", 0, "hsCode")),
    }
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(store.DocumentRow)) == 0
        assert store.log_size(session, issuer) == 0


def test_crash_during_append_leaves_log_consistent(issuer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _issue(issuer, 2)

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("power cut")

    original = service.audit.record
    monkeypatch.setattr(service.audit, "record", boom)
    with pytest.raises(RuntimeError):
        _issue(issuer, 5)
    monkeypatch.setattr(service.audit, "record", original)
    with unit_of_work() as session:
        assert store.log_size(session, issuer) == 2
        cp = store.latest_checkpoint(session, issuer)
        assert cp is not None and cp.size == 2
    docs = service.issue_documents(SYSTEM, issuer, "certificate_of_origin", [coo(50)])
    assert docs[0]["smartcustoms"]["logIndex"] == 2
    assert service.verify_document(docs[0], use_db=True)["valid"]


def test_log_is_append_only_in_the_database(issuer: str) -> None:
    _issue(issuer, 1)
    for sql in (
        "UPDATE documents_log_entry SET kind = 'x'",
        "DELETE FROM documents_log_entry",
        "DELETE FROM documents_checkpoint",
    ):
        with pytest.raises(Exception, match="append-only"), unit_of_work() as session:
            session.execute(text(sql))


def test_foreign_openattestation_document_needs_no_database() -> None:
    doc = json.loads((shared_data("docverify", "oa_verify_fixtures") / "v2_documentMainnetValid.json").read_text())
    v = service.verify_document(doc)
    assert v["valid"]
    assert v["checks"]["status"]["status"] == "unknown" and "cannot reach" in v["checks"]["status"]["reason"]
    assert v["checks"]["identity"]["status"] == "unknown"
    tampered = json.loads(
        (shared_data("docverify", "oa_verify_fixtures") / "v2_tamperedDocument.tamperedDocument.json").read_text()
    )
    assert not service.verify_document(tampered)["valid"]


def test_issuer_held_key_prepare_sign_finalize(db_url: str) -> None:
    store.forget_trees()
    private = signing.generate_private_key()
    service.register_issuer(
        SYSTEM, "chamber-nz", "NZ Chamber", "chamber_of_commerce", public_key=signing.public_key_of(private)
    )
    with pytest.raises(DomainError, match="no valid platform-held key"):
        service.issue_documents(SYSTEM, "chamber-nz", "certificate_of_origin", [coo()])
    prepared = service.prepare_issue(SYSTEM, "chamber-nz", "certificate_of_origin", [coo(1), coo(2)])
    created = datetime.fromisoformat(prepared["created"])
    proof = signing.document_proof("chamber-nz", private, prepared["merkleRoot"], created)
    assert signing.unb64(prepared["message"]) == signing.document_message(prepared["merkleRoot"], proof["created"])

    stranger = signing.document_proof("chamber-nz", signing.generate_private_key(), prepared["merkleRoot"], created)
    with pytest.raises(DomainError, match="not in the registry"):
        service.finalize_issue(SYSTEM, "chamber-nz", "certificate_of_origin", prepared["documents"], stranger)
    tampered = copy.deepcopy(prepared["documents"])
    tampered[0]["data"]["fta"] += "X"
    with pytest.raises(DomainError) as exc:
        service.finalize_issue(SYSTEM, "chamber-nz", "certificate_of_origin", tampered, proof)
    assert exc.value.problems[0].code == "integrity_invalid"

    docs = service.finalize_issue(SYSTEM, "chamber-nz", "certificate_of_origin", prepared["documents"], proof)
    for doc in docs:
        v = service.verify_document(json.loads(json.dumps(doc)), use_db=True)
        assert v["valid"] and v["checks"]["identity"]["status"] == "valid", v
        assert v["checks"]["status"]["status"] == "valid", v
    assert "smartcustoms-log" in docs[0]["smartcustoms"]["checkpoint"]  # the log operator signs its tree heads
    with pytest.raises(DomainError, match="already issued"):
        service.finalize_issue(SYSTEM, "chamber-nz", "certificate_of_origin", prepared["documents"], proof)
    registry = signing.KeyRegistry.from_dict(service.key_registry("chamber-nz"))
    assert service.verify_document(docs[1], registry=registry)["checks"]["identity"]["status"] == "valid"
    assert (
        "inclusion proof verified" in service.verify_document(docs[1], registry=registry)["checks"]["status"]["reason"]
    )


def test_stale_tree_cache_is_rebuilt_from_stored_leaves(issuer: str) -> None:
    docs = _issue(issuer, 3)
    with unit_of_work() as session:
        key = (str(session.get_bind().engine.url), issuer)
    store._TREES[key] = merkle.MerkleTree([merkle.leaf_hash(b"forged")] * 2)  # wrong prefix, shorter
    assert service.verify_document(docs[2], use_db=True)["checks"]["status"]["status"] == "valid"
    store._TREES[key] = merkle.MerkleTree([merkle.leaf_hash(b"forged")] * 3)  # wrong, same size
    assert service.log_proof(issuer, index=1)["treeSize"] == 3
    assert service.verify_document(docs[1], use_db=True)["checks"]["status"]["status"] == "valid"
