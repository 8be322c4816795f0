"""RFC 9162 Merkle tree against transparency-dev/merkle's test vectors, and properties of proofs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.documents import merkle
from tests.conftest import shared_data

# the RFC 6962 reference leaves transparency-dev builds its vectors from
RFC_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(raw: list[str] | None) -> list[bytes]:
    return [_b(p) for p in raw or []]


def _vectors(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    base = shared_data("docverify", "transparency_dev_merkle_testdata", kind)
    return [(p, json.loads(p.read_text())) for p in sorted(base.rglob("*.json"))]


def test_inclusion_vectors() -> None:
    vectors = _vectors("inclusion")
    assert len(vectors) > 90
    for path, v in vectors:
        try:
            merkle.verify_inclusion(v["leafIdx"], v["treeSize"], _b(v["leafHash"]), _proof(v["proof"]), _b(v["root"]))
            failed = None
        except merkle.ProofError as exc:
            failed = str(exc)
        assert (failed is not None) == v["wantErr"], (path, failed)


def test_consistency_vectors() -> None:
    vectors = _vectors("consistency")
    assert len(vectors) > 90
    for path, v in vectors:
        try:
            merkle.verify_consistency(v["size1"], v["size2"], _proof(v["proof"]), _b(v["root1"]), _b(v["root2"]))
            failed = None
        except merkle.ProofError as exc:
            failed = str(exc)
        assert (failed is not None) == v["wantErr"], (path, failed)


def test_generated_proofs_equal_happy_path_vectors() -> None:
    tree = merkle.MerkleTree(merkle.leaf_hash(x) for x in RFC_LEAVES)
    hashes = [tree.leaf(i) for i in range(len(RFC_LEAVES))]
    checked = 0
    for _, v in _vectors("inclusion"):
        if v["wantErr"] or v["treeSize"] > len(RFC_LEAVES) or _b(v["leafHash"]) not in hashes:
            continue
        assert tree.root(v["treeSize"]) == _b(v["root"])
        assert tree.inclusion_proof(v["leafIdx"], v["treeSize"]) == _proof(v["proof"])
        checked += 1
    for _, v in _vectors("consistency"):
        if v["wantErr"] or v["size2"] > len(RFC_LEAVES) or v["size1"] == 0:
            continue
        if tree.root(v["size1"]) != _b(v["root1"]):
            continue
        assert tree.root(v["size2"]) == _b(v["root2"])
        assert tree.consistency_proof(v["size1"], v["size2"]) == _proof(v["proof"])
        checked += 1
    assert checked >= 8


def test_rfc_root_matches_recursive_definition() -> None:
    def mth(leaves: list[bytes]) -> bytes:
        if not leaves:
            return merkle.EMPTY_ROOT
        if len(leaves) == 1:
            return merkle.leaf_hash(leaves[0])
        k = 1 << ((len(leaves) - 1).bit_length() - 1)
        return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))

    data = [bytes([i]) * i for i in range(40)]
    tree = merkle.MerkleTree()
    assert tree.root() == merkle.EMPTY_ROOT
    for i, d in enumerate(data):
        tree.append(d)
        assert tree.root() == mth(data[: i + 1])
    assert tree.root(17) == mth(data[:17])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.data())
def test_inclusion_proofs_verify_and_tampering_fails(size: int, data: st.DataObject) -> None:
    tree = merkle.MerkleTree(merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size))
    at = data.draw(st.integers(1, size))
    index = data.draw(st.integers(0, at - 1))
    proof = tree.inclusion_proof(index, at)
    root = tree.root(at)
    merkle.verify_inclusion(index, at, tree.leaf(index), proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, at, merkle.leaf_hash(b"forged"), proof, root)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(index, at, tree.leaf(index), bad, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(index, at, tree.leaf(index), proof[:-1], root)
    if at > 1 and index + 1 < at:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(index + 1, at, tree.leaf(index), proof, root)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 300), st.data())
def test_consistency_proofs_verify_and_tampering_fails(size: int, data: st.DataObject) -> None:
    tree = merkle.MerkleTree(merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size))
    size2 = data.draw(st.integers(2, size))
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = tree.consistency_proof(size1, size2)
    merkle.verify_consistency(size1, size2, proof, tree.root(size1), tree.root(size2))
    forked = merkle.MerkleTree(tree.leaf(i) if i != size1 - 1 else merkle.leaf_hash(b"x") for i in range(size2))
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(size1, size2, proof, forked.root(size1), tree.root(size2))
    j = data.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[j] = bytes(32)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(size1, size2, bad, tree.root(size1), tree.root(size2))


def test_subtree_inclusion_vectors() -> None:
    vectors = _vectors("subtreeinclusion")
    assert len(vectors) > 150
    for path, v in vectors:
        try:
            merkle.verify_subtree_inclusion(
                v["leafIdx"], v["start"], v["end"], _b(v["leafHash"]), _proof(v["proof"]), _b(v["root"])
            )
            failed = None
        except merkle.ProofError as exc:
            failed = str(exc)
        assert (failed is not None) == v["wantErr"], (path, failed)


def test_subtree_consistency_vectors() -> None:
    vectors = _vectors("subtreeconsistency")
    assert len(vectors) > 100
    for path, v in vectors:
        try:
            merkle.verify_subtree_consistency(
                v["start"], v["end"], v["size"], _proof(v["proof"]), _b(v["root1"]), _b(v["root2"])
            )
            failed = None
        except merkle.ProofError as exc:
            failed = str(exc)
        assert (failed is not None) == v["wantErr"], (path, failed)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 200), st.data())
def test_subtree_proofs_verify_and_tampering_fails(size: int, data: st.DataObject) -> None:
    tree = merkle.MerkleTree(merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size))
    level = data.draw(st.integers(0, size.bit_length()))
    width = 1 << level
    start = data.draw(st.integers(0, (size - 1) // width)) * width
    end = data.draw(st.integers(start + 1, min(start + width, size)))
    if start % merkle._bit_ceil(end - start):
        return
    root1 = tree.root(end) if start == 0 else tree._range(start, end)
    proof = merkle.subtree_consistency_proof(tree, start, end, size)
    merkle.verify_subtree_consistency(start, end, size, proof, root1, tree.root(size))
    if start == 0 and end < size:
        assert proof == tree.consistency_proof(end, size)
    index = data.draw(st.integers(start, end - 1))
    incl = merkle.MerkleTree(tree.leaf(i) for i in range(start, end)).inclusion_proof(index - start)
    merkle.verify_subtree_inclusion(index, start, end, tree.leaf(index), incl, root1)
    if proof:
        bad = list(proof)
        bad[-1] = bytes(32)
        with pytest.raises(merkle.ProofError):
            merkle.verify_subtree_consistency(start, end, size, bad, root1, tree.root(size))
    with pytest.raises(merkle.ProofError):
        merkle.verify_subtree_consistency(start, end, size, proof, merkle.leaf_hash(b"forged"), tree.root(size))
