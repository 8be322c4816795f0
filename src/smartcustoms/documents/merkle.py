"""RFC 9162 (Certificate Transparency v2, same tree as RFC 6962) Merkle tree: roots, inclusion and
consistency proofs, and their verification.

The issuer's transparency log is this tree over its entries, so a partner customs can check that a
certificate was logged (inclusion) and that the log never rewrote history (consistency). Pure code;
verification follows transparency-dev/merkle so that it agrees with its test vectors, errors included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from smartcustoms.platform.i18n import t

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify; the message (a `t()` message, shown to partners in their language) says why."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree over leaf hashes that keeps every complete subtree root.

    Level k holds the roots of the complete subtrees of 2**k leaves, so appending costs O(log n)
    hashes and the root, inclusion and consistency proofs for *any* earlier size are O(log² n)
    look-ups, without re-hashing the leaves.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, data: bytes) -> int:
        return self.append_hash(leaf_hash(data))

    def append_hash(self, h: bytes) -> int:
        """Add a leaf hash; returns its index."""
        index = self.size
        self.levels[0].append(h)
        k, i = 0, index
        while i & 1:
            parent = node_hash(self.levels[k][i - 1], self.levels[k][i])
            if len(self.levels) == k + 1:
                self.levels.append([])
            self.levels[k + 1].append(parent)
            k += 1
            i >>= 1
        return index

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index]

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi) (hi <= size)."""
        n = hi - lo
        if n == 1:
            return self.levels[0][lo]
        if n & (n - 1) == 0 and lo % n == 0:
            return self.levels[n.bit_length() - 1][lo // n]
        k = _largest_power_of_two_below(n)
        return node_hash(self._range(lo, lo + k), self._range(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(t("tree size {size} out of range 0..{limit}", size=size, limit=self.size))
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size])."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(t("no leaf {index} in a tree of size {size}", index=index, size=size))
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _largest_power_of_two_below(hi - lo)
            if index < lo + k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo = lo + k
        proof.reverse()
        return proof

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2])."""
        size2 = self.size if size2 is None else size2
        if not 0 < size1 <= size2 <= self.size:
            raise ValueError(
                t(
                    "no consistency proof from size {size1} to {size2} (tree has {size})",
                    size1=size1,
                    size2=size2,
                    size=self.size,
                )
            )
        if size1 == size2:
            return []
        return self._subproof(size1, 0, size2, True)

    def _subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self._range(lo, hi)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, complete), self._range(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._range(lo, lo + k)]


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    return MerkleTree(leaf_hashes).root()


# --- verification (after transparency-dev/merkle/proof) ----------------------------------------


def _decompose(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(t("proof hash {i} has {n} bytes, want {want}", i=i, n=len(h), want=HASH_SIZE))


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if index < 0 or index >= size:
        raise ProofError(t("leaf index {index} is beyond tree size {size}", index=index, size=size))
    if len(leaf) != HASH_SIZE:
        raise ProofError(t("leaf hash has {n} bytes, want {want}", n=len(leaf), want=HASH_SIZE))
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            t(
                "wrong proof size {n} for leaf {index} of {size}, want {want}",
                n=len(proof),
                index=index,
                size=size,
                want=inner + border,
            )
        )
    _check_hashes(proof)
    return _chain_border_right(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree of `size` with `root`."""
    got = root_from_inclusion_proof(index, size, leaf, proof)
    if got != root:
        raise ProofError(t("calculated root {got} does not match expected root {root}", got=got.hex(), root=root.hex()))


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise ProofError unless the tree of `size2`/`root2` extends the tree of `size1`/`root1`."""
    if size1 < 0 or size2 < size1:
        raise ProofError(t("size2 {size2} is smaller than size1 {size1}", size2=size2, size1=size1))
    if size1 == 0:
        raise ProofError(t("a consistency check from the empty tree proves nothing"))
    if size1 == size2:
        if proof:
            raise ProofError(t("sizes are equal but the proof is not empty"))
        if root1 != root2:
            raise ProofError(t("sizes are equal but the roots differ"))
        return
    if not proof:
        raise ProofError(t("empty consistency proof"))
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(t("wrong proof size {n}, want {want}", n=len(proof), want=start + inner + border))
    _check_hashes(proof)
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError(t("proof does not lead to the old root: {got} != {want}", got=hash1.hex(), want=root1.hex()))
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError(t("proof does not lead to the new root: {got} != {want}", got=hash2.hex(), want=root2.hex()))


# --- subtrees (draft-ietf-plants-merkle-tree-certs; transparency-dev "subtree" proofs) ----------


def _bit_ceil(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def check_subtree(start: int, end: int) -> None:
    """[start, end) is a subtree iff it is non-empty and start is a multiple of BIT_CEIL(end - start)."""
    if not 0 <= start < end:
        raise ProofError(t("[{start}, {end}) is not a non-empty range", start=start, end=end))
    if start % _bit_ceil(end - start):
        raise ProofError(
            t(
                "[{start}, {end}) is not a valid subtree: start must be a multiple of {step}",
                start=start,
                end=end,
                step=_bit_ceil(end - start),
            )
        )


def verify_subtree_inclusion(
    index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Leaf `index` (absolute) is in the subtree [start, end) whose root hash is `root`."""
    check_subtree(start, end)
    if not start <= index < end:
        raise ProofError(t("leaf {index} is outside the subtree [{start}, {end})", index=index, start=start, end=end))
    verify_inclusion(index - start, end - start, leaf, proof, root)


def _subtree_walk(start: int, end: int, size: int) -> tuple[int, int, int, int]:
    shift = ((end - start) & -(end - start)).bit_length() - 1
    return shift, (end - 1) >> shift, (size - 1) >> shift, _bit_ceil(end - start).bit_length() - 1


def verify_subtree_consistency(
    start: int, end: int, size: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """The subtree [start, end) with hash `root1` is part of the tree of `size` leaves with hash `root2`."""
    if end > size:
        raise ProofError(t("subtree end {end} is beyond tree size {size}", end=end, size=size))
    if start == end:
        if proof:
            raise ProofError(t("an empty subtree needs an empty proof"))
        if root1 != EMPTY_ROOT:
            raise ProofError(t("an empty subtree must have the empty-tree hash"))
        return
    check_subtree(start, end)
    if start == 0 and end == size:
        if proof:
            raise ProofError(t("the subtree is the whole tree, but the proof is not empty"))
        if root1 != root2:
            raise ProofError(t("the subtree is the whole tree, but the roots differ"))
        return
    shift, idx, last, top = _subtree_walk(start, end, size)
    items = list(proof)
    _check_hashes(items)
    if end - start == 1 << shift:
        seed = root1
    else:
        if not items:
            raise ProofError(t("empty subtree consistency proof"))
        seed = items.pop(0)
    hash1 = hash2 = seed
    level = shift
    used = 0
    while last > 0:
        if idx & 1 or idx < last:
            if used >= len(items):
                raise ProofError(t("subtree consistency proof too short ({n} hashes)", n=len(proof)))
            h = items[used]
            used += 1
            if idx & 1:
                hash2 = node_hash(h, hash2)
                if level < top:
                    hash1 = node_hash(h, hash1)
            else:
                hash2 = node_hash(hash2, h)
        idx >>= 1
        last >>= 1
        level += 1
    if used != len(items):
        raise ProofError(t("subtree consistency proof too long ({n} hashes)", n=len(proof)))
    if hash1 != root1:
        raise ProofError(
            t("proof does not lead to the subtree root: {got} != {want}", got=hash1.hex(), want=root1.hex())
        )
    if hash2 != root2:
        raise ProofError(t("proof does not lead to the tree root: {got} != {want}", got=hash2.hex(), want=root2.hex()))


def subtree_consistency_proof(tree: MerkleTree, start: int, end: int, size: int) -> list[bytes]:
    """The proof `verify_subtree_consistency` checks, generated from a tree holding at least `size` leaves."""
    if not end <= size <= tree.size:
        raise ValueError(t("no subtree [{start}, {end}) in a tree of size {size}", start=start, end=end, size=size))
    if start == end or (start == 0 and end == size):
        return []
    check_subtree(start, end)
    shift, idx, last, _ = _subtree_walk(start, end, size)
    proof = [] if end - start == 1 << shift else [tree._range(end - (1 << shift), end)]
    level = shift
    while last > 0:
        if idx & 1:
            proof.append(tree._range((idx - 1) << level, idx << level))
        elif idx < last:
            proof.append(tree._range((idx + 1) << level, min((idx + 2) << level, size)))
        idx >>= 1
        last >>= 1
        level += 1
    return proof
