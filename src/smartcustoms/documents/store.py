"""Tables of the documents slice: issuers, their keys, issued documents, the append-only log and checkpoints.

Log entries and checkpoints are append-only in the database itself (triggers installed by the
migration refuse UPDATE and DELETE); an append writes its entries and the new signed checkpoint
in one transaction, so a crash leaves either both or neither.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from smartcustoms.documents.merkle import MerkleTree
from smartcustoms.platform.db import Base

BigId = BigInteger().with_variant(Integer(), "sqlite")


class IssuerRow(Base):
    """A party that issues documents: a customs service, a chamber of commerce, a carrier."""

    __tablename__ = "documents_issuer"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KeyRow(Base):
    """An issuer's Ed25519 key; `private_key` is present only for keys the platform holds for the issuer."""

    __tablename__ = "documents_key"
    __table_args__ = (UniqueConstraint("issuer_id", "key_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("documents_issuer.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key: Mapped[bytes | None] = mapped_column(LargeBinary(64))  # sealed, see keystore.py
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentRow(Base):
    """A wrapped document this node issued (kept whole so the issuer can redact copies later)."""

    __tablename__ = "documents_document"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("documents_issuer.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(40))
    target_hash: Mapped[str] = mapped_column(String(64), unique=True)
    merkle_root: Mapped[str] = mapped_column(String(64), index=True)
    log_index: Mapped[int] = mapped_column(BigInteger)
    wrapped: Mapped[dict[str, object]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(String(64))


class LogEntryRow(Base):
    """One leaf of an issuer's transparency log (issuance or revocation). Append-only."""

    __tablename__ = "documents_log_entry"
    __table_args__ = (UniqueConstraint("issuer_id", "idx"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("documents_issuer.id"))
    idx: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    target_hash: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CheckpointRow(Base):
    """A signed checkpoint (C2SP signed note) of an issuer's log. Append-only."""

    __tablename__ = "documents_checkpoint"
    __table_args__ = (UniqueConstraint("issuer_id", "size"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("documents_issuer.id"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text)


# --- repositories -----------------------------------------------------------------------------


def latest_checkpoint(session: Session, issuer_id: str) -> CheckpointRow | None:
    return session.scalar(
        select(CheckpointRow).where(CheckpointRow.issuer_id == issuer_id).order_by(CheckpointRow.size.desc()).limit(1)
    )


def checkpoint_at(session: Session, issuer_id: str, size: int) -> CheckpointRow | None:
    return session.scalar(select(CheckpointRow).where(CheckpointRow.issuer_id == issuer_id, CheckpointRow.size == size))


def log_size(session: Session, issuer_id: str) -> int:
    top = session.scalar(select(func.max(LogEntryRow.idx)).where(LogEntryRow.issuer_id == issuer_id))
    return 0 if top is None else int(top) + 1


_TREES: dict[tuple[str, str], MerkleTree] = {}
_TREES_LOCK = threading.Lock()


def tree_for(session: Session, issuer_id: str, checkpoint: CheckpointRow | None = None) -> MerkleTree:
    """The issuer's Merkle tree at its latest stored checkpoint, cached per process.

    Every append stores its entries and the new checkpoint in one transaction, so the latest
    checkpoint's size is the log's size. The cache only grows by reading stored leaves (O(new
    leaves)) and is rebuilt from all leaves if its root ever disagrees with the checkpoint (e.g.
    after an append rolled back in this process). Pass `checkpoint` if the caller already read it.
    """
    bind = session.get_bind()
    key = (str(bind.engine.url), issuer_id)
    cp = checkpoint if checkpoint is not None else latest_checkpoint(session, issuer_id)
    size = int(cp.size) if cp is not None else 0
    with _TREES_LOCK:
        tree = _TREES.get(key) or MerkleTree()
        if tree.size > size:
            tree = MerkleTree()
        for attempt in (1, 2):
            if tree.size < size:
                rows = session.execute(
                    select(LogEntryRow.leaf_hash)
                    .where(LogEntryRow.issuer_id == issuer_id, LogEntryRow.idx >= tree.size, LogEntryRow.idx < size)
                    .order_by(LogEntryRow.idx)
                )
                for (h,) in rows:
                    tree.append_hash(bytes(h))
            if cp is None or (tree.size == size and tree.root(size) == bytes(cp.root_hash)):
                break
            if attempt == 2:
                raise RuntimeError(f"the stored log of {issuer_id} does not match its checkpoint at size {size}")
            tree = MerkleTree()  # stale cache: rebuild from every stored leaf
        _TREES[key] = tree
        # callers get a private copy-on-append view: they append to it freely inside their transaction
        return _Overlay(tree)


class _Overlay(MerkleTree):
    """A snapshot of the cached tree at its current size: reads share the cached levels (which only grow
    past the snapshot), the first append copies them (O(n)) so a transaction never touches the cache."""

    def __init__(self, base: MerkleTree) -> None:
        super().__init__()
        self.levels = base.levels
        self._frozen: int | None = base.size

    @property
    def size(self) -> int:
        return self._frozen if self._frozen is not None else len(self.levels[0])

    def append_hash(self, h: bytes) -> int:
        if self._frozen is not None:
            n = self._frozen
            self.levels = [list(level[: n >> k]) for k, level in enumerate(self.levels)]
            self._frozen = None
        return super().append_hash(h)


def forget_trees() -> None:
    with _TREES_LOCK:
        _TREES.clear()


class ReceivedRow(Base):
    """A document a partner pushed to this node, with the verdict at receipt and the declaration it supports."""

    __tablename__ = "documents_received"
    __table_args__ = (UniqueConstraint("target_hash", "declaration_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_hash: Mapped[str] = mapped_column(String(64), index=True)
    issuer_id: Mapped[str | None] = mapped_column(String(64))
    doc_type: Mapped[str | None] = mapped_column(String(40))
    declaration_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    received_from: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    verdict: Mapped[dict[str, object]] = mapped_column(JSON)
    wrapped: Mapped[dict[str, object]] = mapped_column(JSON)
    reference: Mapped[str | None] = mapped_column(String(64), index=True)
    """The certificate's own number (what a declaration cites as its proof of origin)."""


class PartnerRow(Base):
    """A followed partner issuer and the node it is mirrored from, with the state of the last sync."""

    __tablename__ = "documents_partner"

    issuer_id: Mapped[str] = mapped_column(ForeignKey("documents_issuer.id"), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(300), index=True)
    followed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class AlarmRow(Base):
    """A partner log that forked, rolled back or rewrote history: kept for officers, never deleted."""

    __tablename__ = "documents_alarm"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer_id: Mapped[str] = mapped_column(String(64), index=True)
    base_url: Mapped[str | None] = mapped_column(String(300))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, object]] = mapped_column(JSON)


class ClaimRow(Base):
    """A declaration citing a proof of origin: links the filing to the received certificate (if any yet)."""

    __tablename__ = "documents_claim"
    __table_args__ = (UniqueConstraint("declaration_ref", "proof_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    declaration_ref: Mapped[str] = mapped_column(String(64), index=True)
    proof_ref: Mapped[str] = mapped_column(String(64), index=True)
    fta: Mapped[str] = mapped_column(String(32))
    received_id: Mapped[int | None] = mapped_column(BigId)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


LOG_TABLE = cast(Table, LogEntryRow.__table__)
DOCUMENT_TABLE = cast(Table, DocumentRow.__table__)
"""Core tables for executemany bulk inserts (the ORM bulk path costs more per row)."""
