"""Wrapped trade documents in the OpenAttestation v2 format (TradeTrust): salting, hashing, batching, redaction.

Pure functions, no I/O. The format is kept byte-compatible with OpenAttestation v2 so that a partner
customs using TradeTrust tooling can check our certificates of origin, and we can check theirs:

* every leaf of `data` is a string ``"salt:type:value"``;
* a field's hash is keccak-256 (the Ethereum one, *not* SHA3-256) of the compact JSON ``{path: leaf}``
  where `path` is the dotted flattened path (``issuers.0.name``);
* ``targetHash`` = keccak-256 of the compact JSON list of all field hashes plus
  ``privacy.obfuscatedData``, sorted;
* ``merkleRoot`` is reached from ``targetHash`` by hashing sorted pairs with the ``proof`` siblings.

OpenAttestation v3 documents (per-path salts in ``proof.salts``) are checked for integrity as well.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _encode_str
from typing import Any

from Crypto.Hash import keccak

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t, t_plain

OA_V2_VERSION = "https://schema.openattestation.com/2.0/schema.json"
OA_V3_CONTEXT = "https://schemata.openattestation.com/com/openattestation/1.0/OpenAttestation.v3.json"
PROOF_TYPE = "SHA3MerkleProof"
_HASH_RE = re.compile(r"[0-9a-fA-F]{64}")

Json = Any


def _keccak256_public(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


try:  # pycryptodome's one-shot C entry point: same hash, a quarter of the per-call overhead
    from Crypto.Hash.keccak import _raw_keccak_lib
    from Crypto.Util._raw_api import backend as _backend
    from Crypto.Util._raw_api import ffi as _ffi

    if _backend != "cffi":  # pragma: no cover - ctypes backend: keep the public API
        raise ImportError

    _OUT = threading.local()
    _oneshot = _raw_keccak_lib.keccak_oneshot

    def _keccak256_fast(data: bytes) -> bytes:
        try:
            out, view = _OUT.buf
        except AttributeError:
            out = _ffi.new("uint8_t[32]")
            view = _ffi.buffer(out)
            _OUT.buf = (out, view)
        if _oneshot(data, len(data), out, 32, 64, 24, 1):
            raise ValueError("keccak failed")
        return view[:]

    if _keccak256_fast(b"") != _keccak256_public(b""):  # pragma: no cover
        raise ImportError
    keccak256 = _keccak256_fast
except (ImportError, AttributeError):  # pragma: no cover
    keccak256 = _keccak256_public
"""Ethereum keccak-256 (pre-standard padding); OpenAttestation calls it 'SHA3'. Not hashlib.sha3_256."""


def _compact(value: Json) -> str:
    """JSON as JavaScript's JSON.stringify writes it (no spaces, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- flattening -------------------------------------------------------------------------------


def flatten(data: Json, prefix: str = "") -> dict[str, Json]:
    """Flatten like OpenAttestation: dotted keys, list indexes as keys; empty objects and lists carry no
    field (an obfuscated `recipient: {}` must not change the target hash)."""
    out: dict[str, Json] = {}

    def walk(value: Json, key: str) -> None:
        kind = type(value)
        if kind is str:
            out[key] = value
        elif kind is dict or (kind is not list and isinstance(value, Mapping)):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif kind is list:
            for i, v in enumerate(value):
                walk(v, f"{key}.{i}" if key else str(i))
        else:
            out[key] = value

    walk(data, prefix)
    return out


def _field_json(path: str, salted: Json) -> str:
    if type(salted) is str:
        return "{" + _encode_str(path) + ":" + _encode_str(salted) + "}"
    return _compact({path: salted})


def field_hash(path: str, salted: Json) -> str:
    """Hash of one field as OpenAttestation v2 computes it (hex)."""
    return keccak256(_field_json(path, salted).encode("utf-8")).hex()


def field_hashes(data: Json) -> dict[str, str]:
    """Path → hash for every flattened field of salted `data`."""
    return {path: field_hash(path, value) for path, value in flatten(data).items()}


def _digest(hashes: Iterable[str]) -> str:
    """keccak of the compact JSON list of sorted hex hashes (hex strings need no escaping)."""
    ordered = sorted(hashes)
    return keccak256(('["' + '","'.join(ordered) + '"]' if ordered else "[]").encode("ascii")).hex()


def target_hash(data: Json, obfuscated: Iterable[str] = ()) -> str:
    """The document's digest over visible field hashes and hashes of redacted fields."""
    return _digest([*field_hashes(data).values(), *obfuscated])


def combine_sorted(a: bytes, b: bytes) -> bytes:
    """One step of the OpenAttestation batch tree: keccak of the two hashes in byte order."""
    return keccak256(a + b if a <= b else b + a)


# --- salting ----------------------------------------------------------------------------------


def _typed(value: Json) -> str:
    if isinstance(value, bool):
        return f"boolean:{'true' if value else 'false'}"
    if isinstance(value, int | float):
        text = repr(value)
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        return f"number:{text}"
    if isinstance(value, str):
        return f"string:{value}"
    if value is None:
        return "null:null"
    raise TypeError(t("cannot salt a {kind}", kind=type(value).__name__))


class _SaltPool(threading.local):
    """Random hex drawn from os.urandom 16 KiB at a time (one syscall per ~1,000 salts)."""

    def __init__(self) -> None:
        self.hex = ""
        self.pos = 0


_SALTS = _SaltPool()


def _forget_salts() -> None:
    # a forked child must never reuse its parent's unused salts (a visible salt elsewhere would let
    # anyone brute-force a redacted field hashed with the same salt)
    _SALTS.hex, _SALTS.pos = "", 0


os.register_at_fork(after_in_child=_forget_salts)
_VARIANT = "89ab"


def random_salt() -> str:
    """A UUID4-shaped salt, as OpenAttestation writes them, from the OS CSPRNG."""
    pool = _SALTS
    if pool.pos + 32 > len(pool.hex):
        pool.hex, pool.pos = os.urandom(16 * 1024).hex(), 0
    h = pool.hex[pool.pos : pool.pos + 32]
    pool.pos += 32
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def salt_data(data: Json, salt: Callable[[], str] | None = None, hashes: list[str] | None = None) -> Json:
    """Replace every scalar by ``salt:type:value`` (a fresh random salt per field, as OpenAttestation does).
    If `hashes` is given, each field's hash is appended to it on the way (saves a second pass)."""
    make = salt or random_salt

    def walk(value: Json, key: str) -> Json:
        kind = type(value)
        if kind is dict or (kind is not str and kind is not list and isinstance(value, Mapping)):
            return {str(k): walk(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if kind is list:
            return [walk(v, f"{key}.{i}" if key else str(i)) for i, v in enumerate(value)]
        leaf = f"{make()}:string:{value}" if kind is str else f"{make()}:{_typed(value)}"
        if hashes is not None:
            hashes.append(field_hash(key, leaf))
        return leaf

    return walk(data, "")


def _unsalt_leaf(text: Json) -> Json:
    if not isinstance(text, str):
        return text
    parts = text.split(":", 2)
    if len(parts) != 3:
        return text
    _, kind, value = parts
    if kind == "string":
        return value
    if kind == "number":
        num = float(value)
        return int(num) if num.is_integer() and "." not in value and "e" not in value.lower() else num
    if kind == "boolean":
        return value == "true"
    if kind in ("null", "undefined"):
        return None
    return value


def unsalt(data: Json) -> Json:
    """The plain document content a reader sees (salts and type tags removed)."""
    if isinstance(data, Mapping):
        return {k: unsalt(v) for k, v in data.items()}
    if isinstance(data, list):
        return [unsalt(v) for v in data]
    return _unsalt_leaf(data)


# --- wrapping ---------------------------------------------------------------------------------


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Levels of the OpenAttestation batch tree (an odd node is carried up unchanged)."""
    if not leaves:
        raise ValueError("a batch needs at least one document")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [combine_sorted(cur[i], cur[i + 1]) if i + 1 < len(cur) else cur[i] for i in range(0, len(cur), 2)]
        levels.append(nxt)
    return levels


def batch_proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def wrap_documents(
    documents: Sequence[Json], salt: Callable[[], str] | None = None, *, schema: str | None = None
) -> list[dict[str, Json]]:
    """Wrap a batch of raw documents: salt fields, compute target hashes, one Merkle root with a proof each."""
    salted = []
    targets = []
    for doc in documents:
        hashes: list[str] = []
        salted.append(salt_data(doc, salt, hashes))
        targets.append(bytes.fromhex(_digest(hashes)))
    levels = merkle_levels(targets)
    root = levels[-1][0].hex()
    out = []
    for i, data in enumerate(salted):
        wrapped: dict[str, Json] = {"version": OA_V2_VERSION}
        if schema:
            wrapped["schema"] = schema
        wrapped["data"] = data
        wrapped["signature"] = {
            "type": PROOF_TYPE,
            "targetHash": targets[i].hex(),
            "proof": [p.hex() for p in batch_proof(levels, i)],
            "merkleRoot": root,
        }
        out.append(wrapped)
    return out


def wrap_document(
    document: Json, salt: Callable[[], str] | None = None, *, schema: str | None = None
) -> dict[str, Json]:
    return wrap_documents([document], salt, schema=schema)[0]


def redact(wrapped: Mapping[str, Json], paths: Iterable[str]) -> dict[str, Json]:
    """Hide fields: each flattened field under a given dotted path is removed from `data` and its hash
    moves to ``privacy.obfuscatedData``; the target hash, and so the signature, stay valid."""
    doc = copy.deepcopy(dict(wrapped))
    data = doc.get("data")
    flat = flatten(data)
    wanted = list(paths)
    hidden: list[str] = []
    for want in wanted:
        hits = [p for p in flat if p == want or p.startswith(want + ".")]
        if not hits:
            raise KeyError(want)
        for path in hits:
            hidden.append(field_hash(path, flat.pop(path)))
    for want in wanted:
        _delete_path(data, want.split("."))
    privacy = doc.setdefault("privacy", {})
    privacy["obfuscatedData"] = [*privacy.get("obfuscatedData", []), *hidden]
    return doc


def _delete_path(node: Json, parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        idx = int(head)
        if rest:
            _delete_path(node[idx], rest)
        # list items are not removed (indexes of the other fields must not shift); an emptied
        # item stays as {} exactly as OpenAttestation's obfuscate leaves it
        else:
            node[idx] = {}
        return
    if head not in node:
        return
    if rest:
        _delete_path(node[head], rest)
    else:
        del node[head]


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One of the three answers of a verification (integrity, status, identity)."""

    status: str  # valid | invalid | unknown
    reason: str
    detail: dict[str, Json] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Json]:
        out: dict[str, Json] = {"status": self.status, "reason": self.reason}
        if self.detail:
            out["detail"] = self.detail
        return out


def detect_format(doc: Json) -> str:
    """'oa-v2', 'oa-v3' or 'unknown' (with no exception: callers turn it into a reason)."""
    if not isinstance(doc, Mapping):
        return "unknown"
    version = doc.get("version")
    if version == OA_V2_VERSION or (isinstance(doc.get("signature"), Mapping) and isinstance(doc.get("data"), Mapping)):
        return "oa-v2"
    context = doc.get("@context")
    if (isinstance(context, list) and OA_V3_CONTEXT in context) or "openAttestationMetadata" in doc:
        return "oa-v3"
    return "unknown"


def _is_hash(value: Json) -> bool:
    return isinstance(value, str) and _HASH_RE.fullmatch(value) is not None


def check_integrity(doc: Json) -> Check:
    """Recompute target hash and Merkle root of an OpenAttestation v2 document; say exactly what differs."""
    fmt = detect_format(doc)
    if fmt == "oa-v3":
        return check_integrity_v3(doc)
    if fmt != "oa-v2":
        return Check("invalid", t_plain("not an OpenAttestation v2 wrapped document (no 'data' and 'signature')"))
    sig = doc.get("signature")
    data = doc.get("data")
    if not isinstance(sig, Mapping) or not isinstance(data, Mapping):
        return Check("invalid", t_plain("'signature' and 'data' must be objects"))
    if sig.get("type") != PROOF_TYPE:
        return Check(
            "invalid",
            t_plain(
                "unsupported signature type {type}; expected {expected}",
                type=repr(sig.get("type")),
                expected=PROOF_TYPE,
            ),
        )
    target, root, proof = sig.get("targetHash"), sig.get("merkleRoot"), sig.get("proof", [])
    privacy = doc.get("privacy") or {}
    obfuscated = privacy.get("obfuscatedData", []) if isinstance(privacy, Mapping) else None
    if not isinstance(target, str) or not _is_hash(target):
        return Check("invalid", t_plain("signature.targetHash is not a 32-byte hex hash"))
    if not isinstance(root, str) or not _is_hash(root):
        length = len(root) if isinstance(root, str) else 0
        return Check(
            "invalid", t_plain("signature.merkleRoot is not a 32-byte hex hash ({length} hex digits)", length=length)
        )
    if not isinstance(proof, list) or not all(_is_hash(p) for p in proof):
        return Check("invalid", t_plain("signature.proof must be a list of 32-byte hex hashes"))
    if not isinstance(obfuscated, list) or not all(_is_hash(h) for h in obfuscated):
        return Check("invalid", t_plain("privacy.obfuscatedData must be a list of 32-byte hex hashes"))
    try:
        visible = field_hashes(data)
        computed = _digest([*visible.values(), *(h.lower() for h in obfuscated)])
    except (TypeError, ValueError) as exc:
        return Check("invalid", t_plain("data cannot be hashed: {error}", error=exc))
    if computed != target.lower():
        return Check(
            "invalid",
            t_plain("document data was changed: recomputed target hash does not match signature.targetHash"),
            {"expected": target.lower(), "computed": computed},
        )
    node = bytes.fromhex(target)
    for sibling in proof:
        node = combine_sorted(node, bytes.fromhex(sibling))
    if node.hex() != root.lower():
        return Check(
            "invalid",
            t_plain("Merkle proof does not lead to signature.merkleRoot"),
            {"expected": root.lower(), "computed": node.hex()},
        )
    return Check(
        "valid",
        t_plain("target hash and Merkle proof match"),
        {"targetHash": computed, "merkleRoot": node.hex(), "fields": len(visible), "hidden": len(obfuscated)},
    )


# --- OpenAttestation v3 -----------------------------------------------------------------------

V3_PROOF_TYPE = "OpenAttestationMerkleProofSignature2018"
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _lookup(doc: Json, path: str) -> tuple[bool, Json]:
    """lodash `get` for v3 salt paths like ``credentialSubject.licenses[0].class``."""
    node = doc
    for name, index in _PATH_PART.findall(path):
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return False, None
            node = node[int(index)]
        else:
            if not isinstance(node, Mapping) or name not in node:
                return False, None
            node = node[name]
    return True, node


def _js_string(value: Json) -> str:
    """`${value}` in JavaScript, for the scalar leaves OpenAttestation v3 salts."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    return "[object Object]" if isinstance(value, Mapping) else ",".join(_js_string(v) for v in value)


def check_integrity_v3(doc: Mapping[str, Json]) -> Check:
    """OpenAttestation v3: per-path salts (base64 JSON in proof.salts) hash ``{path: "salt:value"}``."""
    proof = doc.get("proof")
    if not isinstance(proof, Mapping) or proof.get("type") != V3_PROOF_TYPE:
        return Check(
            "invalid",
            t_plain("not a wrapped OpenAttestation v3 document (no {proof_type} proof)", proof_type=V3_PROOF_TYPE),
        )
    target, root, proofs = proof.get("targetHash"), proof.get("merkleRoot"), proof.get("proofs", [])
    privacy = proof.get("privacy") or {}
    obfuscated = privacy.get("obfuscated", []) if isinstance(privacy, Mapping) else None
    if not isinstance(target, str) or not _is_hash(target):
        return Check("invalid", t_plain("proof.targetHash is not a 32-byte hex hash"))
    if not isinstance(root, str) or not _is_hash(root):
        return Check("invalid", t_plain("proof.merkleRoot is not a 32-byte hex hash"))
    if not isinstance(proofs, list) or not all(_is_hash(p) for p in proofs):
        return Check("invalid", t_plain("proof.proofs must be a list of 32-byte hex hashes"))
    if not isinstance(obfuscated, list) or not all(_is_hash(h) for h in obfuscated):
        return Check("invalid", t_plain("proof.privacy.obfuscated must be a list of 32-byte hex hashes"))
    try:
        salts = json.loads(base64.b64decode(str(proof.get("salts", "")), validate=True))
        pairs = [(str(s["path"]), str(s["value"])) for s in salts]
    except (ValueError, TypeError, KeyError):
        return Check("invalid", t_plain("proof.salts is not base64 JSON of path/value salts"))
    body = {k: v for k, v in doc.items() if k != "proof"}
    hashes = list(obfuscated)
    for path, salt in pairs:
        found, value = _lookup(body, path)
        if found:
            hashes.append(keccak256(_compact({path: f"{salt}:{_js_string(value)}"}).encode("utf-8")).hex())
    computed = _digest(hashes)
    if computed != target.lower():
        return Check(
            "invalid",
            t_plain("document data was changed: recomputed target hash does not match proof.targetHash"),
            {"expected": target.lower(), "computed": computed},
        )
    node = bytes.fromhex(target)
    for sibling in proofs:
        node = combine_sorted(node, bytes.fromhex(sibling))
    if node.hex() != root.lower():
        return Check("invalid", t_plain("Merkle proof does not lead to proof.merkleRoot"), {"computed": node.hex()})
    extra = unsalted_v3_fields(doc)
    if extra:
        return Check(
            "invalid",
            t_plain(
                "document data was changed: field(s) {fields} added after wrapping (no salt covers them)",
                fields=", ".join(extra[:5]),
            ),
            {"unsalted": extra[:20]},
        )
    return Check("valid", t_plain("target hash and Merkle proof match (OpenAttestation v3)"), {"targetHash": computed})


V3_CREDENTIALS_CONTEXT = "https://www.w3.org/2018/credentials/v1"


def v3_salts(body: Json, salt: Callable[[], str] | None = None) -> list[dict[str, str]]:
    """One ``{value, path}`` salt per scalar leaf, paths written as OpenAttestation v3 writes them
    (``a.b[0].c``), values 32 random bytes in hex (as its `salt` does)."""
    out: list[dict[str, str]] = []

    def walk(value: Json, path: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        else:
            out.append({"value": salt() if salt else os.urandom(32).hex(), "path": path})

    walk(body, "")
    return out


def _v3_target(body: Mapping[str, Json], salts: Sequence[Mapping[str, str]], obfuscated: Iterable[str] = ()) -> str:
    hashes = list(obfuscated)
    for s in salts:
        found, value = _lookup(body, s["path"])
        if found:
            hashes.append(keccak256(_compact({s["path"]: f"{s['value']}:{_js_string(value)}"}).encode("utf-8")).hex())
    return _digest(hashes)


def wrap_documents_v3(
    credentials: Sequence[Mapping[str, Json]], salt: Callable[[], str] | None = None
) -> list[dict[str, Json]]:
    """Wrap a batch of OpenAttestation v3 credentials (``@context``, ``credentialSubject``, ``issuer``,
    ``openAttestationMetadata``...): per-path salts, target hashes, one Merkle root with a proof each."""
    saltss = [v3_salts(c, salt) for c in credentials]
    targets = [bytes.fromhex(_v3_target(c, s)) for c, s in zip(credentials, saltss, strict=True)]
    levels = merkle_levels(targets)
    root = levels[-1][0].hex()
    out = []
    for i, cred in enumerate(credentials):
        wrapped = copy.deepcopy(dict(cred))
        wrapped["proof"] = {
            "type": V3_PROOF_TYPE,
            "proofPurpose": "assertionMethod",
            "targetHash": targets[i].hex(),
            "proofs": [p.hex() for p in batch_proof(levels, i)],
            "merkleRoot": root,
            "salts": base64.b64encode(_compact(saltss[i]).encode("utf-8")).decode("ascii"),
            "privacy": {"obfuscated": []},
        }
        out.append(wrapped)
    return out


def v3_path(dotted: str) -> str:
    """`credentialSubject.goods.0.quantity` (or already `goods[0].quantity`) as a v3 salt path."""
    out = ""
    for part in dotted.replace("[", ".").replace("]", "").split("."):
        if not part:
            continue
        out += f"[{part}]" if part.isdigit() and out else (f".{part}" if out else part)
    return out


def redact_v3(wrapped: Mapping[str, Json], paths: Iterable[str]) -> dict[str, Json]:
    """Hide fields of an OpenAttestation v3 document as its `obfuscate` does: each salted leaf under a path
    leaves the body, its hash joins ``proof.privacy.obfuscated`` and its salt leaves ``proof.salts``.
    A whole list element becomes ``{}`` so the indexes of the others do not shift."""
    doc = copy.deepcopy(dict(wrapped))
    proof = doc["proof"]
    salts = json.loads(base64.b64decode(str(proof["salts"]), validate=True))
    body = {k: v for k, v in doc.items() if k != "proof"}
    hidden: list[str] = []
    removed: set[str] = set()
    for want in paths:
        path = v3_path(want)
        hits = [s for s in salts if s["path"] == path or s["path"].startswith((path + ".", path + "["))]
        if not hits:
            raise KeyError(want)
        for salt in hits:
            found, value = _lookup(body, salt["path"])
            if found and salt["path"] not in removed:
                hidden.append(
                    keccak256(_compact({salt["path"]: f"{salt['value']}:{_js_string(value)}"}).encode()).hex()
                )
                removed.add(salt["path"])
        _unset(doc, path)
    proof["salts"] = base64.b64encode(_compact([s for s in salts if s["path"] not in removed]).encode()).decode()
    privacy = proof.setdefault("privacy", {})
    privacy["obfuscated"] = [*privacy.get("obfuscated", []), *hidden]
    return doc


def _unset(doc: dict[str, Json], path: str) -> None:
    parts = _PATH_PART.findall(path)
    node: Json = doc
    for name, index in parts[:-1]:
        node = node[int(index)] if index else node[name]
    name, index = parts[-1]
    if index:
        node[int(index)] = {}
    else:
        del node[name]


def unsalted_v3_fields(doc: Mapping[str, Json]) -> list[str]:
    """Scalar fields of a v3 document that no salt covers (added after wrapping: not protected)."""
    proof = doc.get("proof")
    try:
        salted = {str(s["path"]) for s in json.loads(base64.b64decode(str(proof.get("salts", "")), validate=True))}  # type: ignore[union-attr]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []
    body = {k: v for k, v in doc.items() if k != "proof"}
    return [
        s["path"]
        for s in v3_salts(body, lambda: "")
        if s["path"] not in salted and _lookup(body, s["path"])[1] is not None
    ]


# --- document types ---------------------------------------------------------------------------

DOC_TYPES: dict[str, dict[str, Any]] = {
    "certificate_of_origin": {
        "required": [
            "certificateNumber",
            "exporter.name",
            "exporter.country",
            "importer.name",
            "importer.country",
            "fta",
        ],
        "lines": "goods",
        "line_required": ["description", "hsCode", "originCriterion"],
    },
    "bill_of_lading": {
        "required": ["blNumber", "shipper.name", "consignee.name", "carrier.name", "portOfLoading", "portOfDischarge"],
        "lines": "goods",
        "line_required": ["description"],
    },
    "commercial_invoice": {
        "required": ["invoiceNumber", "seller.name", "buyer.name", "currency"],
        "lines": "items",
        "line_required": ["description", "quantity", "unitPrice"],
    },
}
"""The schema per document type: dotted required fields and the required fields of each line."""


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def validate_document(doc_type: str, doc: Any) -> list[Problem]:
    """Every problem of a raw document against its type's schema (empty list = acceptable)."""
    if doc_type not in DOC_TYPES:
        return [
            Problem(
                "unknown_schema",
                ("type",),
                t(
                    "Unknown document type {doc_type}; one of {allowed}",
                    doc_type=repr(doc_type),
                    allowed=", ".join(DOC_TYPES),
                ),
            )
        ]
    if not isinstance(doc, Mapping):
        return [Problem("not_an_object", (), t("A document must be a JSON object"))]
    spec = DOC_TYPES[doc_type]
    problems = [
        Problem("required", tuple(path.split(".")), t("{field} is required", field=path))
        for path in spec["required"]
        if _get(doc, path) in (None, "")
    ]
    lines = doc.get(spec["lines"])
    if not isinstance(lines, list) or not lines:
        problems.append(
            Problem("required", (spec["lines"],), t("{field} must be a non-empty list", field=spec["lines"]))
        )
    else:
        for i, line in enumerate(lines):
            if not isinstance(line, Mapping):
                problems.append(Problem("not_an_object", (spec["lines"], i), t("each line must be an object")))
                continue
            for name in spec["line_required"]:
                if line.get(name) in (None, ""):
                    problems.append(Problem("required", (spec["lines"], i, name), t("{field} is required", field=name)))
            hs = line.get("hsCode")
            if hs is not None:
                digits = str(hs).replace(".", "")
                if not (digits.isdigit() and 6 <= len(digits) <= 10):
                    problems.append(
                        Problem(
                            "invalid_hs_code",
                            (spec["lines"], i, "hsCode"),
                            t("HS code {code} must have 6-10 digits", code=repr(hs)),
                        )
                    )
    currency = doc.get("currency")
    if (
        doc_type == "commercial_invoice"
        and currency
        and not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha())
    ):
        problems.append(
            Problem(
                "invalid_currency",
                ("currency",),
                t("currency {currency} must be an ISO 4217 code", currency=repr(currency)),
            )
        )
    return problems


def foreign_status_reason(doc: Mapping[str, Any]) -> tuple[str, str]:
    """Why status and identity of a foreign OpenAttestation document cannot be checked here."""
    where: list[str] = []
    ident: list[str] = []
    meta = doc.get("openAttestationMetadata")
    if isinstance(meta, Mapping):  # v3
        method = meta.get("proof")
        if isinstance(method, Mapping) and method.get("method"):
            where.append(f"{method.get('method')} {method.get('value') or ''}".strip())
        identity = meta.get("identityProof")
        if isinstance(identity, Mapping) and identity.get("type"):
            ident.append(f"{identity.get('type')} {identity.get('identifier') or ''}".strip())
    data = doc.get("data")
    issuers = unsalt(data).get("issuers") if isinstance(data, Mapping) else None
    for issuer in issuers if isinstance(issuers, list) else []:
        if not isinstance(issuer, Mapping):
            continue
        for k, label in (
            ("documentStore", "document store"),
            ("tokenRegistry", "token registry"),
            ("certificateStore", "certificate store"),
        ):
            if issuer.get(k):
                where.append(f"Ethereum {label} {issuer[k]}")
        proof = issuer.get("identityProof")
        if isinstance(proof, Mapping) and proof.get("type"):
            ident.append(f"{proof.get('type')} {proof.get('location') or proof.get('key') or ''}".strip())
        revocation = issuer.get("revocation")
        if isinstance(revocation, Mapping) and revocation.get("type") not in (None, "NONE"):
            where.append(f"{revocation.get('type')} revocation {revocation.get('location') or ''}".strip())
    if "proof" in doc and not where:
        where.append("DID-signed document (revocation per issuer DID)")
    status = t_plain(
        "status is held on {where_text}, which this platform cannot reach (no blockchain/network access); "
        "integrity decides",
        where_text=", ".join(where) or t_plain("an OpenAttestation issuance registry"),
    )
    identity = t_plain(
        "identity is proven by {proof_text}, which needs DNS/DID resolution this platform cannot do offline",
        proof_text=", ".join(ident) or t_plain("the issuer's OpenAttestation identity proof"),
    )
    return status, identity
