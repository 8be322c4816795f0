"""Issuer keys, rotation, revocation and signed checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartcustoms.documents import signing

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _registry() -> tuple[signing.KeyRegistry, bytes, bytes]:
    old, new = signing.generate_private_key(), signing.generate_private_key()
    reg = signing.KeyRegistry()
    reg.rotate("chamber-sg", signing.public_key_of(old), T0)
    reg.rotate("chamber-sg", signing.public_key_of(new), T0 + timedelta(days=30))
    return reg, old, new


def test_rotation_keeps_old_signatures_valid_and_refuses_new_ones() -> None:
    reg, old, new = _registry()
    root = "ab" * 32
    before = signing.document_proof("chamber-sg", old, root, T0 + timedelta(days=1))
    assert signing.check_document_proof(before, root, reg).key_id == signing.key_id(
        "chamber-sg", signing.public_key_of(old)
    )
    late = signing.document_proof("chamber-sg", old, root, T0 + timedelta(days=31))
    with pytest.raises(signing.SignatureError, match="expired"):
        signing.check_document_proof(late, root, reg)
    current = signing.document_proof("chamber-sg", new, root, T0 + timedelta(days=31))
    signing.check_document_proof(current, root, reg)
    early = signing.document_proof("chamber-sg", new, root, T0 + timedelta(days=1))
    with pytest.raises(signing.SignatureError, match="not valid before"):
        signing.check_document_proof(early, root, reg)


def test_wrong_root_unknown_key_and_revoked_key() -> None:
    reg, _old, new = _registry()
    proof = signing.document_proof("chamber-sg", new, "cd" * 32, T0 + timedelta(days=40))
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.check_document_proof(proof, "ce" * 32, reg)
    stranger = signing.generate_private_key()
    with pytest.raises(signing.SignatureError, match="not in the registry"):
        signing.check_document_proof(signing.document_proof("chamber-sg", stranger, "cd" * 32, T0), "cd" * 32, reg)
    kid = signing.key_id("chamber-sg", signing.public_key_of(new))
    reg.revoke("chamber-sg", kid, T0 + timedelta(days=35))
    with pytest.raises(signing.SignatureError, match="revoked"):
        signing.check_document_proof(proof, "cd" * 32, reg)


def test_registry_roundtrip() -> None:
    reg, _, _ = _registry()
    again = signing.KeyRegistry.from_dict(reg.as_dict())
    assert again.as_dict() == reg.as_dict()


def test_checkpoint_sign_parse_verify() -> None:
    reg, _, new = _registry()
    cp = signing.Checkpoint(
        "customs.example/log/chamber-sg", 42, bytes(range(32)), T0 + timedelta(days=31, seconds=1.5)
    )
    note = signing.sign_checkpoint(cp, "chamber-sg", new)
    assert note.startswith("customs.example/log/chamber-sg\n42\n")
    assert signing.verify_checkpoint(note, reg) == cp
    forged = note.replace("\n42\n", "\n43\n")
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.verify_checkpoint(forged, reg)
    with pytest.raises(signing.SignatureError, match=r"malformed|no signature"):
        signing.verify_checkpoint("garbage", reg)


def test_private_keys_are_sealed_and_bound_to_their_key_id(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import os

    from cryptography.exceptions import InvalidTag

    from smartcustoms.documents import keystore

    private = signing.generate_private_key()
    sealed = keystore.seal(private, "chamber-sg#0001")
    assert private not in sealed and len(sealed) == 61
    assert keystore.unseal(sealed, "chamber-sg#0001") == private
    with pytest.raises(InvalidTag):
        keystore.unseal(sealed, "chamber-sg#0002")
    monkeypatch.setenv("SMARTCUSTOMS_DOCUMENTS_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(InvalidTag):
        keystore.unseal(sealed, "chamber-sg#0001")
