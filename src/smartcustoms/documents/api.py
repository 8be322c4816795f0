"""HTTP routes `/documents/...`: issuing (admin/officer), public verification, key registry, log proofs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from smartcustoms.documents import exchange, service, title
from smartcustoms.platform import i18n
from smartcustoms.platform.auth import SYSTEM, Principal, Role
from smartcustoms.platform.errors import NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.web import require


@asynccontextmanager
async def _background_sync(app: Any) -> AsyncIterator[None]:
    """Mirror followed partners every SMARTCUSTOMS_DOCUMENTS_SYNC_INTERVAL seconds while the server runs."""
    interval = exchange.sync_interval()
    runner = exchange.BackgroundSync(interval, SYSTEM).start() if interval > 0 else None
    try:
        yield
    finally:
        if runner is not None:
            runner.stop()


router = APIRouter(prefix="/documents", tags=["documents"], lifespan=_background_sync)
_issuers = require(Role.ADMIN, Role.OFFICER)
_admin = require(Role.ADMIN)


class IssuerIn(BaseModel):
    id: str = Field(examples=["chamber-tw"])
    name: str
    kind: str = Field(examples=list(service.ISSUER_KINDS))
    public_key: str | None = Field(None, description="Issuer-held Ed25519 public key (base64); else platform-held")


class KeyIn(BaseModel):
    public_key: str | None = Field(None, description="base64 Ed25519 public key; else a platform-held key")


class IssueIn(BaseModel):
    issuer: str
    type: str = Field(examples=["certificate_of_origin", "bill_of_lading", "commercial_invoice"])
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    format: str = Field("oa-v2", examples=list(service.FORMATS), description="OpenAttestation v2 (default) or v3")


class IssueOut(BaseModel):
    merkle_root: str
    documents: list[dict[str, Any]]


class RedactIn(BaseModel):
    document: dict[str, Any]
    fields: list[str] = Field(min_length=1)


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _key(text: str | None) -> bytes | None:
    return service.decode_b64(text, "public_key") if text else None


@router.post("/issuers", status_code=201)
def register_issuer(body: IssuerIn, who: Principal = Depends(_admin)) -> dict[str, Any]:
    return service.register_issuer(who, body.id, body.name, body.kind, public_key=_key(body.public_key))


@router.post("/issuers/{issuer_id}/keys", status_code=201)
def rotate_key(issuer_id: str, body: KeyIn, who: Principal = Depends(_admin)) -> dict[str, str]:
    return {"keyId": service.rotate_key(who, issuer_id, public_key=_key(body.public_key))}


@router.post("/issuers/{issuer_id}/keys/{key_id}/revoke")
def revoke_key(issuer_id: str, key_id: str, who: Principal = Depends(_admin)) -> dict[str, str]:
    service.revoke_key(who, issuer_id, key_id)
    return {"keyId": key_id, "status": "revoked"}


@router.get("/registry")
def registry(issuer: str | None = None) -> dict[str, Any]:
    """The published key registry; public, so partners can check signatures."""
    return service.key_registry(issuer)


@router.post("/issue", status_code=201)
def issue(body: IssueIn, who: Principal = Depends(_issuers)) -> IssueOut:
    wrapped = service.issue_documents(who, body.issuer, body.type, body.documents, fmt=body.format)
    return IssueOut(merkle_root=service.merkle_root_of(wrapped[0]) or "", documents=wrapped)


@router.post("/verify")
def verify(request: Request, document: Any = Body(...)) -> dict[str, Any]:
    """Public: the three checks (integrity, status, identity) for any wrapped document; no token needed.

    Reasons stay in English; in another language (`?lang=`, `Accept-Language`) a `localized` block carries
    them translated (`{"checks": {"integrity": ...}}`)."""
    out = service.verify_document(document, use_db=True)
    lang = i18n.normalise(request.query_params.get("lang")) or i18n.from_accept_language(
        request.headers.get("accept-language")
    )
    if lang and lang != i18n.DEFAULT:
        out["localized"] = {"checks": {name: i18n.translate(c["reason"], lang) for name, c in out["checks"].items()}}
    return out


@router.post("/redact")
def redact(body: RedactIn) -> dict[str, Any]:
    """Public and stateless: anyone holding a document may hide fields before passing it on."""
    return service.redact_document(body.document, body.fields)


@router.post("/{target_hash}/revoke")
def revoke(target_hash: str, body: RevokeIn, who: Principal = Depends(_issuers)) -> dict[str, Any]:
    return service.revoke_document(who, target_hash, body.reason)


@router.get("/log/{issuer_id}/checkpoint")
def checkpoint(issuer_id: str, size: int | None = Query(None, ge=0)) -> dict[str, Any]:
    return service.log_proof(issuer_id, size=size)


@router.get("/log/{issuer_id}/proof")
def proof(
    issuer_id: str,
    target_hash: str | None = None,
    index: int | None = Query(None, ge=0),
    size: int | None = Query(None, ge=0),
    from_size: int | None = Query(None, alias="from", ge=1),
) -> dict[str, Any]:
    """Inclusion proof (by target hash or index) and/or consistency proof from an earlier size."""
    return service.log_proof(issuer_id, target_hash=target_hash, index=index, size=size, from_size=from_size)


class TitleOpenIn(BaseModel):
    holder: str = Field(description="First holder's Ed25519 public key, base64")


class HolderActionIn(BaseModel):
    seq: int = Field(ge=1, description="Title sequence number the holder signed for")
    signature: str = Field(description="Current holder's Ed25519 signature, base64")
    to: str | None = Field(None, description="Next holder's public key, base64 (transfer only)")


_carriers = require(Role.CARRIER, Role.ADMIN, Role.OFFICER)


@router.post("/{target_hash}/title", status_code=201)
def open_title(target_hash: str, body: TitleOpenIn, who: Principal = Depends(_carriers)) -> dict[str, Any]:
    return service.open_title(who, target_hash, service.decode_b64(body.holder, "holder"))


@router.post("/{target_hash}/title/{action}")
def holder_action(target_hash: str, action: str, body: HolderActionIn) -> dict[str, Any]:
    """Transfer or surrender; authorised by the current holder's signature, so no token is needed."""
    if action not in title.ACTIONS:
        raise service.DocumentError(Problem("unknown_action", ("action",), t("action must be transfer or surrender")))
    return service.holder_action(
        target_hash, action, body.seq, service.decode_b64(body.signature, "signature"), _key(body.to)
    )


@router.get("/{target_hash}/title")
def get_title(target_hash: str) -> dict[str, Any]:
    return service.title_of(target_hash)


class FollowIn(BaseModel):
    id: str
    name: str | None = None
    kind: str = "customs"
    registry: dict[str, Any] | None = Field(
        None, description="The partner's published key registry; if absent it is fetched from base_url"
    )
    base_url: str | None = Field(None, description="Partner node's base URL, remembered for syncing")
    origin: str | None = None


class SyncIn(BaseModel):
    base_url: str = Field(description="Partner node's base URL, e.g. https://customs.partner.example")


@router.get("/log/{issuer_id}/entries")
def entries(issuer_id: str, start: int = Query(0, ge=0), end: int = Query(..., ge=0)) -> dict[str, Any]:
    """Public: raw log entries [start, end) for partners mirroring this log (at most 10,000 per call)."""
    return {"issuer": issuer_id, "entries": exchange.log_entries(issuer_id, start, end)}


@router.post("/partners", status_code=201)
def follow_partner(body: FollowIn, who: Principal = Depends(_admin)) -> dict[str, Any]:
    if body.registry is None:
        if not body.base_url:
            raise service.DocumentError(Problem("required", ("registry",), t("Give the registry or the base_url")))
        return exchange.follow_partner_at(who, body.base_url, body.id, name=body.name, kind=body.kind)
    return exchange.follow_partner(
        who, body.id, body.name or body.id, body.kind, body.registry, origin=body.origin, base_url=body.base_url
    )


@router.get("/partners")
def list_partners(who: Principal = Depends(_issuers)) -> dict[str, Any]:
    """Followed partner issuers, their nodes and the state of the last sync."""
    return {"partners": exchange.partners()}


class SyncFromIn(BaseModel):
    partner: str = Field(description="Partner node's base URL")
    issuer: str | None = None


@router.post("/sync")
def sync_from(body: SyncFromIn, who: Principal = Depends(_admin)) -> dict[str, Any]:
    """Mirror every issuer followed at a partner node; alarms and errors are listed, not raised."""
    return exchange.sync_from(who, body.partner, body.issuer)


@router.get("/alarms")
def list_alarms(issuer: str | None = None, who: Principal = Depends(_issuers)) -> dict[str, Any]:
    """Recorded partner-log alarms (fork, rollback, rewritten history), newest first."""
    return {"alarms": exchange.alarms(issuer)}


class PushIn(BaseModel):
    base_url: str = Field(description="Partner node's base URL")
    token: str = Field(description="Bearer token the partner issued to this node (role partner)")
    declaration_ref: str | None = Field(None, max_length=64)


@router.post("/{target_hash}/push")
def push(target_hash: str, body: PushIn, who: Principal = Depends(_issuers)) -> dict[str, Any]:
    """Send a document issued here to a partner's inbox; the partner's verdict (or refusal) comes back."""
    return exchange.push_document(who, target_hash, body.base_url, body.token, declaration_ref=body.declaration_ref)


@router.put("/partners/{issuer_id}/keys")
def update_partner_keys(issuer_id: str, registry: dict[str, Any], who: Principal = Depends(_admin)) -> dict[str, Any]:
    """Take in a partner's newer key registry (after it rotated or revoked keys)."""
    return exchange.update_partner_keys(who, issuer_id, registry)


@router.post("/partners/{issuer_id}/sync")
def sync_partner(issuer_id: str, body: SyncIn, who: Principal = Depends(_admin)) -> dict[str, Any]:
    """Mirror the partner's new checkpoint and entries; 409 with the reason if its log forked or rewrote history."""
    partner = exchange.HttpPartner(body.base_url)
    try:
        return exchange.sync_partner(who, issuer_id, partner)
    finally:
        partner.close()


class InboxIn(BaseModel):
    document: dict[str, Any]
    declaration_ref: str | None = Field(None, max_length=64, description="The declaration claiming the preference")


@router.post("/inbox", status_code=201)
def receive(body: InboxIn, who: Principal = Depends(require(Role.PARTNER, Role.ADMIN))) -> dict[str, Any]:
    """A partner node pushes a document; it is verified here and kept, linked to the declaration."""
    return exchange.receive_document(who, body.document, declaration_ref=body.declaration_ref)


@router.get("/declarations/{declaration_ref}/claims")
def claims(declaration_ref: str, who: Principal = Depends(_issuers)) -> dict[str, Any]:
    """Proofs of origin the declaration cited, each with the received certificate it is linked to."""
    return {"declaration": declaration_ref, "claims": exchange.claims_for(declaration_ref)}


@router.get("/declarations/{declaration_ref}/certificate")
def certificate(declaration_ref: str, who: Principal = Depends(_issuers)) -> dict[str, Any]:
    """The verified certificate of origin backing a declaration's preference claim (404 if none verifies)."""
    found = exchange.certificate_for_declaration(declaration_ref)
    if found is None:
        raise NotFound(
            Problem(
                "no_verified_certificate",
                ("declaration_ref",),
                t("No verified certificate for {reference}", reference=declaration_ref),
            )
        )
    return found


class FinalizeIn(BaseModel):
    issuer: str
    type: str
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    proof: dict[str, Any] = Field(description="The issuer's signature over the batch's Merkle root")


@router.post("/issue/prepare")
def prepare_issue(body: IssueIn, who: Principal = Depends(_issuers)) -> dict[str, Any]:
    """Issuer-held keys: wrap a batch and return the message the issuer signs offline."""
    return service.prepare_issue(who, body.issuer, body.type, body.documents, fmt=body.format)


@router.post("/issue/finalize", status_code=201)
def finalize_issue(body: FinalizeIn, who: Principal = Depends(_issuers)) -> IssueOut:
    wrapped = service.finalize_issue(who, body.issuer, body.type, body.documents, body.proof)
    return IssueOut(merkle_root=service.merkle_root_of(wrapped[0]) or "", documents=wrapped)
