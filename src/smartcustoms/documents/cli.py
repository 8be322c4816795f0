"""`smartcustoms documents ...`: issue, verify, redact, log-proof, plus issuer and key administration.

`verify FILE` prints a JSON verdict (integrity, status, identity, each with status and reason) and
exits 0 only when integrity is valid and no check is invalid; 1 when the document fails a check;
2 when the file is not readable JSON. It needs no database for foreign OpenAttestation documents.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from smartcustoms.documents import exchange, service, signing, title
from smartcustoms.platform import i18n
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Tamper-evident trade documents: issue, verify, redact, log proofs.")


def _out(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        typer.echo("error [not_found] " + i18n.say(t("{path}: no such file", path=path)), err=True)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(
            "error [malformed_json] " + i18n.say(t("{path}: not valid JSON ({error})", path=path, error=exc)), err=True
        )
    except OSError as exc:
        typer.echo("error [unreadable] " + i18n.say(t("Cannot read {path}: {error}", path=path, error=exc)), err=True)
    raise typer.Exit(2)


def _db_configured() -> bool:
    """Use a database only if one is configured explicitly or the default embedded one exists."""
    if os.environ.get("SMARTCUSTOMS_DATABASE_URL"):
        return True
    url = get_settings().database_url
    return url.startswith("sqlite:///") and Path(url.split("///", 1)[1]).exists()


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="Wrapped document (OpenAttestation v2 JSON)"),
    registry: Path | None = typer.Option(None, help="Issuer key registry JSON (from `documents registry`)"),
    db: bool | None = typer.Option(None, "--db/--no-db", help="Consult the local issuer log (default: if configured)"),
) -> None:
    """Check integrity, status and identity; print the JSON verdict."""
    doc = _read_json(file)
    reg = signing.KeyRegistry.from_dict(_read_json(registry)) if registry else None
    use_db = _db_configured() if db is None else db
    result = service.verify_document(doc, registry=reg, use_db=use_db)
    _out(result)
    raise typer.Exit(0 if result["valid"] else 1)


@app.command("issue")
def issue(
    files: list[Path] = typer.Argument(..., help="Raw document JSON files (an object, or a list for a batch)"),
    issuer: str = typer.Option(..., help="Issuer id"),
    doc_type: str = typer.Option(..., "--type", help="certificate_of_origin, bill_of_lading or commercial_invoice"),
    out: Path | None = typer.Option(None, help="Directory for the wrapped documents (default: print them)"),
    fmt: str = typer.Option("oa-v2", "--format", help="oa-v2 (default) or oa-v3"),
) -> None:
    """Wrap, sign and log documents as one batch (one Merkle root, one checkpoint)."""
    docs: list[Any] = []
    names: list[str] = []
    for f in files:
        raw = _read_json(f)
        items = raw if isinstance(raw, list) else [raw]
        docs.extend(items)
        names.extend(f.stem if len(items) == 1 else f"{f.stem}-{i}" for i in range(len(items)))
    wrapped = service.issue_documents(SYSTEM, issuer, doc_type, docs, fmt=fmt)
    if out is None:
        _out(wrapped if len(wrapped) > 1 else wrapped[0])
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, w in zip(names, wrapped, strict=True):
        target = out / f"{name}.wrapped.json"
        target.write_text(json.dumps(w, indent=2, ensure_ascii=False), encoding="utf-8")
        _receipt_line(target, w)


def _receipt_line(target: Path, w: dict[str, Any]) -> None:
    block = w["proof"] if fmt_of(w) == "oa-v3" else w
    typer.echo(f"{target}  targetHash={service.target_hash_of(w)}  logIndex={block[service.LOG_BLOCK]['logIndex']}")


def fmt_of(w: dict[str, Any]) -> str:
    return "oa-v3" if "credentialSubject" in w else "oa-v2"


@app.command("redact")
def redact(
    file: Path = typer.Argument(..., help="Wrapped document"),
    field: list[str] = typer.Option(..., "--field", help="Dotted field path to hide, e.g. goods.0.price (repeatable)"),
    out: Path | None = typer.Option(None, help="Write here instead of printing"),
) -> None:
    """Hide fields (their hashes go to privacy.obfuscatedData); the document still verifies."""
    result = service.redact_document(_read_json(file), field)
    if out is None:
        _out(result)
    else:
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        typer.echo(i18n.say(t("{path}: {count} field(s) hidden", path=out, count=len(field))))


@app.command("log-proof")
def log_proof(
    issuer: str = typer.Option(..., help="Issuer id"),
    document: Path | None = typer.Option(None, "--document", help="Wrapped document to prove inclusion of"),
    target_hash: str | None = typer.Option(None, "--target-hash", help="Target hash to prove inclusion of"),
    index: int | None = typer.Option(None, help="Log index to prove inclusion of"),
    size: int | None = typer.Option(None, help="Tree size of the checkpoint (default: latest)"),
    from_size: int | None = typer.Option(None, "--from", help="Also prove consistency from this earlier size"),
) -> None:
    """Print a signed checkpoint with inclusion and/or consistency proofs (base64 hashes)."""
    if document is not None:
        target_hash = service.target_hash_of(_read_json(document))
        if not target_hash:
            raise service.DocumentError(
                Problem(
                    "no_target_hash",
                    ("document",),
                    t("{path} carries no targetHash (not a wrapped document)", path=document),
                )
            )
    _out(service.log_proof(issuer, target_hash=target_hash, index=index, size=size, from_size=from_size))


@app.command("revoke")
def revoke(target_hash: str, reason: str = typer.Option(..., help="Why the document is revoked")) -> None:
    """Revoke an issued document (a revocation entry is appended to the issuer's log)."""
    _out(service.revoke_document(SYSTEM, target_hash, reason))


@app.command("issuer-add")
def issuer_add(
    issuer_id: str,
    name: str = typer.Option(...),
    kind: str = typer.Option(..., help=", ".join(service.ISSUER_KINDS)),
    public_key: str | None = typer.Option(None, help="Issuer-held Ed25519 public key, base64 (else platform-held)"),
) -> None:
    """Register an issuer and its first signing key."""
    key = service.decode_b64(public_key, "public_key") if public_key else None
    _out(service.register_issuer(SYSTEM, issuer_id, name, kind, public_key=key))


@app.command("key-rotate")
def key_rotate(issuer_id: str, public_key: str | None = typer.Option(None, help="base64; else platform-held")) -> None:
    """Start a new key now; earlier keys stop signing but their signatures stay valid."""
    typer.echo(
        service.rotate_key(
            SYSTEM, issuer_id, public_key=service.decode_b64(public_key, "public_key") if public_key else None
        )
    )


@app.command("key-revoke")
def key_revoke(issuer_id: str, key_id: str) -> None:
    """Revoke a compromised key from now on."""
    service.revoke_key(SYSTEM, issuer_id, key_id)
    typer.echo(i18n.say(t("key {key} of {issuer} revoked", key=key_id, issuer=issuer_id)))


@app.command("registry")
def registry(issuer: str | None = typer.Option(None, help="Only this issuer")) -> None:
    """Print the published key registry (public keys with validity periods)."""
    _out(service.key_registry(issuer))


@app.command("holder-keygen")
def holder_keygen() -> None:
    """Make an Ed25519 key pair for a holder of transferable records (keep the private key secret)."""
    private = signing.generate_private_key()
    _out({"privateKey": signing.b64(private), "publicKey": signing.b64(signing.public_key_of(private))})


@app.command("holder-sign")
def holder_sign(
    target_hash: str,
    action: str = typer.Option(..., help="transfer or surrender"),
    seq: int = typer.Option(..., help="Current title sequence number (see `documents title`)"),
    private_key: str = typer.Option(..., envvar="SMARTCUSTOMS_HOLDER_KEY", help="Holder's private key, base64"),
    to: str | None = typer.Option(None, help="Next holder's public key, base64 (transfer)"),
) -> None:
    """Sign a transfer or surrender as the current holder (offline; prints the base64 signature)."""
    sig = title.sign_action(signing.unb64(private_key), target_hash, seq, action, signing.unb64(to) if to else None)
    typer.echo(signing.b64(sig))


@app.command("title-open")
def title_open(target_hash: str, holder: str = typer.Option(..., help="First holder's public key, base64")) -> None:
    """Carrier: give an issued e-bill of lading its first holder."""
    _out(service.open_title(SYSTEM, target_hash, service.decode_b64(holder, "holder")))


@app.command("title-transfer")
def title_transfer(
    target_hash: str,
    seq: int = typer.Option(...),
    to: str = typer.Option(..., help="Next holder's public key, base64"),
    signature: str = typer.Option(..., help="Current holder's signature from `holder-sign`"),
) -> None:
    """Record an endorsement signed by the current holder; a second endorsement of the same title is refused."""
    _out(
        service.holder_action(
            target_hash, "transfer", seq, service.decode_b64(signature, "signature"), service.decode_b64(to, "to")
        )
    )


@app.command("title-surrender")
def title_surrender(target_hash: str, seq: int = typer.Option(...), signature: str = typer.Option(...)) -> None:
    """The holder (consignee) surrenders the record to the carrier to take delivery."""
    _out(service.holder_action(target_hash, "surrender", seq, service.decode_b64(signature, "signature")))


@app.command("title")
def title_show(target_hash: str) -> None:
    """Current holder and sequence number of a transferable record."""
    _out(service.title_of(target_hash))


@app.command("partner-follow")
def partner_follow(
    issuer_id: str,
    registry: Path | None = typer.Option(None, help="The partner's published key registry JSON"),
    url: str | None = typer.Option(None, help="Partner node's base URL (its registry is fetched from there)"),
    name: str | None = typer.Option(None, help="Partner name (default: the issuer id)"),
    kind: str = typer.Option("customs"),
) -> None:
    """Pin a partner issuer and its keys, to mirror its log (from a registry file, or fetched from --url)."""
    if registry is None and url is None:
        typer.echo("error [required] " + i18n.say(t("give --registry FILE or --url URL")), err=True)
        raise typer.Exit(2)
    if registry is None:
        assert url is not None
        _out(exchange.follow_partner_at(SYSTEM, url, issuer_id, name=name, kind=kind))
        return
    _out(exchange.follow_partner(SYSTEM, issuer_id, name or issuer_id, kind, _read_json(registry), base_url=url))


@app.command("sync")
def sync(
    partner: str = typer.Option(..., "--partner", help="Partner node's base URL"),
    issuer: str | None = typer.Option(None, help="Only this followed issuer (default: all followed at --partner)"),
) -> None:
    """Mirror the partner's new checkpoints and entries, checking consistency proofs; exit 2 on an alarm
    (fork, rollback, rewritten history: recorded in the alarm list and the audit log), 1 if unreachable."""
    result = exchange.sync_from(SYSTEM, partner, issuer)
    _out(result)
    raise typer.Exit(2 if result["alarms"] else 1 if result["errors"] else 0)


@app.command("alarms")
def alarms_cmd(issuer: str | None = typer.Option(None, help="Only this partner issuer")) -> None:
    """Recorded partner-log alarms (forks, rollbacks, rewritten history), newest first."""
    _out(exchange.alarms(issuer))


@app.command("push")
def push(
    target_hash: str,
    to: str = typer.Option(..., help="Partner node's base URL"),
    token: str = typer.Option(..., envvar="SMARTCUSTOMS_PARTNER_TOKEN", help="Token the partner issued to us"),
    declaration: str | None = typer.Option(None, help="The partner's declaration this document supports"),
) -> None:
    """Send a document issued here to a partner's inbox (it verifies it against its mirror of our log)."""
    _out(exchange.push_document(SYSTEM, target_hash, to, token, declaration_ref=declaration))


@app.command("partner-keys")
def partner_keys(
    issuer_id: str, registry: Path = typer.Option(..., help="The partner's newer key registry JSON")
) -> None:
    """Take in a partner's rotated or revoked keys (a changed key under a known id is refused)."""
    _out(exchange.update_partner_keys(SYSTEM, issuer_id, _read_json(registry)))


@app.command("partner-sync")
def partner_sync(issuer_id: str, base_url: str = typer.Option(..., help="Partner node's base URL")) -> None:
    """Mirror the partner's new checkpoint and entries, checking consistency (exit 2 with the reason on a fork)."""
    partner = exchange.HttpPartner(base_url)
    try:
        _out(exchange.sync_partner(SYSTEM, issuer_id, partner))
    finally:
        partner.close()


@app.command("issue-prepare")
def issue_prepare(
    files: list[Path] = typer.Argument(..., help="Raw document JSON files (an object, or a list)"),
    issuer: str = typer.Option(..., help="Issuer id (its key is held by the issuer)"),
    doc_type: str = typer.Option(..., "--type"),
    out: Path = typer.Option(..., help="Where to write the prepared batch"),
    fmt: str = typer.Option("oa-v2", "--format", help="oa-v2 (default) or oa-v3"),
) -> None:
    """Issuer-held keys, step 1: wrap a batch; the issuer signs it offline with `issue-sign`."""
    docs: list[Any] = []
    for f in files:
        raw = _read_json(f)
        docs.extend(raw if isinstance(raw, list) else [raw])
    out.write_text(
        json.dumps(service.prepare_issue(SYSTEM, issuer, doc_type, docs, fmt=fmt), indent=2, ensure_ascii=False)
    )
    typer.echo(i18n.say(t("{path}: {count} document(s) to sign", path=out, count=len(docs))))


@app.command("issue-sign")
def issue_sign(
    prepared: Path,
    private_key: str = typer.Option(..., envvar="SMARTCUSTOMS_ISSUER_KEY", help="Issuer's private key, base64"),
) -> None:
    """Step 2 (offline, on the issuer's side): sign the prepared batch's Merkle root."""
    batch = _read_json(prepared)
    created = datetime.fromisoformat(batch["created"])
    key = service.decode_b64(private_key, "private_key")
    batch["proof"] = signing.document_proof(batch["issuer"], key, batch["merkleRoot"], created)
    prepared.write_text(json.dumps(batch, indent=2, ensure_ascii=False))
    typer.echo(i18n.say(t("{path}: signed with key {key}", path=prepared, key=batch["proof"]["verificationMethod"])))


@app.command("issue-finalize")
def issue_finalize(prepared: Path, out: Path = typer.Option(..., help="Directory for the wrapped documents")) -> None:
    """Step 3: the platform checks the signature against the registry and logs the batch."""
    batch = _read_json(prepared)
    wrapped = service.finalize_issue(SYSTEM, batch["issuer"], batch["type"], batch["documents"], batch.get("proof", {}))
    out.mkdir(parents=True, exist_ok=True)
    for i, w in enumerate(wrapped):
        target = out / f"{prepared.stem}-{i}.wrapped.json"
        target.write_text(json.dumps(w, indent=2, ensure_ascii=False), encoding="utf-8")
        _receipt_line(target, w)
