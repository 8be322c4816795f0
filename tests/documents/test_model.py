"""OpenAttestation v2 integrity: the public fixtures, and properties of our own wrapping and redaction."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.documents import model
from tests.conftest import shared_data

INVALID = {
    "v2_tamperedDocument.tamperedDocument.json": "target hash",
    "v2_tamperedDocument.tamperedDocumentInvalid.json": "target hash",
    "v2_documentMainnetInvalidWithIncorrectMerkleRoot.json": "merkleRoot",
    "v2_documentMainnetInvalidWithOddLengthMerkleRoot.json": "merkleRoot",
}
NOT_WRAPPED = {  # raw documents and the JSON schema itself: inputs to wrapping, not wrapped documents
    "v2_raw-document.json",
    "v2_schema_sample-dns-did-document.json",
    "v2_schema_sample-document.json",
    "v2_schema_sample-token.json",
    "v2_schema_schema.json",
}


def _fixtures(prefix: str) -> list[Path]:
    base = shared_data("docverify")
    return sorted(
        p for d in ("openattestation_fixtures", "oa_verify_fixtures") for p in (base / d).glob(f"{prefix}*.json")
    )


def test_every_v2_fixture_is_classified() -> None:
    files = _fixtures("v2_")
    assert len(files) >= 30
    for path in files:
        check = model.check_integrity(json.loads(path.read_text()))
        if path.name in INVALID:
            assert check.status == "invalid", path.name
            assert INVALID[path.name] in check.reason, (path.name, check.reason)
        elif path.name in NOT_WRAPPED:
            assert check.status == "invalid" and "not an OpenAttestation" in check.reason
        else:
            assert check.status == "valid", (path.name, check.reason)


def test_v3_wrapped_documents_verify_and_tampering_is_caught() -> None:
    checked = 0
    for path in _fixtures("v3_"):
        doc = json.loads(path.read_text())
        check = model.check_integrity(doc)
        if "proof" not in doc:  # raw v3 credentials, inputs to wrapping
            assert check.status == "invalid" and "not a wrapped" in check.reason
            continue
        assert check.status == "valid", (path.name, check.reason)
        checked += 1
        tampered = json.loads(path.read_text())
        tampered["issuanceDate"] = "2099-01-01T00:00:00Z"
        bad = model.check_integrity(tampered)
        assert bad.status == "invalid" and "target hash" in bad.reason
    assert checked >= 20


def test_obfuscated_fixture_hides_recipient_name() -> None:
    doc = json.loads((shared_data("docverify", "openattestation_fixtures") / "v2_obfuscated-wrapped.json").read_text())
    assert doc["data"]["recipient"] == {}
    assert model.check_integrity(doc).status == "valid"


def test_merkle_root_mismatch_reason() -> None:
    doc = model.wrap_documents([{"a": 1}, {"b": 2}])[0]
    doc["signature"]["merkleRoot"] = "00" * 32
    check = model.check_integrity(doc)
    assert check.status == "invalid" and "Merkle proof" in check.reason


def test_salt_roundtrip_types() -> None:
    raw = {"s": "x:y", "i": 3, "f": 1.5, "b": True, "n": None, "l": [1, "two"], "o": {"k": False}}
    assert model.unsalt(model.salt_data(raw)) == raw


scalars = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**9), 10**9),
    st.booleans(),
    st.none(),
    st.floats(-1e6, 1e6).map(lambda x: round(x, 3)),
)
keys = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
documents = st.dictionaries(
    keys,
    st.recursive(
        scalars,
        lambda i: st.lists(i, min_size=1, max_size=3) | st.dictionaries(keys, i, min_size=1, max_size=3),
        max_leaves=10,
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None)
@given(st.lists(documents, min_size=1, max_size=5))
def test_wrap_then_verify(docs: list[dict[str, object]]) -> None:
    for wrapped in model.wrap_documents(docs):
        assert model.check_integrity(json.loads(json.dumps(wrapped))).status == "valid"


@settings(max_examples=60, deadline=None)
@given(documents, st.data())
def test_any_single_field_change_breaks(doc: dict[str, object], data: st.DataObject) -> None:
    wrapped = model.wrap_document(doc)
    flat = model.flatten(wrapped["data"])
    path = data.draw(st.sampled_from(sorted(flat)))
    salt, kind, value = flat[path].split(":", 2)
    tampered = json.loads(json.dumps(wrapped))
    node = tampered["data"]
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last: int | str = int(parts[-1]) if isinstance(node, list) else parts[-1]
    node[last] = f"{salt}:{kind}:{value}X"  # type: ignore[index]
    check = model.check_integrity(tampered)
    assert check.status == "invalid" and "target hash" in check.reason


@settings(max_examples=60, deadline=None)
@given(documents, st.data())
def test_redaction_keeps_it_valid(doc: dict[str, object], data: st.DataObject) -> None:
    wrapped = model.wrap_documents([doc, {"other": 1}])[0]
    path = data.draw(st.sampled_from(sorted(model.flatten(wrapped["data"]))))
    redacted = model.redact(wrapped, [path])
    assert path not in model.flatten(redacted["data"])
    assert len(redacted["privacy"]["obfuscatedData"]) == 1
    assert model.check_integrity(redacted).status == "valid"
    assert redacted["signature"] == wrapped["signature"]


def test_redact_unknown_path() -> None:
    with pytest.raises(KeyError):
        model.redact(model.wrap_document({"a": 1}), ["b"])


def test_salts_are_unique_uuid4_and_not_inherited_by_forks() -> None:
    import uuid

    salts = [model.random_salt() for _ in range(3000)]
    assert len(set(salts)) == len(salts)
    assert all(uuid.UUID(s).version == 4 and uuid.UUID(s).variant == uuid.RFC_4122 for s in salts[:200])
    model._forget_salts()  # what a forked child runs first
    assert model._SALTS.hex == "" and model.random_salt() not in salts


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None)
@given(json_values, st.data())
def test_verify_never_crashes_on_arbitrary_or_mangled_input(junk: object, data: st.DataObject) -> None:
    from smartcustoms.documents import service

    assert set(service.verify_document(junk)["checks"]) == {"integrity", "status", "identity"}
    doc = model.wrap_document({"a": 1, "b": {"c": "x"}})
    doc["proof"] = [{"type": "SmartCustomsEd25519Signature2026", "verificationMethod": junk, "created": junk}]
    doc["smartcustoms"] = {"checkpoint": junk, "inclusionProof": junk, "logIndex": junk, "leaf": junk}
    section = data.draw(st.sampled_from(["signature", "privacy", "data", "version"]))
    doc[section] = junk
    from smartcustoms.documents import signing

    registry = signing.KeyRegistry()
    registry.rotate("x", bytes(32), signing.datetime(2020, 1, 1, tzinfo=signing.UTC))
    for reg in (None, registry):
        verdict = service.verify_document(doc, registry=reg)
        assert verdict["valid"] in (True, False)


def _v3(doc: dict[str, object]) -> dict[str, object]:
    cred = {"@context": [model.V3_CREDENTIALS_CONTEXT, model.OA_V3_CONTEXT], "credentialSubject": doc}
    return model.wrap_documents_v3([cred])[0]


@given(documents, st.data())
@settings(max_examples=60, deadline=None)
def test_v3_wrap_redact_and_tamper(doc: dict[str, object], data: st.DataObject) -> None:
    wrapped = _v3(doc)
    assert model.check_integrity(wrapped).status == "valid"
    salts = json.loads(base64.b64decode(wrapped["proof"]["salts"]))  # type: ignore[index]
    path = data.draw(st.sampled_from(sorted(s["path"] for s in salts if s["path"].startswith("credentialSubject"))))
    hidden = model.redact_v3(wrapped, [path])
    assert model.check_integrity(hidden).status == "valid"
    assert model._lookup(hidden, path) == (False, None) or model._lookup(hidden, path)[1] == {}
    tampered = copy.deepcopy(wrapped)
    found, value = model._lookup(tampered, path)
    assert found
    parts = model._PATH_PART.findall(path)
    node: object = tampered
    for name, index in parts[:-1]:
        node = node[int(index)] if index else node[name]  # type: ignore[index]
    name, index = parts[-1]
    changed = "x" if value != "x" else "y"
    if index:
        node[int(index)] = changed  # type: ignore[index]
    else:
        node[name] = changed  # type: ignore[index]
    assert model.check_integrity(tampered).status == "invalid"
