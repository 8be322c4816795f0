"""Mirroring a partner's transparency log: node B follows node A's signed checkpoints and entries.

At each sync B checks that A's new checkpoint is signed by a key in A's pinned registry, that it is
consistent with the last checkpoint B mirrored (RFC 9162 consistency proof), and that the new
entries hash to the new root. Any failure is a fork or rewrite alarm: recorded in the audit log,
raised with the exact reason, and nothing of that sync is stored. Mirrored entries live in B's own
log tables under A's issuer id, so B answers `verify` for A's documents (status, revocation) locally.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartcustoms.documents import merkle, service, signing, store
from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, NotFound, Problem
from smartcustoms.platform.i18n import t, t_plain

PAGE = 10_000
_log = logging.getLogger(__name__)


class ForkAlarm(Conflict):
    """The partner's log forked, rolled back or rewrote history (or sent entries that do not match)."""


class PartnerLog(Protocol):
    """What B needs from A: its public log endpoints."""

    def checkpoint(self, issuer: str) -> str: ...

    def consistency(self, issuer: str, from_size: int, size: int) -> list[bytes]: ...

    def entries(self, issuer: str, start: int, end: int) -> list[dict[str, Any]]: ...


class HttpPartner:
    """A partner node reached over HTTP (its public `/documents/log/...` routes)."""

    def __init__(self, base_url: str, client: httpx.Client | None = None, timeout: float = 30.0) -> None:
        self.client = client or httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params={k: v for k, v in params.items() if v is not None})
        if r.status_code != 200:
            raise NotFound(
                Problem(
                    "partner_error",
                    ("partner",),
                    t("partner answered {status} for {path}", status=r.status_code, path=path),
                )
            )
        return r.json()

    def checkpoint(self, issuer: str) -> str:
        return str(self._get(f"/documents/log/{issuer}/checkpoint")["checkpoint"])

    def consistency(self, issuer: str, from_size: int, size: int) -> list[bytes]:
        out = self._get(f"/documents/log/{issuer}/proof", size=size, **{"from": from_size})
        return [signing.unb64(h) for h in out["consistencyProof"]]

    def entries(self, issuer: str, start: int, end: int) -> list[dict[str, Any]]:
        return list(self._get(f"/documents/log/{issuer}/entries", start=start, end=end)["entries"])


class LocalPartner:
    """A partner log read straight from its database (same machine; tests and benchmarks)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def checkpoint(self, issuer: str) -> str:
        return str(service.log_proof(issuer, url=self.url)["checkpoint"])

    def consistency(self, issuer: str, from_size: int, size: int) -> list[bytes]:
        out = service.log_proof(issuer, size=size, from_size=from_size, url=self.url)
        return [signing.unb64(h) for h in out["consistencyProof"]]

    def entries(self, issuer: str, start: int, end: int) -> list[dict[str, Any]]:
        return log_entries(issuer, start, end, url=self.url)


def log_entries(issuer_id: str, start: int, end: int, *, url: str | None = None) -> list[dict[str, Any]]:
    """A's side: entries [start, end) of an issuer's log, for partners to mirror (at most PAGE at once)."""
    if not 0 <= start <= end or end - start > PAGE:
        raise service.DocumentError(
            Problem(
                "invalid_range", ("start",), t("Ask for 0 <= start <= end with at most {limit} entries", limit=PAGE)
            )
        )
    with unit_of_work(url, read_only=True) as session:
        rows = session.execute(
            select(
                store.LogEntryRow.idx, store.LogEntryRow.kind, store.LogEntryRow.target_hash, store.LogEntryRow.payload
            )
            .where(
                store.LogEntryRow.issuer_id == issuer_id, store.LogEntryRow.idx >= start, store.LogEntryRow.idx < end
            )
            .order_by(store.LogEntryRow.idx)
        ).all()
    return [{"index": int(i), "kind": k, "targetHash": t, "payload": p} for i, k, t, p in rows]


def follow_partner(
    who: Principal,
    issuer_id: str,
    name: str,
    kind: str,
    registry: Mapping[str, Any],
    *,
    origin: str | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """B pins partner issuer A and its published key registry (public keys only; B cannot sign for A).
    With `base_url` B also remembers A's node, so `sync_from`/the background sync can mirror its log."""
    keys = [signing.IssuerKey.from_dict(k) for k in registry.get("keys", []) if k.get("issuer") == issuer_id]
    if not keys:
        raise service.DocumentError(
            Problem("empty_registry", ("registry",), t("No keys of {issuer} in the registry", issuer=issuer_id))
        )
    with unit_of_work(immediate=True) as session:
        if session.get(store.IssuerRow, issuer_id) is not None:
            raise Conflict(
                Problem("duplicate_issuer", ("id",), t("Issuer {issuer} already exists", issuer=repr(issuer_id)))
            )
        session.add(
            store.IssuerRow(
                id=issuer_id,
                name=name,
                kind=kind,
                origin=origin or f"smartcustoms/{issuer_id}",
                created_at=datetime.now(UTC),
            )
        )
        session.flush()
        for k in keys:
            session.add(
                store.KeyRow(
                    issuer_id=issuer_id,
                    key_id=k.key_id,
                    public_key=k.public_key,
                    private_key=None,
                    valid_from=k.valid_from,
                    valid_to=k.valid_to,
                    revoked_at=k.revoked_at,
                )
            )
        if base_url:
            session.add(store.PartnerRow(issuer_id=issuer_id, base_url=_norm(base_url), followed_at=datetime.now(UTC)))
        audit.record(
            session,
            who,
            "follow_partner",
            "documents_issuer",
            issuer_id,
            detail={"keys": len(keys), "base_url": base_url},
        )
    return {"id": issuer_id, "keys": [k.key_id for k in keys], "baseUrl": _norm(base_url) if base_url else None}


def _norm(base_url: str) -> str:
    return base_url.rstrip("/")


def fetch_registry(base_url: str, issuer_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """A partner's published key registry for one issuer, fetched from its node (`GET /documents/registry`)."""
    try:
        r = httpx.get(f"{_norm(base_url)}/documents/registry", params={"issuer": issuer_id}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise NotFound(
            Problem(
                "partner_unreachable", ("base_url",), t("{url} cannot be reached: {error}", url=base_url, error=exc)
            )
        ) from exc
    if r.status_code != 200:
        raise NotFound(
            Problem(
                "partner_error",
                ("base_url",),
                t("{url} answered {status} for its registry", url=base_url, status=r.status_code),
            )
        )
    body = r.json()
    if not isinstance(body, dict):
        raise NotFound(
            Problem("partner_error", ("base_url",), t("{url} sent a registry that is not an object", url=base_url))
        )
    return body


def follow_partner_at(
    who: Principal, base_url: str, issuer_id: str, *, name: str | None = None, kind: str = "customs"
) -> dict[str, Any]:
    """Follow issuer `issuer_id` of the partner node at `base_url`, pinning the registry it publishes now
    (trust on first use: compare the key ids with the partner out of band, as with any pinned key)."""
    registry = fetch_registry(base_url, issuer_id)
    return follow_partner(who, issuer_id, name or issuer_id, kind, registry, base_url=base_url)


def update_partner_keys(who: Principal, issuer_id: str, registry: Mapping[str, Any]) -> dict[str, Any]:
    """Take in a followed partner's newer registry (rotation, revocation). A key id already pinned must keep
    its public key: a different key under a known id is refused, never silently replaced."""
    keys = [signing.IssuerKey.from_dict(k) for k in registry.get("keys", []) if k.get("issuer") == issuer_id]
    added, updated = [], []
    with unit_of_work(immediate=True) as session:
        issuer = session.get(store.IssuerRow, issuer_id)
        if issuer is None:
            raise NotFound(
                Problem("unknown_issuer", ("issuer",), t("{issuer} is not a followed partner issuer", issuer=issuer_id))
            )
        pinned = {r.key_id: r for r in session.scalars(select(store.KeyRow).where(store.KeyRow.issuer_id == issuer_id))}
        for k in keys:
            row = pinned.get(k.key_id)
            if row is None:
                session.add(
                    store.KeyRow(
                        issuer_id=issuer_id,
                        key_id=k.key_id,
                        public_key=k.public_key,
                        private_key=None,
                        valid_from=k.valid_from,
                        valid_to=k.valid_to,
                        revoked_at=k.revoked_at,
                    )
                )
                added.append(k.key_id)
                continue
            if bytes(row.public_key) != k.public_key:
                raise Conflict(
                    Problem(
                        "key_substituted",
                        ("registry",),
                        t("key {key} of {issuer} has a different public key", key=k.key_id, issuer=issuer_id),
                    )
                )
            if row.private_key is not None:
                continue  # our own key: we are the authority for it
            row.valid_from, row.valid_to, row.revoked_at = k.valid_from, k.valid_to, k.revoked_at
            updated.append(k.key_id)
        audit.record(
            session,
            who,
            "update_partner_keys",
            "documents_issuer",
            issuer_id,
            detail={"added": added, "updated": updated},
        )
    return {"issuer": issuer_id, "added": added, "updated": updated}


def _alarm(who: Principal, issuer_id: str, reason: str, detail: dict[str, Any]) -> ForkAlarm:
    """Record the alarm (alarm table, partner state, audit log) in its own transaction and return it to raise."""
    with unit_of_work(immediate=True) as session:
        partner = session.get(store.PartnerRow, issuer_id)
        last = session.scalar(
            select(store.AlarmRow)
            .where(store.AlarmRow.issuer_id == issuer_id)
            .order_by(store.AlarmRow.id.desc())
            .limit(1)
        )
        if last is not None and (
            last.reason == reason
            or (
                detail.get("new_root") is not None
                and (last.detail.get("old_size"), last.detail.get("new_root"))
                == (detail.get("old_size"), detail.get("new_root"))
            )
        ):
            # the same evidence again (a background sync retrying a forked partner): one alarm is enough
            return ForkAlarm(
                Problem(
                    "partner_log_alarm",
                    ("checkpoint",),
                    t("Partner log alarm for {issuer}: {reason}", issuer=issuer_id, reason=reason),
                )
            )
        session.add(
            store.AlarmRow(
                issuer_id=issuer_id,
                base_url=partner.base_url if partner else None,
                raised_at=datetime.now(UTC),
                reason=reason,
                detail=detail,
            )
        )
        if partner is not None:
            partner.last_error = t_plain("alarm: {reason}", reason=reason)
        audit.record(session, who, "partner_log_alarm", "documents_issuer", issuer_id, detail=detail, note=reason)
    return ForkAlarm(
        Problem(
            "partner_log_alarm",
            ("checkpoint",),
            t("Partner log alarm for {issuer}: {reason}", issuer=issuer_id, reason=reason),
        )
    )


def alarms(issuer_id: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
    """Recorded partner-log alarms, newest first."""
    with unit_of_work(read_only=True) as session:
        q = select(store.AlarmRow).order_by(store.AlarmRow.id.desc()).limit(limit)
        if issuer_id:
            q = q.where(store.AlarmRow.issuer_id == issuer_id)
        return [
            {
                "id": a.id,
                "issuer": a.issuer_id,
                "baseUrl": a.base_url,
                "raisedAt": a.raised_at.isoformat(),
                "reason": a.reason,
                "detail": a.detail,
            }
            for a in session.scalars(q)
        ]


def partners() -> list[dict[str, Any]]:
    """Followed partner issuers with their node and the state of the last sync."""
    with unit_of_work(read_only=True) as session:
        out = []
        for p in session.scalars(select(store.PartnerRow).order_by(store.PartnerRow.issuer_id)):
            cp = store.latest_checkpoint(session, p.issuer_id)
            out.append(
                {
                    "issuer": p.issuer_id,
                    "baseUrl": p.base_url,
                    "lastSyncAt": p.last_sync_at.isoformat() if p.last_sync_at else None,
                    "treeSize": int(cp.size) if cp else 0,
                    "lastError": p.last_error,
                }
            )
        return out


def _mark_synced(session: Session, issuer_id: str) -> None:
    row = session.get(store.PartnerRow, issuer_id)
    if row is not None:
        row.last_sync_at, row.last_error = datetime.now(UTC), None


_SYNC_LOCKS: dict[str, threading.Lock] = {}
_SYNC_LOCKS_GUARD = threading.Lock()


def sync_partner(who: Principal, issuer_id: str, partner: PartnerLog) -> dict[str, Any]:
    """Fetch, check and store A's new checkpoint and entries; raise ForkAlarm (nothing stored) on any mismatch.

    One sync per issuer at a time in this process (background sync, inbox catch-up and an admin's sync may
    meet); if another process stored the same entries first, the sync starts over from what it stored."""
    with _SYNC_LOCKS_GUARD:
        lock = _SYNC_LOCKS.setdefault(issuer_id, threading.Lock())
    with lock:
        try:
            return _sync_partner(who, issuer_id, partner)
        except IntegrityError:
            store.forget_trees()
            return _sync_partner(who, issuer_id, partner)


def _sync_partner(who: Principal, issuer_id: str, partner: PartnerLog) -> dict[str, Any]:
    note = partner.checkpoint(issuer_id)
    with unit_of_work(read_only=True) as session:
        if session.get(store.IssuerRow, issuer_id) is None:
            raise NotFound(
                Problem("unknown_issuer", ("issuer",), t("{issuer} is not a followed partner issuer", issuer=issuer_id))
            )
        registry = service.registry_from_session(session, issuer_id)
        local = store.latest_checkpoint(session, issuer_id)
        old_size, old_root = (int(local.size), bytes(local.root_hash)) if local else (0, merkle.EMPTY_ROOT)
        tree = store.tree_for(session, issuer_id)
    try:
        cp = signing.verify_checkpoint(note, registry)
    except signing.SignatureError as exc:
        raise _alarm(
            who, issuer_id, t_plain("checkpoint signature refused: {error}", error=exc), {"note": note}
        ) from exc
    detail = {"old_size": old_size, "new_size": cp.size, "new_root": cp.root.hex()}
    if cp.size < old_size:
        raise _alarm(
            who,
            issuer_id,
            t_plain("log shrank from {old} to {new} entries (rollback)", old=old_size, new=cp.size),
            detail,
        )
    if cp.size == old_size:
        if cp.root != old_root:
            raise _alarm(
                who, issuer_id, t_plain("two different roots for tree size {size} (fork)", size=cp.size), detail
            )
        with unit_of_work(immediate=True) as session:
            _mark_synced(session, issuer_id)
        return {"issuer": issuer_id, "treeSize": cp.size, "new": 0}
    if old_size:
        try:
            proof = partner.consistency(issuer_id, old_size, cp.size)
            merkle.verify_consistency(old_size, cp.size, proof, old_root, cp.root)
        except merkle.ProofError as exc:
            raise _alarm(
                who,
                issuer_id,
                t_plain(
                    "checkpoint {size} is not consistent with {old}: {error}", size=cp.size, old=old_size, error=exc
                ),
                detail,
            ) from exc
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    start = old_size
    while start < cp.size:
        page = partner.entries(issuer_id, start, min(start + PAGE, cp.size))
        if not page:
            raise _alarm(who, issuer_id, t_plain("partner sent no entries from {start}", start=start), detail)
        for e in page:
            try:
                index, payload = int(e["index"]), e["payload"]
            except (KeyError, TypeError, ValueError) as exc:
                raise _alarm(
                    who,
                    issuer_id,
                    t_plain("malformed entry near {start}: {error}", start=start, error=repr(exc)),
                    detail,
                ) from exc
            if index != start or not isinstance(payload, str):
                raise _alarm(
                    who,
                    issuer_id,
                    t_plain("entry {index} out of order or not text (expected {start})", index=index, start=start),
                    detail,
                )
            h = merkle.leaf_hash(payload.encode("utf-8"))
            tree.append_hash(h)
            try:
                body = json.loads(payload)
            except ValueError as exc:
                raise _alarm(
                    who, issuer_id, t_plain("entry {start} is not a JSON log entry", start=start), detail
                ) from exc
            kind, target = (body.get("kind"), body.get("targetHash")) if isinstance(body, dict) else (None, None)
            if not (isinstance(kind, str) and 0 < len(kind) <= 16 and isinstance(target, str) and len(target) <= 64):
                raise _alarm(
                    who, issuer_id, t_plain("entry {start} is not a log entry (kind, targetHash)", start=start), detail
                )
            rows.append(
                {
                    "issuer_id": issuer_id,
                    "idx": start,
                    "kind": kind,
                    "target_hash": target.lower(),
                    "payload": payload,
                    "leaf_hash": h,
                    "created_at": now,
                }
            )
            start += 1
    if tree.root(cp.size) != cp.root:
        raise _alarm(who, issuer_id, "entries do not hash to the signed checkpoint root", detail)
    with unit_of_work(immediate=True) as session:
        if rows:
            session.execute(insert(store.LOG_TABLE), rows)
        session.add(
            store.CheckpointRow(issuer_id=issuer_id, size=cp.size, root_hash=cp.root, timestamp=cp.timestamp, note=note)
        )
        _mark_synced(session, issuer_id)
        audit.record(session, who, "sync_partner", "documents_issuer", issuer_id, detail=detail)
    return {"issuer": issuer_id, "treeSize": cp.size, "new": len(rows)}


def sync_from(who: Principal, base_url: str, issuer_id: str | None = None) -> dict[str, Any]:
    """Mirror every issuer followed at the partner node `base_url` (or just `issuer_id`). One issuer's
    alarm or an unreachable node does not stop the others; each outcome is reported and recorded."""
    url = _norm(base_url)
    with unit_of_work(read_only=True) as session:
        q = select(store.PartnerRow.issuer_id).where(store.PartnerRow.base_url == url)
        if issuer_id:
            q = select(store.IssuerRow.id).where(store.IssuerRow.id == issuer_id)
        issuers = list(session.scalars(q.order_by(q.selected_columns[0])))
    if not issuers:
        raise NotFound(
            Problem(
                "no_followed_issuer", ("partner",), t("No issuer is followed at {url} (see partner-follow)", url=url)
            )
        )
    out: dict[str, Any] = {"partner": url, "synced": [], "alarms": [], "errors": []}
    client = HttpPartner(url)
    try:
        for issuer in issuers:
            try:
                out["synced"].append(sync_partner(who, issuer, client))
            except ForkAlarm as exc:
                out["alarms"].append({"issuer": issuer, "reason": exc.problems[0].message})
            except (NotFound, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                # unreachable, or an answer that is not the log API (not JSON, missing fields): not evidence of a fork
                reason = exc.problems[0].message if isinstance(exc, NotFound) else f"{type(exc).__name__}: {exc}"
                _record_error(issuer, reason)
                out["errors"].append({"issuer": issuer, "reason": reason})
    finally:
        client.close()
    return out


def _record_error(issuer_id: str, reason: str) -> None:
    with unit_of_work(immediate=True) as session:
        row = session.get(store.PartnerRow, issuer_id)
        if row is not None:
            row.last_error = reason


def sync_all(who: Principal) -> list[dict[str, Any]]:
    """One sync round over every partner node this node follows (what the background sync runs)."""
    with unit_of_work(read_only=True) as session:
        urls = sorted(set(session.scalars(select(store.PartnerRow.base_url))))
    results = []
    for url in urls:
        try:
            results.append(sync_from(who, url))
        except NotFound:
            continue
    return results


class BackgroundSync:
    """Runs `sync_all` every `interval` seconds in a daemon thread until stopped (one per server process)."""

    def __init__(self, interval: float, who: Principal) -> None:
        self.interval, self.who = interval, who
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="documents-partner-sync", daemon=True)
        self.rounds = 0

    def start(self) -> BackgroundSync:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sync_all(self.who)
            except Exception:  # a failed round (database down...) must not end the loop
                _log.exception("partner sync round failed")
            self.rounds += 1


SYNC_INTERVAL_ENV = "SMARTCUSTOMS_DOCUMENTS_SYNC_INTERVAL"
"""Seconds between background partner syncs in a server process; unset or 0 = no background sync.
(Read here until the platform settings carry it as `documents_sync_interval`.)"""


def sync_interval() -> float:
    """Seconds between background syncs (`SMARTCUSTOMS_DOCUMENTS_SYNC_INTERVAL`; 0 turns them off)."""
    from smartcustoms.platform.settings import get_settings

    return get_settings().documents_sync_interval


# --- documents pushed by partners ----------------------------------------------------------------


def _claims(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The issuer a document names and its type (v2 `data`, v3 `credentialSubject`)."""
    kind = service.document_content(doc).get("documentType")
    return service._issuer_claimed(doc), str(kind) if kind is not None else None


def receive_document(who: Principal, wrapped: Any, *, declaration_ref: str | None = None) -> dict[str, Any]:
    """A partner pushes a document: verify it here and keep it, linked to the declaration it supports.

    Any invalid check rejects it with every reason and stores nothing. A document whose status or
    identity is only `unknown` (issuer not followed here) is kept, with its verdict, but
    `certificate_for_declaration` will not count it as verified.
    """
    if not isinstance(wrapped, Mapping):
        raise service.DocumentError(Problem("not_an_object", ("document",), t("A document must be a JSON object")))
    _catch_up(who, wrapped)
    verdict = service.verify_document(wrapped, use_db=True)
    problems = [
        Problem(f"{name}_invalid", ("checks", name), check["reason"])
        for name, check in verdict["checks"].items()
        if check["status"] == "invalid"
    ]
    if verdict["checks"]["integrity"]["status"] != "valid" and not problems:
        problems.append(Problem("integrity_invalid", ("checks", "integrity"), verdict["checks"]["integrity"]["reason"]))
    if problems:
        raise service.DocumentError(problems)
    issuer, kind = _claims(wrapped)
    target = service.target_hash_of(wrapped)
    number = service.document_number(wrapped)
    with unit_of_work(immediate=True) as session:
        existing = session.scalar(
            select(store.ReceivedRow).where(
                store.ReceivedRow.target_hash == target, store.ReceivedRow.declaration_ref == declaration_ref
            )
        )
        if existing is not None:
            raise Conflict(Problem("duplicate_document", ("document",), t("This document was already received")))
        row = store.ReceivedRow(
            target_hash=target,
            issuer_id=issuer,
            doc_type=kind,
            declaration_ref=declaration_ref,
            received_from=who.party_id or who.username,
            received_at=datetime.now(UTC),
            verdict=verdict,
            wrapped=dict(wrapped),
            reference=number,
        )
        session.add(row)
        session.flush()
        refs = [r for r in (number, declaration_ref, target) if r]
        for claim in session.scalars(
            select(store.ClaimRow).where(store.ClaimRow.proof_ref.in_(refs), store.ClaimRow.received_id.is_(None))
        ):
            claim.received_id = row.id
        audit.record(
            session,
            who,
            "receive_document",
            "documents_received",
            row.id,
            detail={"targetHash": target, "declaration": declaration_ref, "valid": verdict["valid"]},
        )
        return {
            "id": row.id,
            "targetHash": target,
            "reference": number,
            "declaration": declaration_ref,
            "verdict": verdict,
        }


def _catch_up(who: Principal, wrapped: Mapping[str, Any]) -> None:
    """Before verifying a partner's document, mirror its issuer's log if the document is not in it yet
    (the partner may push a certificate seconds after issuing it, before the next periodic sync)."""
    issuer = service._issuer_claimed(wrapped)
    target = service.target_hash_of(wrapped)
    if not issuer or not target:
        return
    with unit_of_work(read_only=True) as session:
        partner = session.get(store.PartnerRow, issuer)
        if partner is None:
            return
        known = session.scalar(
            select(store.LogEntryRow.id)
            .where(store.LogEntryRow.issuer_id == issuer, store.LogEntryRow.target_hash == target)
            .limit(1)
        )
        base_url = partner.base_url
    if known is None:
        with contextlib.suppress(NotFound):  # else the verdict says the document is not in the mirrored log
            sync_from(who, base_url, issuer)


def claims_for(declaration_ref: str) -> list[dict[str, Any]]:
    """The proofs of origin a declaration cited, and which received certificate each is linked to."""
    with unit_of_work(read_only=True) as session:
        return [
            {
                "declaration": c.declaration_ref,
                "proofRef": c.proof_ref,
                "fta": c.fta,
                "receivedId": c.received_id,
                "linkedAt": c.linked_at.isoformat(),
            }
            for c in session.scalars(
                select(store.ClaimRow)
                .where(store.ClaimRow.declaration_ref == declaration_ref)
                .order_by(store.ClaimRow.id)
            )
        ]


def preference_panel(session: Session, who: Principal, d: Mapping[str, Any]) -> dict[str, Any] | None:
    """For the declaration page (customs officers): each line claiming an FTA preference, the proof of
    origin it cites and that certificate's three checks as of now (None when no line claims one)."""
    if not who.is_customs:
        return None
    payload = d.get("declaration") or {}
    lines = []
    for item in payload.get("items") or []:
        pref = item.get("preference") if isinstance(item, Mapping) else None
        if not isinstance(pref, Mapping) or not pref.get("fta"):
            continue
        ref = str(pref.get("proof_of_origin_ref") or "")
        found = certificate_for_declaration(ref) if ref else None
        received = None if found or not ref else _latest_received(session, ref)
        lines.append(
            {
                "line_no": item.get("line_no"),
                "fta": pref.get("fta"),
                "proof_ref": ref,
                "verified": found is not None,
                "fta_matches": found is None or str(found.get("fta") or "").upper() == str(pref["fta"]).upper(),
                "issuer": (found or {})
                .get("verdict", {})
                .get("checks", {})
                .get("identity", {})
                .get("detail", {})
                .get("issuer"),
                "checks": (found or {}).get("verdict", {}).get("checks") or (received or {}).get("checks"),
            }
        )
    return {"lines": lines} if lines else None


def _latest_received(session: Session, ref: str) -> dict[str, Any] | None:
    row = session.scalar(
        select(store.ReceivedRow)
        .where(or_(store.ReceivedRow.reference == ref, store.ReceivedRow.declaration_ref == ref))
        .order_by(store.ReceivedRow.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    verdict = service.verify_document(dict(row.wrapped), use_db=True)
    return {"checks": verdict["checks"]}


def certificate_for_declaration(declaration_ref: str) -> dict[str, Any] | None:
    """For the clearance core: a certificate of origin received for this declaration, or with this
    certificate number or target hash (what a declaration cites as `proof_of_origin_ref`), that verifies
    *now* with all three checks valid (re-checked, so a revocation mirrored since receipt counts), else None."""
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(store.ReceivedRow)
            .where(
                or_(
                    store.ReceivedRow.declaration_ref == declaration_ref,
                    store.ReceivedRow.reference == declaration_ref,
                    store.ReceivedRow.target_hash == declaration_ref.lower(),
                )
            )
            .order_by(store.ReceivedRow.id.desc())
        ).all()
        docs: list[tuple[int, str | None, dict[str, Any]]] = [(r.id, r.doc_type, dict(r.wrapped)) for r in rows]
    for row_id, kind, wrapped in docs:
        if kind != "certificate_of_origin":
            continue
        verdict = service.verify_document(wrapped, use_db=True)
        if all(c["status"] == "valid" for c in verdict["checks"].values()):
            data = service.document_content(wrapped)
            return {
                "id": row_id,
                "targetHash": service.target_hash_of(wrapped),
                "fta": data.get("fta"),
                "certificate": data,
                "verdict": verdict,
            }
    return None


# --- pushing our documents to a partner ---------------------------------------------------------


def push_document(
    who: Principal,
    target_hash: str,
    base_url: str,
    token: str,
    *,
    declaration_ref: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """A's side: send a document this node issued to partner B's inbox (B verifies it on arrival against
    its mirror of our log and our published registry). B's refusal comes back with B's reasons."""
    with unit_of_work(immediate=True) as session:
        row = session.scalar(select(store.DocumentRow).where(store.DocumentRow.target_hash == target_hash.lower()))
        if row is None:
            raise NotFound(
                Problem(
                    "unknown_document", ("targetHash",), t("No issued document {target_hash}", target_hash=target_hash)
                )
            )
        wrapped = dict(row.wrapped)
        audit.record(
            session,
            who,
            "push_document",
            "documents_document",
            row.target_hash,
            detail={"to": _norm(base_url), "declaration": declaration_ref},
        )
    try:
        r = httpx.post(
            f"{_norm(base_url)}/documents/inbox",
            json={"document": wrapped, "declaration_ref": declaration_ref},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise NotFound(
            Problem(
                "partner_unreachable", ("base_url",), t("{url} cannot be reached: {error}", url=base_url, error=exc)
            )
        ) from exc
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 201:
        problems = [
            Problem(str(p.get("code", "partner_refused")), ("partner", *p.get("path", [])), str(p.get("message", "")))
            for p in (body.get("problems") or [] if isinstance(body, dict) else [])
        ] or [Problem("partner_refused", ("partner",), t("partner answered {status}", status=r.status_code))]
        raise service.DocumentError(problems)
    return dict(body)
