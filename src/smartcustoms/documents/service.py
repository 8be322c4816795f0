"""Use cases of the documents slice: issuers and keys, issuing, revoking, redacting, verifying, log proofs.

Each state-changing use case is one transaction: an issuance writes the documents, their log
entries and the new signed checkpoint together, or nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from smartcustoms.documents import keystore, merkle, model, signing, store, title
from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, DomainError, NotFound, Problem
from smartcustoms.platform.i18n import joined, t, t_plain

ISSUER_KINDS = ("customs", "chamber_of_commerce", "carrier", "trader")
LOG_BLOCK = "smartcustoms"
"""Top-level key of a wrapped document carrying our log receipt (outside `data`, so not hashed)."""


class DocumentError(DomainError):
    """A document, key or proof the documents slice refuses, with every reason."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# --- issuers and keys -------------------------------------------------------------------------


def register_issuer(
    who: Principal,
    issuer_id: str,
    name: str,
    kind: str,
    *,
    origin: str | None = None,
    public_key: bytes | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Create an issuer with its first key (platform-held unless the issuer brings its public key)."""
    problems = []
    if not issuer_id or len(issuer_id) > 64 or not issuer_id.replace("-", "").replace(".", "").isalnum():
        problems.append(Problem("invalid_issuer_id", ("id",), t("Issuer id must be 1-64 letters, digits, '-' or '.'")))
    if kind not in ISSUER_KINDS:
        problems.append(
            Problem(
                "invalid_kind", ("kind",), t("Issuer kind must be one of {allowed}", allowed=", ".join(ISSUER_KINDS))
            )
        )
    if not name:
        problems.append(Problem("required", ("name",), t("Issuer name is required")))
    if problems:
        raise DocumentError(problems)
    with unit_of_work(url) as session:
        if session.get(store.IssuerRow, issuer_id) is not None:
            raise Conflict(
                Problem("duplicate_issuer", ("id",), t("Issuer {issuer} already exists", issuer=repr(issuer_id)))
            )
        now = _now()
        session.add(
            store.IssuerRow(
                id=issuer_id, name=name, kind=kind, origin=origin or f"smartcustoms/{issuer_id}", created_at=now
            )
        )
        session.flush()
        key = _add_key(session, issuer_id, now, public_key)
        audit.record(session, who, "register_issuer", "documents_issuer", issuer_id, detail={"key_id": key.key_id})
        return {"id": issuer_id, "name": name, "kind": kind, "keyId": key.key_id}


def _add_key(session: Session, issuer_id: str, at: datetime, public_key: bytes | None) -> store.KeyRow:
    private = None
    if public_key is None:
        private = signing.generate_private_key()
        public_key = signing.public_key_of(private)
    elif len(public_key) != 32:
        raise DocumentError(Problem("invalid_public_key", ("publicKey",), t("An Ed25519 public key has 32 bytes")))
    for old in session.scalars(select(store.KeyRow).where(store.KeyRow.issuer_id == issuer_id)):
        if old.valid_to is None or _aware(old.valid_to) > at:
            old.valid_to = at
    kid = signing.key_id(issuer_id, public_key)
    row = store.KeyRow(
        issuer_id=issuer_id,
        key_id=kid,
        public_key=public_key,
        private_key=keystore.seal(private, f"{issuer_id}#{kid}") if private else None,
        valid_from=at,
    )
    session.add(row)
    session.flush()
    return row


def rotate_key(who: Principal, issuer_id: str, *, public_key: bytes | None = None, url: str | None = None) -> str:
    """New key valid from now; the previous keys close now (documents they signed stay valid)."""
    with unit_of_work(url) as session:
        _issuer(session, issuer_id)
        key = _add_key(session, issuer_id, _now(), public_key)
        audit.record(session, who, "rotate_key", "documents_key", key.key_id, detail={"issuer": issuer_id})
        return key.key_id


def revoke_key(
    who: Principal, issuer_id: str, key_id: str, *, at: datetime | None = None, url: str | None = None
) -> None:
    """Mark a key compromised from `at`: signatures dated from then on are refused."""
    with unit_of_work(url) as session:
        row = session.scalar(
            select(store.KeyRow).where(store.KeyRow.issuer_id == issuer_id, store.KeyRow.key_id == key_id)
        )
        if row is None:
            raise NotFound(
                Problem(
                    "unknown_key",
                    ("keyId",),
                    t("Issuer {issuer} has no key {key}", issuer=repr(issuer_id), key=repr(key_id)),
                )
            )
        row.revoked_at = _aware(at or _now())
        audit.record(session, who, "revoke_key", "documents_key", key_id, detail={"issuer": issuer_id})


def _issuer(session: Session, issuer_id: str) -> store.IssuerRow:
    row = session.get(store.IssuerRow, issuer_id)
    if row is None:
        raise NotFound(Problem("unknown_issuer", ("issuer",), t("No issuer {issuer}", issuer=repr(issuer_id))))
    return row


def registry_from_session(session: Session, issuer_id: str | None = None) -> signing.KeyRegistry:
    q = select(store.KeyRow)
    if issuer_id:
        q = q.where(store.KeyRow.issuer_id.in_((issuer_id, LOG_OPERATOR)))
    return signing.KeyRegistry(
        signing.IssuerKey(
            r.issuer_id,
            r.key_id,
            bytes(r.public_key),
            _aware(r.valid_from),
            _aware(r.valid_to) if r.valid_to else None,
            _aware(r.revoked_at) if r.revoked_at else None,
        )
        for r in session.scalars(q)
    )


def key_registry(issuer_id: str | None = None, *, url: str | None = None) -> dict[str, Any]:
    """The published key registry (public keys and validity periods only)."""
    with unit_of_work(url) as session:
        return registry_from_session(session, issuer_id).as_dict()


def _signing_key(session: Session, issuer_id: str, at: datetime) -> store.KeyRow:
    for row in session.scalars(
        select(store.KeyRow)
        .where(store.KeyRow.issuer_id == issuer_id, store.KeyRow.private_key.is_not(None))
        .order_by(store.KeyRow.valid_from.desc())
    ):
        key = signing.IssuerKey(
            issuer_id,
            row.key_id,
            bytes(row.public_key),
            _aware(row.valid_from),
            _aware(row.valid_to) if row.valid_to else None,
            _aware(row.revoked_at) if row.revoked_at else None,
        )
        if key.problem_at(at) is None:
            return row
    raise DocumentError(
        Problem(
            "no_signing_key",
            ("issuer",),
            t("Issuer {issuer} has no valid platform-held key to sign with", issuer=repr(issuer_id)),
        )
    )


def _private(key: store.KeyRow) -> bytes:
    assert key.private_key is not None
    return keystore.unseal(bytes(key.private_key), f"{key.issuer_id}#{key.key_id}")


LOG_OPERATOR = "smartcustoms-log"
"""Signs checkpoints of issuers whose keys are all issuer-held (as a CT log operator signs tree heads)."""


def _log_signer(session: Session, issuer: store.IssuerRow, at: datetime) -> tuple[str, bytes]:
    """The issuer's own platform-held key if it has one, else the platform log operator's key."""
    try:
        return issuer.id, _private(_signing_key(session, issuer.id, at))
    except DocumentError:
        pass
    if session.get(store.IssuerRow, LOG_OPERATOR) is None:
        session.add(
            store.IssuerRow(
                id=LOG_OPERATOR,
                name="Smart Customs transparency log",
                kind="log_operator",
                origin="smartcustoms/log",
                created_at=at,
            )
        )
        session.flush()
        _add_key(session, LOG_OPERATOR, at.replace(microsecond=0), None)  # checkpoints carry ms timestamps
    return LOG_OPERATOR, _private(_signing_key(session, LOG_OPERATOR, at))


# --- the log ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appended:
    first_index: int
    size: int
    root: bytes
    checkpoint: str
    tree: merkle.MerkleTree


def _append(session: Session, issuer: store.IssuerRow, entries: Sequence[tuple[str, str, str]]) -> Appended:
    """Append (kind, target hash, payload) entries and a new signed checkpoint, inside the caller's transaction."""
    _lock_issuer(session, issuer.id)
    now = _now()
    signer, private = _log_signer(session, issuer, now)
    tree = store.tree_for(session, issuer.id)
    first = tree.size
    rows = []
    for i, (kind, target, payload) in enumerate(entries):
        h = merkle.leaf_hash(payload.encode("utf-8"))
        tree.append_hash(h)
        rows.append(
            {
                "issuer_id": issuer.id,
                "idx": first + i,
                "kind": kind,
                "target_hash": target,
                "payload": payload,
                "leaf_hash": h,
                "created_at": now,
            }
        )
    session.execute(insert(store.LOG_TABLE), rows)
    cp = signing.Checkpoint(issuer.origin, tree.size, tree.root(), now)
    note = signing.sign_checkpoint(cp, signer, private)
    session.add(store.CheckpointRow(issuer_id=issuer.id, size=cp.size, root_hash=cp.root, timestamp=now, note=note))
    session.flush()
    return Appended(first, tree.size, cp.root, note, tree)


def _payload(kind: str, issuer: str, target: str, at: datetime, **extra: Any) -> str:
    body = {"kind": kind, "issuer": issuer, "targetHash": target, "at": at.isoformat(), **extra}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def _validate_batch(doc_type: str, documents: Sequence[Any]) -> None:
    if doc_type not in model.DOC_TYPES:
        raise DocumentError(model.validate_document(doc_type, {}))
    problems: list[Problem] = []
    if not documents:
        problems.append(Problem("required", ("documents",), t("At least one document is required")))
    for i, doc in enumerate(documents):
        problems.extend(
            Problem(p.code, ("documents", i, *p.path), p.message) for p in model.validate_document(doc_type, doc)
        )
    if problems:
        raise DocumentError(problems)


def _wrap_batch(issuer: store.IssuerRow, doc_type: str, documents: Sequence[Any]) -> list[dict[str, Any]]:
    identity = {
        "id": issuer.id,
        "name": issuer.name,
        "identityProof": {"type": "SMARTCUSTOMS-KEY-REGISTRY", "location": issuer.origin},
    }
    raw = [{**dict(doc), "documentType": doc_type, "issuers": [identity]} for doc in documents]
    return model.wrap_documents(raw, schema=f"smartcustoms/{doc_type}/1.0")


FORMATS = ("oa-v2", "oa-v3")
IDENTITY_TYPE = "SMARTCUSTOMS-KEY-REGISTRY"
STATUS_METHOD = "SMARTCUSTOMS-LOG"


def _wrap_batch_v3(
    issuer: store.IssuerRow, doc_type: str, documents: Sequence[Any], at: datetime
) -> list[dict[str, Any]]:
    """OpenAttestation v3 credentials: the content under `credentialSubject`; issuer identity and the
    status method (our log) in `openAttestationMetadata`, all salted, so none of it can be swapped."""
    creds = [
        {
            "@context": [model.V3_CREDENTIALS_CONTEXT, model.OA_V3_CONTEXT],
            "type": ["VerifiableCredential", "OpenAttestationCredential"],
            "issuanceDate": at.isoformat(),
            "openAttestationMetadata": {
                "proof": {"type": "OpenAttestationProofMethod", "method": STATUS_METHOD, "value": issuer.origin},
                "identityProof": {"type": IDENTITY_TYPE, "identifier": issuer.id},
            },
            "credentialSubject": {**dict(doc), "documentType": doc_type},
            "issuer": {
                "id": f"urn:smartcustoms:issuer:{issuer.id}",
                "name": issuer.name,
                "type": "OpenAttestationIssuer",
            },
        }
        for doc in documents
    ]
    return model.wrap_documents_v3(creds)


def issue_documents(
    who: Principal,
    issuer_id: str,
    doc_type: str,
    documents: Sequence[Any],
    *,
    url: str | None = None,
    fmt: str = "oa-v2",
) -> list[dict[str, Any]]:
    """Wrap, sign and log a batch of raw documents of one type (OpenAttestation v2 by default, or v3);
    returns the wrapped documents with the issuer's signature and their log receipts."""
    _validate_batch(doc_type, documents)
    if fmt not in FORMATS:
        raise DocumentError(
            Problem("unknown_format", ("format",), t("Format must be one of {allowed}", allowed=", ".join(FORMATS)))
        )
    with unit_of_work(url) as session:
        issuer = _issuer(session, issuer_id)
        now = _now()
        wrapped = (
            _wrap_batch(issuer, doc_type, documents)
            if fmt == "oa-v2"
            else _wrap_batch_v3(issuer, doc_type, documents, now)
        )
        root = merkle_root_of(wrapped[0]) or ""
        key = _signing_key(session, issuer.id, now)
        proof = signing.document_proof(issuer.id, _private(key), root, now)
        return _log_and_store(session, who, issuer, doc_type, wrapped, proof, now)


SIGNING_WINDOW = timedelta(minutes=15)
"""How old (or how far ahead) an issuer's offline signature over a prepared batch may be at finalisation."""


def prepare_issue(
    who: Principal, issuer_id: str, doc_type: str, documents: Sequence[Any], *, fmt: str = "oa-v2"
) -> dict[str, Any]:
    """For issuer-held keys, step 1: wrap the batch and return what the issuer must sign offline."""
    _validate_batch(doc_type, documents)
    if fmt not in FORMATS:
        raise DocumentError(
            Problem("unknown_format", ("format",), t("Format must be one of {allowed}", allowed=", ".join(FORMATS)))
        )
    with unit_of_work() as session:
        issuer = _issuer(session, issuer_id)
    now = _now()
    wrapped = (
        _wrap_batch(issuer, doc_type, documents) if fmt == "oa-v2" else _wrap_batch_v3(issuer, doc_type, documents, now)
    )
    root = merkle_root_of(wrapped[0]) or ""
    created = now.isoformat()
    return {
        "issuer": issuer_id,
        "type": doc_type,
        "merkleRoot": root,
        "created": created,
        "message": signing.b64(signing.document_message(root, created)),
        "documents": wrapped,
    }


def finalize_issue(
    who: Principal, issuer_id: str, doc_type: str, documents: Sequence[Any], proof: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Step 2: check the prepared batch is intact and signed by a key the issuer's registry lists, then log it."""
    problems: list[Problem] = []
    roots = set()
    for i, doc in enumerate(documents):
        check = model.check_integrity(doc)
        if check.status != "valid":
            problems.append(Problem("integrity_invalid", ("documents", i), check.reason))
            continue
        roots.add(merkle_root_of(doc))
        data = document_content(doc)
        if data.get("documentType") != doc_type or _issuer_claimed(doc) != issuer_id:
            problems.append(
                Problem(
                    "wrong_batch",
                    ("documents", i),
                    t("not a prepared {doc_type} of issuer {issuer}", doc_type=doc_type, issuer=issuer_id),
                )
            )
            continue
        raw = {k: v for k, v in data.items() if k not in ("documentType", "issuers")}
        problems.extend(
            Problem(p.code, ("documents", i, *p.path), p.message) for p in model.validate_document(doc_type, raw)
        )
    if not documents:
        problems.append(Problem("required", ("documents",), t("At least one document is required")))
    if len(roots) > 1:
        problems.append(Problem("mixed_batch", ("documents",), t("Documents of one batch share one Merkle root")))
    if problems:
        raise DocumentError(problems)
    root = str(roots.pop())
    wrapped = [_unsigned(doc) for doc in documents]
    with unit_of_work() as session:
        issuer = _issuer(session, issuer_id)
        try:
            key = signing.check_document_proof(proof, root, registry_from_session(session, issuer_id))
        except signing.SignatureError as exc:
            raise DocumentError(Problem("signature_invalid", ("proof",), str(exc))) from exc
        if key.issuer != issuer_id:
            raise DocumentError(
                Problem(
                    "signature_invalid",
                    ("proof",),
                    t("signed by {signer}, not {issuer}", signer=key.issuer, issuer=issuer_id),
                )
            )
        now = _now()
        created = _aware(datetime.fromisoformat(str(proof["created"])))
        if abs(now - created) > SIGNING_WINDOW:
            raise DocumentError(
                Problem("stale_signature", ("proof", "created"), t("The batch must be signed within 15 minutes"))
            )
        targets = [target_hash_of(w) for w in wrapped]
        if session.scalar(select(store.DocumentRow.id).where(store.DocumentRow.target_hash.in_(targets)).limit(1)):
            raise Conflict(
                Problem("duplicate_document", ("documents",), t("A document of this batch was already issued"))
            )
        return _log_and_store(session, who, issuer, doc_type, wrapped, proof, now)


_V3_SIGNED = ("key", "signature", "created", LOG_BLOCK)


def _unsigned(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A prepared document without any signature or receipt someone added (v2: `proof`, v3: inside `proof`)."""
    out = copy.deepcopy(dict(doc))
    if model.detect_format(out) == "oa-v3":
        out["proof"] = {k: v for k, v in out["proof"].items() if k not in _V3_SIGNED}
        return out
    return {k: v for k, v in out.items() if k not in ("proof", LOG_BLOCK)}


def _log_and_store(
    session: Session,
    who: Principal,
    issuer: store.IssuerRow,
    doc_type: str,
    wrapped: list[dict[str, Any]],
    proof: Mapping[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """Append a signed batch to the issuer's log, attach proof and receipts, keep the documents."""
    root = merkle_root_of(wrapped[0]) or ""
    targets = [target_hash_of(w) for w in wrapped]
    # target hashes cover fresh random salts, so they are unique; the table's unique index guards it anyway
    leaves = [_payload("issue", issuer.id, th, now, merkleRoot=root, docType=doc_type) for th in targets]
    appended = _append(session, issuer, [("issue", th, leaf) for th, leaf in zip(targets, leaves, strict=True)])
    for i, w in enumerate(wrapped):
        v3 = model.detect_format(w) == "oa-v3"
        if v3:  # OpenAttestation v3 keeps the issuer's signature in `proof` (key, signature), as DID signing does
            w["proof"].update(key=proof["verificationMethod"], signature=proof["signature"], created=proof["created"])
        else:
            w["proof"] = [dict(proof)]
        index = appended.first_index + i
        (w["proof"] if v3 else w)[LOG_BLOCK] = {
            "issuer": issuer.id,
            "logIndex": index,
            "treeSize": appended.size,
            "leaf": leaves[i],
            "inclusionProof": [signing.b64(h) for h in appended.tree.inclusion_proof(index, appended.size)],
            "checkpoint": appended.checkpoint,
        }
    session.execute(
        insert(store.DOCUMENT_TABLE),
        [
            {
                "issuer_id": issuer.id,
                "doc_type": doc_type,
                "target_hash": targets[i],
                "merkle_root": root,
                "log_index": appended.first_index + i,
                "wrapped": w,
                "issued_at": now,
                "issued_by": who.username,
            }
            for i, w in enumerate(wrapped)
        ],
    )
    audit.record(
        session,
        who,
        "issue_documents",
        "documents_batch",
        root,
        detail={"issuer": issuer.id, "type": doc_type, "count": len(wrapped), "first_index": appended.first_index},
    )
    return wrapped


def revoke_document(who: Principal, target_hash: str, reason: str, *, url: str | None = None) -> dict[str, Any]:
    """Append a revocation entry to the issuer's log (the document itself is never changed)."""
    with unit_of_work(url) as session:
        doc = session.scalar(select(store.DocumentRow).where(store.DocumentRow.target_hash == target_hash.lower()))
        if doc is None:
            raise NotFound(
                Problem(
                    "unknown_document", ("targetHash",), t("No issued document {target_hash}", target_hash=target_hash)
                )
            )
        if _revocation(session, doc.issuer_id, doc.target_hash) is not None:
            raise Conflict(
                Problem(
                    "already_revoked",
                    ("targetHash",),
                    t("Document {target_hash} is already revoked", target_hash=target_hash),
                )
            )
        issuer = _issuer(session, doc.issuer_id)
        now = _now()
        appended = _append(
            session,
            issuer,
            [("revoke", doc.target_hash, _payload("revoke", issuer.id, doc.target_hash, now, reason=reason))],
        )
        audit.record(session, who, "revoke_document", "documents_document", doc.target_hash, detail={"reason": reason})
        return {"targetHash": doc.target_hash, "logIndex": appended.first_index, "treeSize": appended.size}


def _revocation(session: Session, issuer_id: str, target: str) -> store.LogEntryRow | None:
    return session.scalar(
        select(store.LogEntryRow).where(
            store.LogEntryRow.issuer_id == issuer_id,
            store.LogEntryRow.target_hash == target,
            store.LogEntryRow.kind == "revoke",
        )
    )


def redact_document(wrapped: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Hide fields from a wrapped document (pure; any holder may do it, the signature stays valid)."""
    if model.check_integrity(wrapped).status != "valid":
        raise DocumentError(Problem("invalid_document", (), t("Only an intact wrapped document can be redacted")))
    try:
        if model.detect_format(wrapped) == "oa-v3":
            return model.redact_v3(wrapped, paths)
        return model.redact(wrapped, paths)
    except KeyError as exc:
        raise DocumentError(
            Problem("unknown_field", ("fields",), t("No field {field} in the document", field=repr(exc.args[0])))
        ) from exc
    except (ValueError, IndexError, TypeError) as exc:
        raise DocumentError(
            Problem("invalid_field", ("fields",), t("These fields cannot be redacted: {error}", error=exc))
        ) from exc


def log_proof(
    issuer_id: str,
    *,
    target_hash: str | None = None,
    index: int | None = None,
    size: int | None = None,
    from_size: int | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Latest (or given-size) checkpoint with an inclusion proof for an entry and/or a consistency proof."""
    with unit_of_work(url) as session:
        _issuer(session, issuer_id)
        cp = (
            store.checkpoint_at(session, issuer_id, size)
            if size is not None
            else store.latest_checkpoint(session, issuer_id)
        )
        if cp is None:
            missing = (
                t("Issuer {issuer} has no checkpoint of size {size}", issuer=repr(issuer_id), size=size)
                if size is not None
                else t("Issuer {issuer} has no checkpoint yet", issuer=repr(issuer_id))
            )
            raise NotFound(Problem("no_checkpoint", ("size",), missing))
        tree = store.tree_for(session, issuer_id)
        out: dict[str, Any] = {
            "issuer": issuer_id,
            "treeSize": cp.size,
            "rootHash": signing.b64(bytes(cp.root_hash)),
            "checkpoint": cp.note,
        }
        if target_hash is not None:
            entry = session.scalar(
                select(store.LogEntryRow).where(
                    store.LogEntryRow.issuer_id == issuer_id,
                    store.LogEntryRow.target_hash == target_hash.lower(),
                    store.LogEntryRow.kind == "issue",
                )
            )
            if entry is None:
                raise NotFound(
                    Problem(
                        "unknown_entry", ("targetHash",), t("No log entry for {target_hash}", target_hash=target_hash)
                    )
                )
            index = int(entry.idx)
        if index is not None:
            if not 0 <= index < cp.size:
                raise DocumentError(
                    Problem(
                        "wrong_tree_size",
                        ("index",),
                        t("Entry {index} is not in the tree of size {size}", index=index, size=cp.size),
                    )
                )
            out["leafIndex"] = index
            out["leafHash"] = signing.b64(tree.leaf(index))
            out["inclusionProof"] = [signing.b64(h) for h in tree.inclusion_proof(index, cp.size)]
        if from_size is not None:
            if not 0 < from_size <= cp.size:
                raise DocumentError(
                    Problem(
                        "wrong_tree_size",
                        ("from",),
                        t("No consistency proof from size {start} to {size}", start=from_size, size=cp.size),
                    )
                )
            out["fromSize"] = from_size
            out["fromRootHash"] = signing.b64(tree.root(from_size))
            out["consistencyProof"] = [signing.b64(h) for h in tree.consistency_proof(from_size, cp.size)]
        return out


# --- verification -----------------------------------------------------------------------------


def _v3_proof(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    proof = doc.get("proof")
    return proof if isinstance(proof, Mapping) else {}


def _v3_identity(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = doc.get("openAttestationMetadata")
    ident = meta.get("identityProof") if isinstance(meta, Mapping) else None
    return ident if isinstance(ident, Mapping) else {}


def target_hash_of(doc: Mapping[str, Any]) -> str:
    """The document's target hash (v2 `signature`, v3 `proof`), lower case; '' if it has none."""
    block = _v3_proof(doc) if model.detect_format(doc) == "oa-v3" else doc.get("signature")
    value = block.get("targetHash") if isinstance(block, Mapping) else None
    return value.lower() if isinstance(value, str) else ""


def merkle_root_of(doc: Mapping[str, Any]) -> str | None:
    block = _v3_proof(doc) if model.detect_format(doc) == "oa-v3" else doc.get("signature")
    value = block.get("merkleRoot") if isinstance(block, Mapping) else None
    return value if isinstance(value, str) else None


def document_content(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the document says, without salts (v2 `data`) or wrapping (v3 `credentialSubject`)."""
    if model.detect_format(doc) == "oa-v3":
        subject = doc.get("credentialSubject")
        return dict(subject) if isinstance(subject, Mapping) else {}
    data = doc.get("data")
    return dict(model.unsalt(data)) if isinstance(data, Mapping) else {}


def document_number(doc: Mapping[str, Any]) -> str | None:
    """The certificate, bill of lading or invoice number (what other documents and declarations cite)."""
    content = document_content(doc)
    for key in ("certificateNumber", "blNumber", "invoiceNumber"):
        if content.get(key) not in (None, ""):
            return str(content[key])[:64]
    return None


def _signature_proofs(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if model.detect_format(doc) == "oa-v3":
        p = _v3_proof(doc)
        if not p.get("key") or not p.get("signature"):
            return []
        return [
            {
                "type": signing.SIGNATURE_TYPE,
                "created": p.get("created"),
                "verificationMethod": p.get("key"),
                "signature": p.get("signature"),
            }
        ]
    return [p for p in doc.get("proof") or [] if isinstance(p, Mapping)]


def _receipt_block(doc: Mapping[str, Any]) -> Any:
    return (_v3_proof(doc) if model.detect_format(doc) == "oa-v3" else doc).get(LOG_BLOCK)


def _is_ours(doc: Mapping[str, Any]) -> bool:
    if model.detect_format(doc) == "oa-v3":
        return _v3_identity(doc).get("type") == IDENTITY_TYPE or isinstance(_receipt_block(doc), Mapping)
    proofs = doc.get("proof")
    return isinstance(doc.get(LOG_BLOCK), Mapping) or (
        isinstance(proofs, list)
        and any(isinstance(p, Mapping) and p.get("type") == signing.SIGNATURE_TYPE for p in proofs)
    )


def verdict(integrity: model.Check, status: model.Check, identity: model.Check, fmt: str) -> dict[str, Any]:
    ok = integrity.status == "valid" and "invalid" not in (status.status, identity.status)
    return {
        "valid": ok,
        "format": fmt,
        "checks": {"integrity": integrity.as_dict(), "status": status.as_dict(), "identity": identity.as_dict()},
    }


def verify_document(
    doc: Any, *, registry: signing.KeyRegistry | None = None, url: str | None = None, use_db: bool = False
) -> dict[str, Any]:
    """The three checks with reasons. Foreign OpenAttestation documents need no database; our own use the
    key registry (from the database or a given registry file) and the issuer's log when `use_db`."""
    fmt = model.detect_format(doc)
    integrity = model.check_integrity(doc)
    if fmt == "unknown":
        why = t_plain("not a wrapped document, cannot be checked")
        return verdict(integrity, model.Check("unknown", why), model.Check("unknown", why), fmt)
    if not _is_ours(doc):
        status_reason, identity_reason = model.foreign_status_reason(doc)
        return verdict(integrity, model.Check("unknown", status_reason), model.Check("unknown", identity_reason), fmt)
    db_error: str | None = None
    if use_db:
        try:
            with unit_of_work(url) as session:
                claimed = _issuer_claimed(doc)
                if claimed is not None and session.get(store.IssuerRow, claimed) is not None:
                    reg = registry or registry_from_session(session, claimed)
                    identity = _check_identity(doc, reg)
                    status = _status_from_log(session, doc, reg)
                    return verdict(integrity, status, identity, _ours(fmt))
                db_error = t_plain("issuer {issuer} keeps its log on another node", issuer=claimed)
        except (SQLAlchemyError, OSError) as exc:
            db_error = t_plain("the issuer's log could not be read ({error})", error=type(exc).__name__)
    identity = (
        _check_identity(doc, registry)
        if registry is not None
        else model.Check(
            "unknown",
            t_plain("no key registry available: pass the issuer's published registry or use the issuer's node"),
        )
    )
    return verdict(integrity, _status_from_receipt(doc, registry, db_error), identity, _ours(fmt))


def _ours(fmt: str) -> str:
    """Verdict format of a document issued by a Smart Customs node ("smartcustoms" for v2, as before)."""
    return "smartcustoms" if fmt == "oa-v2" else "smartcustoms-oa-v3"


def _issuer_claimed(doc: Mapping[str, Any]) -> str | None:
    if model.detect_format(doc) == "oa-v3":
        ident = _v3_identity(doc)
        value = ident.get("identifier") if ident.get("type") == IDENTITY_TYPE else None
        return str(value) if value is not None else None
    data = doc.get("data")
    issuers = data.get("issuers") if isinstance(data, Mapping) else None
    if isinstance(issuers, list) and issuers and isinstance(issuers[0], Mapping):
        value = model.unsalt(issuers[0].get("id"))
        return str(value) if value is not None else None
    return None


def _check_identity(doc: Mapping[str, Any], registry: signing.KeyRegistry) -> model.Check:
    proofs = _signature_proofs(doc)
    root = merkle_root_of(doc)
    if not proofs or not isinstance(root, str):
        return model.Check("invalid", t_plain("the document carries no issuer signature"))
    claimed = _issuer_claimed(doc)
    reasons = []
    for proof in proofs:
        try:
            key = signing.check_document_proof(proof, root, registry)
        except signing.SignatureError as exc:
            reasons.append(str(exc))
            continue
        if claimed is not None and key.issuer != claimed:
            reasons.append(
                t_plain("signed by {signer} but the document names issuer {issuer}", signer=key.issuer, issuer=claimed)
            )
            continue
        return model.Check(
            "valid",
            t_plain(
                "signed by {signer} with key {key}, listed in the registry for {created}",
                signer=key.issuer,
                key=key.key_id,
                created=proof.get("created"),
            ),
            {"issuer": key.issuer, "keyId": key.key_id},
        )
    return model.Check("invalid", joined(reasons))


def _receipt(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], signing.Checkpoint, list[bytes]] | str:
    block = _receipt_block(doc)
    if not isinstance(block, Mapping):
        return t_plain("the document carries no log receipt")
    missing = [k for k in ("checkpoint", "inclusionProof", "logIndex", "leaf") if k not in block]
    if missing:
        return t_plain("malformed log receipt: {fields} missing", fields=", ".join(missing))
    try:
        cp, _ = signing.parse_checkpoint(str(block["checkpoint"]))
    except signing.SignatureError as exc:
        return t_plain("malformed log receipt: {error}", error=exc)
    hashes = block["inclusionProof"]
    try:
        if not isinstance(hashes, list):
            raise TypeError
        proof = [signing.unb64(str(h)) for h in hashes]
    except (TypeError, ValueError):
        return t_plain("malformed log receipt: inclusionProof is not a list of base64 hashes")
    try:
        int(block["logIndex"])
    except (TypeError, ValueError):
        return t_plain("malformed log receipt: logIndex {value} is not a number", value=repr(block["logIndex"]))
    return block, cp, proof


def _status_from_receipt(
    doc: Mapping[str, Any], registry: signing.KeyRegistry | None, db_error: str | None
) -> model.Check:
    got = _receipt(doc)
    if isinstance(got, str):
        return model.Check("unknown", got)
    block, cp, proof = got
    problem = _receipt_problem(doc, block, cp, proof)
    if problem:
        return model.Check("invalid", problem)
    if registry is not None:
        try:
            signing.verify_checkpoint(str(block["checkpoint"]), registry)
        except signing.SignatureError as exc:
            return model.Check("invalid", t_plain("log checkpoint signature: {error}", error=exc))
    tail = db_error or t_plain("revocation can only be checked against the issuer's current log")
    return model.Check(
        "unknown",
        t_plain(
            "included as entry {index} of the issuer's log at size {size} (inclusion proof verified); {reason}",
            index=block["logIndex"],
            size=cp.size,
            reason=tail,
        ),
    )


def _receipt_problem(
    doc: Mapping[str, Any], block: Mapping[str, Any], cp: signing.Checkpoint, proof: list[bytes]
) -> str | None:
    try:
        leaf = json.loads(str(block["leaf"]))
    except ValueError:
        return t_plain("log receipt leaf is not JSON")
    target = target_hash_of(doc)
    if not isinstance(leaf, Mapping) or leaf.get("targetHash") != target or leaf.get("kind") != "issue":
        return t_plain("log receipt is for another document")
    try:
        merkle.verify_inclusion(
            int(block["logIndex"]), cp.size, merkle.leaf_hash(str(block["leaf"]).encode()), proof, cp.root
        )
    except merkle.ProofError as exc:
        return t_plain("log inclusion proof: {error}", error=exc)
    return None


def _status_from_log(session: Session, doc: Mapping[str, Any], registry: signing.KeyRegistry) -> model.Check:
    """Status from the issuer's log held on this node: included under the latest signed checkpoint, not revoked."""
    target = target_hash_of(doc)
    issuer_id = _issuer_claimed(doc) or ""
    entries = session.scalars(
        select(store.LogEntryRow)
        .where(store.LogEntryRow.issuer_id == issuer_id, store.LogEntryRow.target_hash == target)
        .order_by(store.LogEntryRow.idx)
    ).all()
    entry = next((e for e in entries if e.kind == "issue"), None)
    if entry is None:
        return model.Check("invalid", t_plain("not in the log of issuer {issuer}", issuer=issuer_id or "?"))
    cp_row = store.latest_checkpoint(session, issuer_id)
    if cp_row is None:
        return model.Check("invalid", t_plain("the issuer's log has no checkpoint"))
    try:
        cp = signing.verify_checkpoint(cp_row.note, registry)
    except signing.SignatureError as exc:
        return model.Check("invalid", t_plain("the issuer's latest checkpoint does not verify: {error}", error=exc))
    tree = store.tree_for(session, issuer_id, cp_row)
    index = int(entry.idx)
    try:
        merkle.verify_inclusion(
            index, cp.size, merkle.leaf_hash(entry.payload.encode()), tree.inclusion_proof(index, cp.size), cp.root
        )
    except (merkle.ProofError, ValueError) as exc:
        return model.Check("invalid", t_plain("log inclusion proof failed: {error}", error=exc))
    revoked = next((e for e in entries if e.kind == "revoke"), None)
    if revoked is not None:
        reason = json.loads(revoked.payload).get("reason", "")
        return model.Check(
            "invalid",
            t_plain(
                "revoked by the issuer (log entry {index}): {written_reason}", index=revoked.idx, written_reason=reason
            ),
            {"logIndex": index, "revokedAt": int(revoked.idx)},
        )
    return model.Check(
        "valid",
        t_plain(
            "entry {index} of {issuer}'s log, included in the signed checkpoint of size {size}; not revoked",
            index=index,
            issuer=issuer_id,
            size=cp.size,
        ),
        {"logIndex": index, "treeSize": cp.size},
    )


# --- transferable records (e-bill of lading) ----------------------------------------------------


def _lock_issuer(session: Session, issuer_id: str) -> store.IssuerRow:
    """Serialise appends to one issuer's log (PostgreSQL row lock; SQLite has one writer anyway)."""
    row = session.scalar(select(store.IssuerRow).where(store.IssuerRow.id == issuer_id).with_for_update())
    if row is None:
        raise NotFound(Problem("unknown_issuer", ("issuer",), t("No issuer {issuer}", issuer=repr(issuer_id))))
    return row


def _title_state(session: Session, doc: store.DocumentRow) -> title.TitleState:
    events = session.execute(
        select(store.LogEntryRow.kind, store.LogEntryRow.payload)
        .where(
            store.LogEntryRow.issuer_id == doc.issuer_id,
            store.LogEntryRow.target_hash == doc.target_hash,
            store.LogEntryRow.kind.in_(("title", *title.ACTIONS)),
        )
        .order_by(store.LogEntryRow.idx)
    )
    return title.replay(doc.target_hash, ((k, json.loads(p)) for k, p in events))


def _transferable(session: Session, target_hash: str) -> store.DocumentRow:
    doc = session.scalar(select(store.DocumentRow).where(store.DocumentRow.target_hash == target_hash.lower()))
    if doc is None:
        raise NotFound(
            Problem("unknown_document", ("targetHash",), t("No issued document {target_hash}", target_hash=target_hash))
        )
    if doc.doc_type != "bill_of_lading":
        raise DocumentError(
            Problem(
                "not_transferable",
                ("targetHash",),
                t("A {doc_type} is not a transferable record", doc_type=doc.doc_type),
            )
        )
    if _revocation(session, doc.issuer_id, doc.target_hash) is not None:
        raise DocumentError(Problem("revoked", ("targetHash",), t("The record was revoked by its issuer")))
    return doc


def _state_dict(state: title.TitleState) -> dict[str, Any]:
    return {
        "targetHash": state.target_hash,
        "holder": signing.b64(state.holder) if state.holder else None,
        "seq": state.seq,
        "surrendered": state.surrendered,
    }


def open_title(who: Principal, target_hash: str, holder_key: bytes, *, url: str | None = None) -> dict[str, Any]:
    """The carrier hands the e-bill of lading to its first holder (usually the shipper)."""
    if len(holder_key) != 32:
        raise DocumentError(Problem("invalid_public_key", ("holder",), t("An Ed25519 public key has 32 bytes")))
    with unit_of_work(url) as session:
        doc = _transferable(session, target_hash)
        issuer = _lock_issuer(session, doc.issuer_id)
        try:
            state = _title_state(session, doc).open(holder_key)
        except title.TitleError as exc:
            raise Conflict(Problem("title_open", ("targetHash",), str(exc))) from exc
        payload = _payload("title", issuer.id, doc.target_hash, _now(), holder=signing.b64(holder_key))
        appended = _append(session, issuer, [("title", doc.target_hash, payload)])
        audit.record(session, who, "open_title", "documents_document", doc.target_hash)
        return {**_state_dict(state), "logIndex": appended.first_index}


def holder_action(
    target_hash: str, action: str, seq: int, signature: bytes, to_key: bytes | None = None, *, url: str | None = None
) -> dict[str, Any]:
    """Endorse (`transfer`) or `surrender` a record; authorised by the holder's signature, not by a login."""
    with unit_of_work(url) as session:
        doc = _transferable(session, target_hash)
        issuer = _lock_issuer(session, doc.issuer_id)
        try:
            state = _title_state(session, doc).apply(action, seq, signature, to_key)
        except title.TitleError as exc:
            raise Conflict(Problem("title_refused", ("signature",), str(exc))) from exc
        extra = {"seq": str(seq), "signature": signing.b64(signature), "to": signing.b64(to_key) if to_key else ""}
        payload = _payload(action, issuer.id, doc.target_hash, _now(), **extra)
        appended = _append(session, issuer, [(action, doc.target_hash, payload)])
        return {**_state_dict(state), "logIndex": appended.first_index}


def title_of(target_hash: str, *, url: str | None = None) -> dict[str, Any]:
    with unit_of_work(url) as session:
        return _state_dict(_title_state(session, _transferable(session, target_hash)))


def decode_b64(text: str, field: str) -> bytes:
    """Base64 from a caller, or a DocumentError naming the field."""
    try:
        return signing.unb64(text)
    except ValueError as exc:
        raise DocumentError(
            Problem("invalid_base64", (field,), t("{field} is not valid base64: {error}", field=field, error=exc))
        ) from exc
