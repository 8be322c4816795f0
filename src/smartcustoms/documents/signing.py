"""Issuer identity: Ed25519 keys, a key registry with validity periods and rotation, signed checkpoints.

Pure code (no storage). A partner trusts a document's issuer through the published registry: a
signature counts only if its key was listed for the issuer at signing time and not revoked before.
Checkpoints use the C2SP signed-note / tlog-checkpoint text format so standard witness tooling can read them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from smartcustoms.platform.i18n import joined, t, t_plain

SIGNATURE_TYPE = "SmartCustomsEd25519Signature2026"
_DOC_CONTEXT = b"smartcustoms-document-v1\n"


class SignatureError(ValueError):
    """A signature or key is not acceptable; the message is the reason shown to the verifier."""


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Strict base64 (no stray characters), as signed notes and proofs require."""
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(t("not valid base64")) from exc


def generate_private_key() -> bytes:
    """32 raw bytes of a fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_key_of(private_key: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(private_key: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


@lru_cache(maxsize=4096)
def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification, memoised: every document of a batch carries the same signature over the
    batch root, and every receipt of a batch the same checkpoint, so a verifier checks each once."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_id(name: str, public_key: bytes) -> str:
    """Signed-note key hash: first 4 bytes of SHA-256(name || '\\n' || 0x01 || key), as 8 hex digits."""
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4].hex()


@dataclass(frozen=True)
class IssuerKey:
    """One key of an issuer, valid in [valid_from, valid_to); `revoked_at` ends it early (compromise)."""

    issuer: str
    key_id: str
    public_key: bytes
    valid_from: datetime
    valid_to: datetime | None = None
    revoked_at: datetime | None = None

    def problem_at(self, at: datetime) -> str | None:
        """Why this key cannot vouch for a signature made at `at`, or None if it can."""
        at = _aware(at)
        if at < _aware(self.valid_from):
            return t_plain(
                "key {key} of {issuer} is not valid before {at}",
                key=self.key_id,
                issuer=self.issuer,
                at=_aware(self.valid_from).isoformat(),
            )
        if self.revoked_at is not None and at >= _aware(self.revoked_at):
            return t_plain(
                "key {key} of {issuer} was revoked at {at}",
                key=self.key_id,
                issuer=self.issuer,
                at=_aware(self.revoked_at).isoformat(),
            )
        if self.valid_to is not None and at >= _aware(self.valid_to):
            return t_plain(
                "key {key} of {issuer} expired at {at}",
                key=self.key_id,
                issuer=self.issuer,
                at=_aware(self.valid_to).isoformat(),
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "keyId": self.key_id,
            "publicKey": b64(self.public_key),
            "validFrom": _aware(self.valid_from).isoformat(),
            "validTo": _aware(self.valid_to).isoformat() if self.valid_to else None,
            "revokedAt": _aware(self.revoked_at).isoformat() if self.revoked_at else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IssuerKey:
        def when(v: Any) -> datetime | None:
            return _aware(datetime.fromisoformat(v)) if v else None

        valid_from = when(raw["validFrom"])
        assert valid_from is not None
        return cls(
            issuer=str(raw["issuer"]),
            key_id=str(raw["keyId"]),
            public_key=unb64(raw["publicKey"]),
            valid_from=valid_from,
            valid_to=when(raw.get("validTo")),
            revoked_at=when(raw.get("revokedAt")),
        )


class KeyRegistry:
    """The published list of issuer keys; answers 'which key may sign for this issuer at this date'."""

    def __init__(self, keys: Iterable[IssuerKey] = ()) -> None:
        self._keys: dict[tuple[str, str], IssuerKey] = {}
        for k in keys:
            self.add(k)

    def add(self, key: IssuerKey) -> None:
        self._keys[(key.issuer, key.key_id)] = key

    def keys(self, issuer: str | None = None) -> list[IssuerKey]:
        return sorted(
            (k for k in self._keys.values() if issuer is None or k.issuer == issuer),
            key=lambda k: (k.issuer, _aware(k.valid_from)),
        )

    def rotate(self, issuer: str, new_public_key: bytes, at: datetime) -> IssuerKey:
        """Add a new key valid from `at` and close the issuer's open keys at `at` (old signatures stay valid)."""
        for k in self.keys(issuer):
            if k.valid_to is None or _aware(k.valid_to) > _aware(at):
                self.add(replace(k, valid_to=_aware(at)))
        new = IssuerKey(issuer, key_id(issuer, new_public_key), new_public_key, _aware(at))
        self.add(new)
        return new

    def revoke(self, issuer: str, kid: str, at: datetime) -> IssuerKey:
        key = self.lookup(issuer, kid)
        revoked = replace(key, revoked_at=_aware(at))
        self.add(revoked)
        return revoked

    def lookup(self, issuer: str, kid: str) -> IssuerKey:
        key = self._keys.get((issuer, kid))
        if key is None:
            raise SignatureError(t_plain("key {key} is not in the registry of issuer {issuer}", key=kid, issuer=issuer))
        return key

    def key_valid_at(self, issuer: str, kid: str, at: datetime) -> IssuerKey:
        key = self.lookup(issuer, kid)
        problem = key.problem_at(at)
        if problem:
            raise SignatureError(problem)
        return key

    def as_dict(self) -> dict[str, Any]:
        return {"keys": [k.as_dict() for k in self.keys()]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KeyRegistry:
        return cls(IssuerKey.from_dict(k) for k in raw.get("keys", []))


# --- document signatures ----------------------------------------------------------------------


def document_message(merkle_root: str, created: str) -> bytes:
    """What an issuer signs for a wrapped batch: its Merkle root and the signing time."""
    return _DOC_CONTEXT + merkle_root.lower().encode() + b"\n" + created.encode()


def document_proof(issuer: str, private_key: bytes, merkle_root: str, created: datetime) -> dict[str, str]:
    """The `proof` entry added to a wrapped document (outside `data`, so it is not part of the hashes)."""
    created_s = _aware(created).isoformat()
    kid = key_id(issuer, public_key_of(private_key))
    return {
        "type": SIGNATURE_TYPE,
        "created": created_s,
        "proofPurpose": "assertionMethod",
        "verificationMethod": f"{issuer}#{kid}",
        "signature": b64(sign(private_key, document_message(merkle_root, created_s))),
    }


def check_document_proof(proof: Mapping[str, Any], merkle_root: str, registry: KeyRegistry) -> IssuerKey:
    """Return the registry key that signed `merkle_root`, or raise SignatureError with the reason."""
    if proof.get("type") != SIGNATURE_TYPE:
        raise SignatureError(t_plain("unsupported proof type {type}", type=repr(proof.get("type"))))
    method = str(proof.get("verificationMethod", ""))
    issuer, sep, kid = method.rpartition("#")
    if not sep or not issuer or not kid:
        raise SignatureError(t_plain("verificationMethod {method} is not '<issuer>#<key id>'", method=repr(method)))
    try:
        created = _aware(datetime.fromisoformat(str(proof.get("created"))))
    except ValueError as exc:
        raise SignatureError(
            t("malformed proof: created {value} is not an ISO 8601 time", value=repr(proof.get("created")))
        ) from exc
    try:
        signature = unb64(str(proof.get("signature")))
    except ValueError as exc:
        raise SignatureError(t("malformed proof: {error}", error=exc)) from exc
    key = registry.key_valid_at(issuer, kid, created)
    if not verify_signature(key.public_key, document_message(merkle_root, str(proof["created"])), signature):
        raise SignatureError(t_plain("signature does not verify with key {key} of {issuer}", key=kid, issuer=issuer))
    return key


# --- checkpoints (C2SP tlog-checkpoint + signed-note) ------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement: 'my first `size` entries hash to `root`', at `timestamp`."""

    origin: str
    size: int
    root: bytes
    timestamp: datetime

    def body(self) -> str:
        ms = int(_aware(self.timestamp).timestamp() * 1000)
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\ntimestamp {ms}\n"


def sign_checkpoint(cp: Checkpoint, signer: str, private_key: bytes) -> str:
    """The signed note: body, blank line, one '— name base64(keyhash || signature)' line."""
    body = cp.body()
    kid = bytes.fromhex(key_id(signer, public_key_of(private_key)))
    sig = sign(private_key, body.encode())
    return f"{body}\n\u2014 {signer} {b64(kid + sig)}\n"


@lru_cache(maxsize=1024)
def parse_checkpoint(note: str) -> tuple[Checkpoint, tuple[tuple[str, str, bytes], ...]]:
    """Split a signed note into its checkpoint and (signer, key id, signature) lines; no verification.
    Memoised: all receipts of a batch carry the same note."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise SignatureError(t("checkpoint note has no signature block"))
    lines = body.split("\n")
    if len(lines) < 3:
        raise SignatureError(t("malformed checkpoint body: it needs origin, size and root lines"))
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    try:
        size = int(size_s)
    except ValueError as exc:
        raise SignatureError(t("malformed checkpoint body: size {value} is not a number", value=repr(size_s))) from exc
    try:
        root = unb64(root_s)
    except ValueError as exc:
        raise SignatureError(t("malformed checkpoint body: root hash is not valid base64")) from exc
    ts = next((line for line in lines[3:] if line.startswith("timestamp ")), None)
    if ts is None:
        raise SignatureError(t("malformed checkpoint body: no timestamp line"))
    try:
        timestamp = datetime.fromtimestamp(int(ts.split(" ", 1)[1]) / 1000, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError(
            t("malformed checkpoint body: timestamp {value} is not milliseconds since 1970", value=repr(ts[10:]))
        ) from exc
    if size < 0 or len(root) != 32:
        raise SignatureError(t("checkpoint size must be >= 0 and root 32 bytes"))
    out: list[tuple[str, str, bytes]] = []
    for line in sigs.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            raise SignatureError(t("malformed signature line {line}", line=repr(line)))
        try:
            raw = unb64(parts[2])
        except ValueError as exc:
            raise SignatureError(t("malformed signature line {line}: not valid base64", line=repr(line))) from exc
        if len(raw) != 68:
            raise SignatureError(t("a signature line holds a 4-byte key id and a 64-byte Ed25519 signature"))
        out.append((parts[1], raw[:4].hex(), raw[4:]))
    return Checkpoint(origin, size, root, timestamp), tuple(out)


def verify_checkpoint(note: str, registry: KeyRegistry) -> Checkpoint:
    """A checkpoint whose note carries a valid signature by a key the registry lists for its timestamp."""
    cp, sigs = parse_checkpoint(note)
    body = note.partition("\n\n")[0] + "\n"
    reasons = []
    for signer, kid, signature in sigs:
        try:
            key = registry.key_valid_at(signer, kid, cp.timestamp)
        except SignatureError as exc:
            reasons.append(exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc))
            continue
        if verify_signature(key.public_key, body.encode(), signature):
            return cp
        reasons.append(t_plain("signature by {signer} key {key} does not verify", signer=signer, key=kid))
    if not reasons:
        raise SignatureError(t("checkpoint has no signatures"))
    if len(reasons) == 1:
        raise SignatureError(reasons[0])
    raise SignatureError(t("{count} signatures refused: {reasons}", count=len(reasons), reasons=joined(reasons)))
