"""OpenAttestation v3 documents issued by this platform: integrity, status (our log) and identity (registry)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartcustoms.documents import model, service, signing, store
from smartcustoms.documents.cli import app
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.errors import DomainError

from .test_service import coo


def _statuses(v: dict[str, object]) -> dict[str, str]:
    return {name: c["status"] for name, c in v["checks"].items()}  # type: ignore[attr-defined]


def test_v3_issue_verify_revoke(db_url: str) -> None:
    store.forget_trees()
    service.register_issuer(SYSTEM, "chamber-tw", "Taiwan Chamber of Commerce", "chamber_of_commerce")
    service.register_issuer(SYSTEM, "chamber-jp", "Japan Chamber", "chamber_of_commerce")
    docs = service.issue_documents(SYSTEM, "chamber-tw", "certificate_of_origin", [coo(1), coo(2)], fmt="oa-v3")
    doc = docs[0]
    assert model.detect_format(doc) == "oa-v3" and doc["credentialSubject"]["certificateNumber"] == "CO-2026-00001"
    assert doc["openAttestationMetadata"]["identityProof"] == {
        "type": "SMARTCUSTOMS-KEY-REGISTRY",
        "identifier": "chamber-tw",
    }
    v = service.verify_document(doc, use_db=True)
    assert v["valid"] and v["format"] == "smartcustoms-oa-v3", v
    assert _statuses(v) == {"integrity": "valid", "status": "valid", "identity": "valid"}
    assert "signed by chamber-tw" in v["checks"]["identity"]["reason"]
    assert service.document_number(doc) == "CO-2026-00001"

    changed = copy.deepcopy(doc)
    changed["credentialSubject"]["goods"][0]["quantity"] = 400
    assert service.verify_document(changed, use_db=True)["checks"]["integrity"]["status"] == "invalid"
    added = copy.deepcopy(doc)
    added["credentialSubject"]["note"] = "duty free"
    v = service.verify_document(added, use_db=True)
    assert (
        v["checks"]["integrity"]["status"] == "invalid"
        and "credentialSubject.note" in v["checks"]["integrity"]["reason"]
    )
    # claiming another issuer changes a salted field: integrity fails; re-signing the proof with another key fails identity
    other = copy.deepcopy(doc)
    other["openAttestationMetadata"]["identityProof"]["identifier"] = "chamber-jp"
    assert not service.verify_document(other, use_db=True)["valid"]
    forged = copy.deepcopy(doc)
    forged["proof"]["signature"] = signing.b64(signing.sign(signing.generate_private_key(), b"x"))
    v = service.verify_document(forged, use_db=True)
    assert v["checks"]["identity"]["status"] == "invalid" and v["checks"]["integrity"]["status"] == "valid"

    # without the issuer's database: receipt + published registry (status unknown: revocation needs the log)
    registry = signing.KeyRegistry.from_dict(service.key_registry("chamber-tw"))
    v = service.verify_document(doc, registry=registry)
    assert _statuses(v) == {"integrity": "valid", "status": "unknown", "identity": "valid"}, v
    assert "inclusion proof verified" in v["checks"]["status"]["reason"]

    service.revoke_document(SYSTEM, doc["proof"]["targetHash"], "issued in error")
    v = service.verify_document(doc, use_db=True)
    assert not v["valid"] and "issued in error" in v["checks"]["status"]["reason"]
    assert service.verify_document(docs[1], use_db=True)["valid"]


def test_v3_through_the_cli(sqlite_url: str, tmp_path: Path) -> None:
    store.forget_trees()
    runner = CliRunner()
    assert (
        runner.invoke(app, ["issuer-add", "chamber-tw", "--name", "TW", "--kind", "chamber_of_commerce"]).exit_code == 0
    )
    (tmp_path / "coo.json").write_text(json.dumps(coo(3)))
    r = runner.invoke(
        app,
        [
            *("issue", str(tmp_path / "coo.json"), "--issuer", "chamber-tw", "--type", "certificate_of_origin"),
            *("--format", "oa-v3", "--out", str(tmp_path / "out")),
        ],
    )
    assert r.exit_code == 0 and "logIndex=0" in r.output, r.output
    wrapped = tmp_path / "out" / "coo.wrapped.json"
    r = runner.invoke(app, ["verify", str(wrapped)])
    assert r.exit_code == 0 and json.loads(r.output)["valid"], r.output
    r = runner.invoke(app, ["log-proof", "--issuer", "chamber-tw", "--document", str(wrapped)])
    assert r.exit_code == 0 and json.loads(r.output)["leafIndex"] == 0
    doc = json.loads(wrapped.read_text())
    doc["credentialSubject"]["fta"] = "ECFA"
    wrapped.write_text(json.dumps(doc))
    r = runner.invoke(app, ["verify", str(wrapped)])
    assert r.exit_code == 1 and json.loads(r.output)["checks"]["integrity"]["status"] == "invalid"


def test_v3_redaction_keeps_all_three_checks(sqlite_url: str) -> None:
    store.forget_trees()
    service.register_issuer(SYSTEM, "chamber-tw", "Taiwan Chamber of Commerce", "chamber_of_commerce")
    doc = service.issue_documents(SYSTEM, "chamber-tw", "certificate_of_origin", [coo(1)], fmt="oa-v3")[0]
    hidden = service.redact_document(doc, ["credentialSubject.importer", "credentialSubject.goods.0.quantity"])
    assert "importer" not in hidden["credentialSubject"] and "quantity" not in hidden["credentialSubject"]["goods"][0]
    assert len(hidden["proof"]["privacy"]["obfuscated"]) == 3  # importer.name, importer.country, quantity
    v = service.verify_document(hidden, use_db=True)
    assert _statuses(v) == {"integrity": "valid", "status": "valid", "identity": "valid"}, v
    again = service.redact_document(hidden, ["credentialSubject.goods.0"])  # a whole list element: {}
    assert again["credentialSubject"]["goods"] == [{}] and service.verify_document(again, use_db=True)["valid"]
    put_back = copy.deepcopy(hidden)
    put_back["credentialSubject"]["importer"] = {"name": "Someone Else Ltd", "country": "NZ"}
    assert service.verify_document(put_back, use_db=True)["checks"]["integrity"]["status"] == "invalid"


def test_v3_with_an_issuer_held_key(sqlite_url: str) -> None:
    store.forget_trees()
    private = signing.generate_private_key()
    service.register_issuer(
        SYSTEM, "chamber-nz", "NZ", "chamber_of_commerce", public_key=signing.public_key_of(private)
    )
    prepared = service.prepare_issue(SYSTEM, "chamber-nz", "certificate_of_origin", [coo(1)], fmt="oa-v3")
    created = datetime.fromisoformat(prepared["created"])
    proof = signing.document_proof("chamber-nz", private, prepared["merkleRoot"], created)
    tampered = copy.deepcopy(prepared["documents"])
    tampered[0]["credentialSubject"]["fta"] = "ECFA"
    with pytest.raises(DomainError, match="document data was changed"):
        service.finalize_issue(SYSTEM, "chamber-nz", "certificate_of_origin", tampered, proof)
    doc = service.finalize_issue(SYSTEM, "chamber-nz", "certificate_of_origin", prepared["documents"], proof)[0]
    assert doc["proof"]["key"] == proof["verificationMethod"] and doc["proof"]["type"] == model.V3_PROOF_TYPE
    v = service.verify_document(json.loads(json.dumps(doc)), use_db=True)
    assert _statuses(v) == {"integrity": "valid", "status": "valid", "identity": "valid"}, v
