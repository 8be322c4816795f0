"""Permits use cases: the requirements registry, permits issued by agencies, the declaration check and
the allowance drawn down by filings. Each function runs inside the caller's unit of work.

Allowances are drawn atomically: the check locks the cited permits (`SELECT ... FOR UPDATE`, in id
order, on PostgreSQL; SQLite has one writer at a time and a stale snapshot cannot write), the
`stored` hook reserves with a compare-and-set update, release makes the draw final, rejection or
amendment gives it back. So two declarations can never use the same allowance twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartcustoms.clearance.lifecycle import TYPE_WORDS
from smartcustoms.platform import audit
from smartcustoms.platform.auth import SYSTEM, Principal, Role
from smartcustoms.platform.db import database_key, unit_of_work
from smartcustoms.platform.errors import Conflict, DomainError, Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.types import iso
from smartcustoms.singlewindow.permits import model
from smartcustoms.singlewindow.permits.model import (
    ACTIVE,
    FINAL,
    RESERVED,
    RETURNED,
    REVOKED,
    Line,
    Permit,
    PermitInput,
    Requirement,
    RequirementIndex,
)
from smartcustoms.singlewindow.permits.store import PermitRow, PermitVersionRow, RegistryRow, RequirementRow, UsageRow

if TYPE_CHECKING:
    from smartcustoms.clearance.checks import CheckContext, Finding, Stored
    from smartcustoms.clearance.lifecycle import Action, Status
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.store import DeclarationRow

DATA = Path(__file__).resolve().parent / "data"
DEMO_REQUIREMENTS = DATA / "requirements_tw_illustrative.csv"
REGISTRY = "requirements"
_PLANS = "swpermits.plans"
_BALANCES = "swpermits.balances"
READERS = frozenset({Role.OFFICER, Role.ANALYST, Role.ADMIN})


class PermitError(DomainError):
    """Bad input or a refused action on requirements or permits."""


def _now() -> datetime:
    from smartcustoms.clearance.service import now

    return now()


def _table(model_: type[Any]) -> Table:
    return cast(Table, model_.__table__)


# ---------------------------------------------------------------------------------------------- registry cache

_lock = threading.Lock()
_index_cache: dict[str, tuple[int, RequirementIndex]] = {}
_prefix_cache: dict[tuple[int, Any], frozenset[str]] = {}


def _db_key(session: Session) -> str:
    return database_key(session)


def forget_caches() -> None:
    """Drop the cached requirements index (tests switch databases)."""
    with _lock:
        _index_cache.clear()
        _prefix_cache.clear()
        _version_cache.clear()


REGISTRY_TTL_S = 5.0
"""How long a process trusts the registry version it read: edits made by another process apply within this."""
_version_cache: dict[str, tuple[float, int]] = {}


def registry_version(session: Session, *, fresh: bool = True) -> int:
    """The registry's version; `fresh=False` (the filing path) reads it at most every few seconds."""
    key = _db_key(session)
    if not fresh:
        hit = _version_cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    version = int(session.scalar(select(RegistryRow.version).where(RegistryRow.name == REGISTRY)) or 0)
    _version_cache[key] = (time.monotonic() + REGISTRY_TTL_S, version)
    return version


def _bump(session: Session) -> int:
    _version_cache.pop(_db_key(session), None)
    row = session.scalar(select(RegistryRow).where(RegistryRow.name == REGISTRY).with_for_update())
    if row is None:
        row = RegistryRow(name=REGISTRY, version=0, updated_at=_now())
        session.add(row)
    row.version += 1
    row.updated_at = _now()
    session.flush()
    return row.version


def _requirement(r: RequirementRow) -> Requirement:
    return Requirement(
        r.code_prefix, r.direction, r.agency, r.permit_type, r.title, r.valid_from, r.valid_to, r.legal_basis, r.id
    )


def requirement_index(session: Session, *, fresh: bool = True) -> tuple[int, RequirementIndex]:
    """The requirements registry as an in-memory index, reloaded when its version changes."""
    version = registry_version(session, fresh=fresh)
    key = _db_key(session)
    hit = _index_cache.get(key)
    if hit is not None and hit[0] == version:
        return hit
    index = RequirementIndex(_requirement(r) for r in session.scalars(select(RequirementRow)))
    with _lock:
        _index_cache[key] = (version, index)
    return version, index


def _known_code(session: Session) -> Callable[[str], bool]:
    """Whether some line of the tariff schedule in force starts with a prefix."""
    from smartcustoms.tariff.service import get_index

    try:
        index = get_index(None, date.today(), session=session)
    except DomainError as exc:
        raise PermitError(
            Problem(
                "no_tariff_schedule",
                ("code_prefix",),
                t("Import a tariff schedule first: codes are checked against it"),
            )
        ) from exc
    key = (index.schedule.id or 0, index.schedule.imported_at)
    prefixes = _prefix_cache.get(key)
    if prefixes is None:
        prefixes = frozenset(code[:n] for code in index.codes for n in range(2, len(code) + 1) if code[:2].isdigit())
        with _lock:
            _prefix_cache[key] = prefixes
    return prefixes.__contains__


# ---------------------------------------------------------------------------------------------- requirements


def _require_admin(who: Principal, refusal: str) -> None:
    if who.role is not Role.ADMIN:
        raise Forbidden(Problem("forbidden_role", (), refusal))


def list_requirements(
    session: Session, *, code: str | None = None, direction: str | None = None, on: date | None = None
) -> list[Requirement]:
    """The registry, or the requirements applying to `code` (and `direction`) on a day."""
    if code:
        _v, index = requirement_index(session)
        day = on or date.today()
        out = [r for d in (direction,) if d for r in index.find(code, d, day)] if direction else []
        if not direction:
            out = [r for d in model.DIRECTIONS for r in index.find(code, d, day)]
        return sorted(out, key=lambda r: (r.direction, r.code_prefix, r.agency, r.permit_type))
    stmt = select(RequirementRow).order_by(
        RequirementRow.code_prefix, RequirementRow.direction, RequirementRow.agency, RequirementRow.valid_from
    )
    if direction:
        stmt = stmt.where(RequirementRow.direction == direction)
    reqs = [_requirement(r) for r in session.scalars(stmt)]
    return [r for r in reqs if on is None or r.valid_on(on)]


def requirements_for_codes(
    codes: Iterable[str], direction: str | None = None, on: date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Requirements per tariff code, for showing beside classification results (own transaction)."""
    codes = list(dict.fromkeys(codes))
    if not codes:
        return {}
    with unit_of_work() as session:
        _v, index = requirement_index(session, fresh=False)
    day = on or date.today()
    directions = (direction,) if direction else model.DIRECTIONS
    return {c: [r.as_dict() for d in directions for r in index.find(c, d, day)] for c in codes}


def import_requirements(
    session: Session, who: Principal, text: str, *, replace: bool = False, source: str = "csv"
) -> dict[str, int]:
    """Load requirements from CSV: all rows valid or nothing is written. Rows with the same prefix,
    direction, agency, type and start replace the stored one; `replace` also removes rows not in the file."""
    _require_admin(who, t("Only administrators import requirements"))
    reqs, problems = model.parse_requirements_csv(text, _known_code(session))
    if problems:
        raise PermitError(problems)
    existing = {
        (r.code_prefix, r.direction, r.agency, r.permit_type, r.valid_from): r
        for r in session.scalars(select(RequirementRow))
    }
    added = updated = removed = 0
    at = _now()
    keep: set[int] = set()
    for req in reqs:
        row = existing.get((*req.key, req.valid_from))
        if row is None:
            row = RequirementRow(**_req_values(req), updated_at=at)
            session.add(row)
            added += 1
        else:
            if (row.title, row.valid_to, row.legal_basis) != (req.title, req.valid_to, req.legal_basis):
                row.title, row.valid_to, row.legal_basis, row.updated_at = req.title, req.valid_to, req.legal_basis, at
                updated += 1
            keep.add(row.id)
    if replace:
        for row in existing.values():
            if row.id not in keep:
                session.delete(row)
                removed += 1
    session.flush()
    version = _bump(session)
    report = {"rows": len(reqs), "added": added, "updated": updated, "removed": removed, "version": version}
    audit.record(session, who, "import_requirements", "permit_requirement", source, detail=report)
    return report


def _req_values(req: Requirement) -> dict[str, Any]:
    return {
        "code_prefix": req.code_prefix,
        "direction": req.direction,
        "agency": req.agency,
        "permit_type": req.permit_type,
        "title": req.title,
        "legal_basis": req.legal_basis,
        "valid_from": req.valid_from,
        "valid_to": req.valid_to,
    }


def add_requirement(session: Session, who: Principal, data: Mapping[str, Any]) -> Requirement:
    _require_admin(who, t("Only administrators edit the requirements registry"))
    req, problems = model.check_requirement(data, (), _known_code(session))
    if problems or req is None:
        raise PermitError(problems)
    clash = session.scalar(
        select(RequirementRow.id).where(
            RequirementRow.code_prefix == req.code_prefix,
            RequirementRow.direction == req.direction,
            RequirementRow.agency == req.agency,
            RequirementRow.permit_type == req.permit_type,
            RequirementRow.valid_from == req.valid_from,
        )
    )
    if clash is not None:
        raise Conflict(
            Problem(
                "duplicate_requirement",
                ("code_prefix",),
                t("Requirement {requirement} already says this", requirement=clash),
            )
        )
    row = RequirementRow(**_req_values(req), updated_at=_now())
    session.add(row)
    session.flush()
    version = _bump(session)
    audit.record(
        session, who, "add_requirement", "permit_requirement", row.id, detail={**req.as_dict(), "registry": version}
    )
    return _requirement(row)


def update_requirement(session: Session, who: Principal, req_id: int, data: Mapping[str, Any]) -> Requirement:
    _require_admin(who, t("Only administrators edit the requirements registry"))
    row = session.get(RequirementRow, req_id, with_for_update=True)
    if row is None:
        raise NotFound(Problem("unknown_requirement", ("id",), t("No requirement {requirement}", requirement=req_id)))
    merged = {**_req_values(_requirement(row)), **{k: v for k, v in data.items() if v is not None}}
    req, problems = model.check_requirement(merged, (), _known_code(session))
    if problems or req is None:
        raise PermitError(problems)
    before = _requirement(row).as_dict()
    for k, v in _req_values(req).items():
        setattr(row, k, v)
    row.updated_at = _now()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            Problem("duplicate_requirement", ("code_prefix",), t("Another requirement already says this"))
        ) from exc
    version = _bump(session)
    audit.record(
        session, who, "update_requirement", "permit_requirement", req_id, detail={"before": before, "registry": version}
    )
    return _requirement(row)


def delete_requirement(session: Session, who: Principal, req_id: int) -> None:
    _require_admin(who, t("Only administrators edit the requirements registry"))
    row = session.get(RequirementRow, req_id)
    if row is None:
        raise NotFound(Problem("unknown_requirement", ("id",), t("No requirement {requirement}", requirement=req_id)))
    before = _requirement(row).as_dict()
    session.delete(row)
    session.flush()
    version = _bump(session)
    audit.record(
        session, who, "delete_requirement", "permit_requirement", req_id, detail={"before": before, "registry": version}
    )


# ---------------------------------------------------------------------------------------------- permits

_AMENDABLE = (
    "holder",
    "holder_name",
    "codes",
    "quantity_allowance",
    "quantity_unit",
    "value_allowance",
    "value_currency",
    "valid_from",
    "valid_to",
    "conditions",
)


def _can_manage(who: Principal, row: PermitRow) -> bool:
    return who.role is Role.ADMIN or (who.role is Role.AGENCY and who.party_id == row.agency)


def _can_read(who: Principal, row: PermitRow) -> bool:
    if who.role in READERS or _can_manage(who, row):
        return True
    return who.role is Role.TRADER and who.party_id is not None and who.party_id == row.holder


def _find(session: Session, who: Principal, number: str, *, for_update: bool = False) -> PermitRow:
    stmt = select(PermitRow).where(PermitRow.number == number)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None or not _can_read(who, row):
        raise NotFound(Problem("unknown_permit", ("number",), t("No permit {permit}", permit=number)))
    return row


def permit_view(row: PermitRow) -> dict[str, Any]:
    def dec(x: Decimal | None) -> str | None:
        return None if x is None else str(x)

    return {
        "number": row.number,
        "agency": row.agency,
        "permit_type": row.permit_type,
        "direction": row.direction,
        "holder": row.holder,
        "holder_name": row.holder_name,
        "codes": list(row.codes),
        "quantity_allowance": dec(row.quantity_allowance),
        "quantity_unit": row.quantity_unit,
        "quantity_used": dec(row.quantity_used),
        "quantity_left": dec(model.remaining(row.quantity_allowance, row.quantity_used)),
        "value_allowance": dec(row.value_allowance),
        "value_currency": row.value_currency,
        "value_used": dec(row.value_used),
        "value_left": dec(model.remaining(row.value_allowance, row.value_used)),
        "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat(),
        "conditions": row.conditions,
        "status": row.status,
        "version": row.version,
        "issued_at": iso(row.issued_at),
        "issued_by": row.issued_by,
        "updated_at": iso(row.updated_at),
        "revoked_at": iso(row.revoked_at),
        "revoke_reason": row.revoke_reason,
    }


def _snapshot(row: PermitRow) -> dict[str, Any]:
    out = permit_view(row)
    for k in ("quantity_used", "quantity_left", "value_used", "value_left", "issued_at", "updated_at"):
        out.pop(k)
    return out


def _version(session: Session, who: Principal, row: PermitRow, action: str, reason: str | None) -> None:
    session.add(
        PermitVersionRow(
            permit_id=row.id,
            version=row.version,
            at=_now(),
            actor=who.username,
            action=action,
            reason=reason,
            snapshot=_snapshot(row),
        )
    )


PERMIT_TYPE_WORDS = {
    "food_import_permit": t("food import inspection permit"),
    "drug_import_permit": t("medicinal product import permit"),
    "quarantine_certificate": t("animal quarantine certificate"),
    "plant_quarantine_certificate": t("plant quarantine certificate"),
    "cites_permit": t("CITES permit"),
    "toxic_chemical_permit": t("toxic chemical substance permit"),
    "waste_import_permit": t("waste import permit"),
    "waste_export_permit": t("waste export permit"),
    "strategic_export_licence": t("strategic high-tech commodities export licence"),
}
"""Names of the permit types of the illustrative registry, in a sentence; other types show their code."""


def permit_type_offer(permit_type: str, direction: str) -> str:
    """One permit type an agency issues, as the reader names it, with the code to type: "food import
    inspection permit (code food_import_permit, import)"; a type with no name here shows its code alone.
    The word "code" is the templates' own text: a bare "{a} ({b}, {c})" would read goods descriptions back."""
    word = PERMIT_TYPE_WORDS.get(permit_type)
    direction_text = TYPE_WORDS.get(direction, direction)
    if word is None:
        return t("code {permit_type} ({direction_text})", permit_type=permit_type, direction_text=direction_text)
    return t(
        "{type_text} (code {permit_type}, {direction_text})",
        type_text=word,
        permit_type=permit_type,
        direction_text=direction_text,
    )


def _type_problems(session: Session, agency: str, permit_type: str, direction: str) -> list[Problem]:
    """The registry names which permit types each agency issues, per direction."""
    known = session.execute(
        select(RequirementRow.permit_type, RequirementRow.direction).where(RequirementRow.agency == agency).distinct()
    ).all()
    if (permit_type, direction) in {(pt, d) for pt, d in known}:
        return []
    offered = "; ".join(permit_type_offer(pt, d) for pt, d in sorted({(pt, d) for pt, d in known})) or "-"
    return [
        Problem(
            "unknown_permit_type",
            ("permit_type",),
            t(
                "The requirements registry names no {direction_text} permit type '{permit_type}' for agency {agency}; "
                "it names: {offered_texts}",
                direction_text=TYPE_WORDS.get(direction, direction),
                permit_type=permit_type,
                agency=agency,
                offered_texts=offered,
            ),
        )
    ]


def issue_permit(session: Session, who: Principal, p: PermitInput, *, agency: str | None = None) -> PermitRow:
    """An agency issues a permit (an administrator may issue on an agency's behalf, naming it)."""
    if who.role is Role.AGENCY:
        if agency and agency != who.party_id:
            raise Forbidden(
                Problem(
                    "not_your_agency",
                    ("agency",),
                    t("You act for agency {party}, not {agency}", party=who.party_id, agency=agency),
                )
            )
        agency = who.party_id
    elif who.role is Role.ADMIN:
        if not agency:
            raise PermitError(Problem("required", ("agency",), t("Name the issuing agency")))
    else:
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not issue permits", role=who.role.value)))
    assert agency is not None
    p = _normalised(p)
    problems = model.check_permit(p, _known_code(session))
    if not any(pr.path[:1] in (("permit_type",), ("direction",)) for pr in problems):
        problems += _type_problems(session, agency, p.permit_type, p.direction)
    duplicate = session.scalar(select(PermitRow.id).where(PermitRow.number == p.number)) is not None
    dup = Problem("duplicate_number", ("number",), t("Permit number {permit} is already used", permit=p.number))
    if problems:
        raise PermitError([*problems, dup] if duplicate else problems)
    if duplicate:
        raise Conflict(dup)
    at = _now()
    row = PermitRow(
        number=p.number,
        agency=agency,
        permit_type=p.permit_type,
        direction=p.direction,
        holder=p.holder,
        holder_name=p.holder_name,
        codes=list(p.codes),
        quantity_allowance=p.quantity_allowance,
        quantity_unit=p.quantity_unit,
        quantity_used=Decimal(0),
        value_allowance=p.value_allowance,
        value_currency=p.value_currency,
        value_used=Decimal(0),
        valid_from=p.valid_from,
        valid_to=p.valid_to,
        conditions=p.conditions,
        status=ACTIVE,
        version=1,
        issued_at=at,
        issued_by=who.username,
        updated_at=at,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(dup) from exc
    _version(session, who, row, "issue", None)
    audit.record(session, who, "issue_permit", "permit", row.number, detail=_snapshot(row))
    return row


def _normalised(p: PermitInput) -> PermitInput:
    return PermitInput(
        number=(p.number or "").strip(),
        permit_type=(p.permit_type or "").strip().lower(),
        direction=(p.direction or "").strip().lower(),
        holder=(p.holder or "").strip(),
        codes=[model.normalise_code(c) for c in p.codes],
        valid_from=p.valid_from,
        valid_to=p.valid_to,
        quantity_allowance=p.quantity_allowance,
        quantity_unit=(p.quantity_unit or "").strip().lower() or None,
        value_allowance=p.value_allowance,
        value_currency=(p.value_currency or "").strip().upper() or None,
        holder_name=(p.holder_name or "").strip() or None,
        conditions=(p.conditions or "").strip() or None,
    )


def amend_permit(
    session: Session, who: Principal, number: str, changes: Mapping[str, Any], reason: str | None
) -> PermitRow:
    """The issuing agency amends a permit; the previous versions stay in its history."""
    row = _find(session, who, number, for_update=True)
    if not _can_manage(who, row):
        raise Forbidden(
            Problem(
                "not_your_permit",
                ("number",),
                t("Permit {permit} was issued by {agency}", permit=number, agency=row.agency),
            )
        )
    if row.status == REVOKED:
        raise Conflict(
            Problem("permit_revoked", ("number",), t("Permit {permit} is revoked; issue a new one", permit=number))
        )
    unknown = [k for k in changes if k not in _AMENDABLE]
    problems = [Problem("not_amendable", (k,), t("{field} cannot be amended", field=k)) for k in unknown]
    if not reason or not reason.strip():
        problems.append(Problem("reason_required", ("reason",), t("Say why the permit is amended")))
    current = {k: getattr(row, k) for k in _AMENDABLE}
    merged = {**current, **{k: v for k, v in changes.items() if k in _AMENDABLE}}
    p = _normalised(PermitInput(number=row.number, permit_type=row.permit_type, direction=row.direction, **merged))
    problems += model.check_permit(p, _known_code(session))
    if p.quantity_allowance is not None and 0 <= p.quantity_allowance < row.quantity_used:
        problems.append(
            Problem(
                "allowance_below_use",
                ("quantity_allowance",),
                t("{amount} already drawn", amount=f"{row.quantity_used} {row.quantity_unit}"),
            )
        )
    if p.value_allowance is not None and 0 <= p.value_allowance < row.value_used:
        problems.append(
            Problem(
                "allowance_below_use",
                ("value_allowance",),
                t("{amount} already drawn", amount=f"{row.value_currency} {row.value_used}"),
            )
        )
    if row.quantity_used and p.quantity_unit != row.quantity_unit:
        problems.append(
            Problem("unit_in_use", ("quantity_unit",), t("The unit cannot change once the allowance is drawn"))
        )
    if row.value_used and p.value_currency != row.value_currency:
        problems.append(Problem("unit_in_use", ("value_currency",), t("The currency cannot change once drawn")))
    if (row.quantity_used and p.quantity_allowance is None) or (row.value_used and p.value_allowance is None):
        problems.append(Problem("allowance_in_use", ("quantity_allowance",), t("A drawn allowance cannot be removed")))
    if problems:
        raise PermitError(problems)
    before = _snapshot(row)
    for k in _AMENDABLE:
        setattr(row, k, getattr(p, k) if k != "codes" else list(p.codes))
    after = _snapshot(row)
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changed:
        raise PermitError(Problem("no_change", (), t("The amendment changes nothing")))
    row.version += 1
    row.updated_at = _now()
    _version(session, who, row, "amend", reason)
    audit.record(
        session,
        who,
        "amend_permit",
        "permit",
        row.number,
        detail={"changed": changed, "version": row.version},
        note=reason,
    )
    return row


def revoke_permit(session: Session, who: Principal, number: str, reason: str | None) -> PermitRow:
    """Revoke a permit: declarations citing it from now on are held."""
    row = _find(session, who, number, for_update=True)
    if not _can_manage(who, row):
        raise Forbidden(
            Problem(
                "not_your_permit",
                ("number",),
                t("Permit {permit} was issued by {agency}", permit=number, agency=row.agency),
            )
        )
    if not reason or not reason.strip():
        raise PermitError(Problem("reason_required", ("reason",), t("Say why the permit is revoked")))
    if row.status == REVOKED:
        raise Conflict(Problem("already_revoked", ("number",), t("Permit {permit} is already revoked", permit=number)))
    row.status, row.revoked_at, row.revoke_reason = REVOKED, _now(), reason.strip()
    row.version += 1
    row.updated_at = row.revoked_at
    _version(session, who, row, "revoke", reason)
    audit.record(session, who, "revoke_permit", "permit", row.number, note=reason, detail={"version": row.version})
    return row


def get_permit(session: Session, who: Principal, number: str) -> PermitRow:
    return _find(session, who, number)


def list_permits(
    session: Session,
    who: Principal,
    *,
    agency: str | None = None,
    holder: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[PermitRow], int]:
    """Permits the caller may see: an agency its own, a trader those it holds, customs all."""
    conds: list[Any] = []
    if who.role is Role.AGENCY:
        conds.append(PermitRow.agency == (who.party_id or "\x00"))
    elif who.role is Role.TRADER:
        conds.append(PermitRow.holder == (who.party_id or "\x00"))
    elif who.role not in READERS:
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not list permits", role=who.role.value)))
    if agency:
        conds.append(PermitRow.agency == agency.upper())
    if holder:
        conds.append(PermitRow.holder == holder)
    if status:
        conds.append(PermitRow.status == status)
    where = and_(*conds) if conds else None
    stmt = select(PermitRow).order_by(PermitRow.issued_at.desc(), PermitRow.id.desc()).limit(limit).offset(offset)
    count = select(func.count()).select_from(PermitRow)
    if where is not None:
        stmt, count = stmt.where(where), count.where(where)
    return list(session.scalars(stmt)), int(session.scalar(count) or 0)


def history(session: Session, row: PermitRow) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(PermitVersionRow).where(PermitVersionRow.permit_id == row.id).order_by(PermitVersionRow.version)
    )
    return [
        {
            "version": v.version,
            "at": iso(v.at),
            "actor": v.actor,
            "action": v.action,
            "reason": v.reason,
            "permit": v.snapshot,
        }
        for v in rows
    ]


def usage(session: Session, row: PermitRow) -> list[dict[str, Any]]:
    rows = session.scalars(select(UsageRow).where(UsageRow.permit_id == row.id).order_by(UsageRow.id))
    return [_usage_view(u) for u in rows]


def _usage_view(u: UsageRow) -> dict[str, Any]:
    return {
        "reference": u.reference,
        "declaration_version": u.declaration_version,
        "line_no": u.line_no,
        "quantity": str(u.quantity),
        "value": str(u.value),
        "state": u.state,
        "at": iso(u.at),
        "updated_at": iso(u.updated_at),
    }


# ---------------------------------------------------------------------------------------------- the check


def _lines(decl: DeclarationIn) -> list[Line]:
    return [
        Line(
            i,
            item.line_no,
            model.normalise_code(item.tariff_code),
            item.quantity,
            item.quantity_unit,
            item.net_mass_kg,
            item.value,
            decl.currency,
            tuple(item.permits),
        )
        for i, item in enumerate(decl.items)
    ]


_PERMIT_COLS = (
    PermitRow.id,
    PermitRow.number,
    PermitRow.agency,
    PermitRow.permit_type,
    PermitRow.direction,
    PermitRow.holder,
    PermitRow.codes,
    PermitRow.valid_from,
    PermitRow.valid_to,
    PermitRow.status,
    PermitRow.quantity_allowance,
    PermitRow.quantity_unit,
    PermitRow.quantity_used,
    PermitRow.value_allowance,
    PermitRow.value_currency,
    PermitRow.value_used,
)


_LOAD_PERMITS = (
    select(*_PERMIT_COLS)
    .where(PermitRow.number.in_(bindparam("numbers", expanding=True)))
    .order_by(PermitRow.id)
    .with_for_update()
)
"""Built once: the filing path skips statement construction."""


def _load_permits(session: Session, numbers: Iterable[str]) -> dict[str, Permit]:
    """The permits with these numbers, locked for the rest of the transaction (id order: no deadlocks)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    out = {}
    seen = _balances(session)
    for r in session.execute(_LOAD_PERMITS, {"numbers": wanted}):
        seen[r.id] = _Balance(r.number, r.quantity_allowance, r.quantity_used, r.value_allowance, r.value_used)
        out[r.number] = Permit(
            r.id,
            r.number,
            r.agency,
            r.permit_type,
            r.direction,
            r.holder,
            tuple(r.codes or ()),
            r.valid_from,
            r.valid_to,
            r.status,
            r.quantity_allowance,
            r.quantity_unit,
            r.quantity_used,
            r.value_allowance,
            r.value_currency,
            r.value_used,
        )
    return out


def _converter(session: Session, on: date) -> model.Convert:
    from smartcustoms.clearance.service import fx_lookup
    from smartcustoms.platform.settings import get_settings

    fx = fx_lookup(session)
    national = get_settings().national_currency

    def rate(currency: str) -> Decimal | None:
        return Decimal(1) if currency == national else fx(currency, on)

    def convert(amount: Decimal, frm: str, to: str) -> Decimal | None:
        rf, rt = rate(frm), rate(to)
        if rf is None or not rt:
            return None
        return (amount * rf / rt).quantize(Decimal("0.01"))

    return convert


def _holder(decl: DeclarationIn) -> str:
    return decl.importer.id if decl.type.value == "import" else decl.exporter.id


def _own_usage(session: Session, reference: str) -> dict[int, tuple[Decimal, Decimal]]:
    """What a declaration (being amended) drew so far, per permit: it is given back before redrawing."""
    out: dict[int, tuple[Decimal, Decimal]] = {}
    for pid, qty, value in session.execute(
        select(UsageRow.permit_id, UsageRow.quantity, UsageRow.value).where(
            UsageRow.reference == reference, UsageRow.state.in_((RESERVED, FINAL))
        )
    ):
        q, v = out.get(pid, (Decimal(0), Decimal(0)))
        out[pid] = (q + qty, v + value)
    return out


def _evaluate(
    session: Session,
    decl: DeclarationIn,
    on: date,
    cache: dict[str, Any],
    *,
    reference: str | None,
    pending: Mapping[int, tuple[Decimal, Decimal]] | None = None,
) -> tuple[int, model.Evaluation] | None:
    """Evaluate a declaration against the registry and its cited permits; None when no line needs one."""
    if "swpermits.registry" not in cache:
        cache["swpermits.registry"] = requirement_index(session, fresh=False)
    version, index = cache["swpermits.registry"]
    if not len(index):
        return None
    direction = decl.type.value
    lines = _lines(decl)
    needing = [ln for ln in lines if index.find(ln.code, direction, on)]
    if not needing:
        return None
    permits = _load_permits(session, (n for ln in needing for n in ln.permits))
    own = _own_usage(session, reference) if reference else {}
    used: dict[int, tuple[Decimal, Decimal]] = {}
    for p in permits.values():
        q, v = p.quantity_used, p.value_used
        oq, ov = own.get(p.id, (Decimal(0), Decimal(0)))
        pq, pv = (pending or {}).get(p.id, (Decimal(0), Decimal(0)))
        used[p.id] = (q - oq + pq, v - ov + pv)
    evaluation = model.evaluate(
        needing, direction, _holder(decl), on, index, permits, used=used, convert=_converter(session, on)
    )
    return version, evaluation


def check_declaration(ctx: CheckContext, decl: DeclarationIn) -> list[Finding]:
    """The declaration check: each problem of a line needing a permit holds the filing."""
    from smartcustoms.clearance.checks import Finding
    from smartcustoms.clearance.lifecycle import Lane

    pending: dict[int, tuple[Decimal, Decimal]] = ctx.cache.setdefault("swpermits.pending", {})
    result = _evaluate(ctx.session, decl, ctx.on, ctx.cache, reference=ctx.reference, pending=pending)
    if result is None:
        return []
    version, ev = result
    for d in ev.draws:
        q, v = pending.get(d.permit_id, (Decimal(0), Decimal(0)))
        pending[d.permit_id] = (q + d.quantity, v + d.value)
    # the `stored` hook of this filing draws what the check allowed (same transaction, same object)
    ctx.session.info.setdefault(_PLANS, {})[id(decl)] = (decl, ev.draws)
    label = model.registry_label(version)
    return [
        Finding(
            model.SOURCE,
            p.code,
            p.message,
            ("items", p.index, "permits"),
            lane=Lane.C2,
            hold=True,
            score=p.score,
            version=label,
            detail=p.detail(),
        )
        for p in ev.problems
    ]


def reserve(session: Session, who: Principal, declarations: Sequence[Stored]) -> None:
    """Lifecycle hook `stored`: draw the allowances of each filing (amendments give back first)."""
    from smartcustoms.clearance.lifecycle import Status

    cache: dict[str, Any] = {}
    on = _now().date()
    plans: dict[int, tuple[DeclarationIn, list[model.Draw]]] = session.info.get(_PLANS, {})
    for s in declarations:
        if s.version > 1:
            _give_back(session, s.reference, (RESERVED, FINAL))
        plan = plans.pop(id(s.decl), None)
        if s.status is Status.REJECTED:
            continue
        if plan is not None and plan[0] is s.decl:
            draws = plan[1]
        else:  # filed without the check (e.g. checks switched off): evaluate now
            result = _evaluate(session, s.decl, on, cache, reference=None)
            draws = result[1].draws if result is not None else []
        if draws:
            _draw(session, s, draws, FINAL if s.status is Status.RELEASED else RESERVED)


@dataclass(frozen=True)
class _Balance:
    """A permit's allowances and what is drawn, as this transaction last read or wrote them."""

    number: str
    quantity_allowance: Decimal | None
    quantity_used: Decimal
    value_allowance: Decimal | None
    value_used: Decimal


def _balances(session: Session) -> dict[int, _Balance]:
    return session.info.setdefault(_BALANCES, {})


def _read_balances(session: Session, ids: Iterable[int]) -> dict[int, _Balance]:
    seen = _balances(session)
    for r in session.execute(
        select(
            PermitRow.id,
            PermitRow.number,
            PermitRow.quantity_allowance,
            PermitRow.quantity_used,
            PermitRow.value_allowance,
            PermitRow.value_used,
        )
        .where(PermitRow.id.in_(sorted(ids)))
        .order_by(PermitRow.id)
        .with_for_update()
    ):
        seen[r.id] = _Balance(r.number, r.quantity_allowance, r.quantity_used, r.value_allowance, r.value_used)
    return seen


def _draw(session: Session, s: Stored, draws: Sequence[model.Draw], state: str) -> None:
    """Add the draws to their permits with a compare-and-set update (the values the check read, locked)."""
    totals: dict[int, tuple[Decimal, Decimal]] = {}
    for d in draws:
        q, v = totals.get(d.permit_id, (Decimal(0), Decimal(0)))
        totals[d.permit_id] = (q + d.quantity, v + d.value)
    seen = _balances(session)
    if any(pid not in seen for pid in totals):
        seen = _read_balances(session, totals)
    table = _table(PermitRow)
    for pid, (dq, dv) in sorted(totals.items()):
        for attempt in (1, 2):
            b = seen[pid]
            if not (
                model.can_draw(b.quantity_allowance, b.quantity_used, dq)
                and model.can_draw(b.value_allowance, b.value_used, dv)
            ):
                raise Conflict(
                    Problem(
                        "allowance_taken",
                        ("items",),
                        t("Permit {permit}'s allowance was used by another filing; file again", permit=b.number),
                    )
                )
            new_q, new_v = b.quantity_used + dq, b.value_used + dv
            done = session.execute(
                update(table)
                .where(table.c.id == pid, table.c.quantity_used == b.quantity_used, table.c.value_used == b.value_used)
                .values(quantity_used=new_q, value_used=new_v)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                seen[pid] = replace(b, quantity_used=new_q, value_used=new_v)
                break
            if attempt == 2:
                raise Conflict(
                    Problem(
                        "allowance_taken",
                        ("items",),
                        t("Permit {permit} changed during the filing; file again", permit=b.number),
                    )
                )
            seen = _read_balances(session, [pid])
    at = _now()
    session.execute(
        insert(_table(UsageRow)),
        [
            {
                "permit_id": d.permit_id,
                "declaration_id": s.declaration_id,
                "reference": s.reference,
                "declaration_version": s.version,
                "line_no": d.line_no,
                "quantity": d.quantity,
                "value": d.value,
                "state": state,
                "at": at,
                "updated_at": at,
            }
            for d in draws
        ],
    )


def _give_back(session: Session, reference: str, states: tuple[str, ...]) -> None:
    rows = list(
        session.execute(
            select(UsageRow.id, UsageRow.permit_id, UsageRow.quantity, UsageRow.value).where(
                UsageRow.reference == reference, UsageRow.state.in_(states)
            )
        )
    )
    if not rows:
        return
    totals: dict[int, tuple[Decimal, Decimal]] = {}
    for _id, pid, q, v in rows:
        tq, tv = totals.get(pid, (Decimal(0), Decimal(0)))
        totals[pid] = (tq + q, tv + v)
    table = _table(PermitRow)
    current = {
        r.id: r
        for r in session.execute(
            select(table.c.id, table.c.quantity_used, table.c.value_used)
            .where(table.c.id.in_(sorted(totals)))
            .order_by(table.c.id)
            .with_for_update()
        )
    }
    seen = _balances(session)
    for pid, (q, v) in sorted(totals.items()):
        r = current[pid]
        seen.pop(pid, None)
        session.execute(
            update(table)
            .where(table.c.id == pid)
            .values(quantity_used=max(Decimal(0), r.quantity_used - q), value_used=max(Decimal(0), r.value_used - v))
        )
    usage_t = _table(UsageRow)
    session.execute(
        update(usage_t).where(usage_t.c.id.in_([r[0] for r in rows])).values(state=RETURNED, updated_at=_now())
    )


def moved(session: Session, row: DeclarationRow, action: Action, frm: Status, to: Status) -> None:
    """Lifecycle hook `moved`: release makes reservations final, rejection gives them back."""
    from smartcustoms.clearance.lifecycle import Status

    if to is Status.RELEASED:
        usage_t = _table(UsageRow)
        session.execute(
            update(usage_t)
            .where(usage_t.c.reference == row.reference, usage_t.c.state == RESERVED)
            .values(state=FINAL, updated_at=_now())
        )
    elif to is Status.REJECTED:
        _give_back(session, row.reference, (RESERVED,))


def declaration_panel(session: Session, who: Principal, d: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per line of a declaration: what the registry requires, permits cited, check result, drawn amounts."""
    payload = d.get("declaration") or {}
    items = payload.get("items") or []
    direction = payload.get("type", "import")
    _v, index = requirement_index(session)
    submitted = (d.get("submitted_at") or "")[:10]
    try:
        on = date.fromisoformat(submitted) if submitted else date.today()
    except ValueError:
        on = date.today()
    findings = [f for f in d.get("findings") or [] if f.get("source") == model.SOURCE]
    usage_rows = list(
        session.execute(
            select(UsageRow, PermitRow.number)
            .join(PermitRow, PermitRow.id == UsageRow.permit_id)
            .where(UsageRow.reference == d.get("reference"), UsageRow.state != RETURNED)
        )
    )
    lines = []
    for i, item in enumerate(items):
        reqs = index.find(str(item.get("tariff_code", "")), direction, on)
        problems = [f for f in findings if list(f.get("path") or [])[:2] == ["items", i]]
        drawn = [
            {"permit": number, "quantity": str(u.quantity), "value": str(u.value), "state": u.state}
            for u, number in usage_rows
            if u.line_no == item.get("line_no")
        ]
        if not reqs and not item.get("permits") and not problems:
            continue
        lines.append(
            {
                "line_no": item.get("line_no"),
                "tariff_code": item.get("tariff_code"),
                "requirements": [r.as_dict() for r in reqs],
                "permits": list(item.get("permits") or []),
                "problems": problems,
                "ok": not problems,
                "drawn": drawn,
            }
        )
    if not lines:
        return None
    return {"lines": lines, "version": model.registry_label(_v)}


# ---------------------------------------------------------------------------------------------- demo


_ABBR = {
    "quarantine_certificate": "QC",
    "plant_quarantine_certificate": "PQ",
    "food_import_permit": "FI",
    "drug_import_permit": "DI",
    "strategic_export_licence": "SHTC",
    "cites_permit": "CITES",
    "toxic_chemical_permit": "TC",
    "waste_import_permit": "WI",
    "waste_export_permit": "WE",
}


def demo_permit_number(agency: str, permit_type: str, party_id: str) -> str:
    """The number `seed_demo` gives the permit of one type that one demo party holds."""
    return f"{agency}-{_ABBR.get(permit_type, permit_type[:4].upper())}-{party_id}"


_demo_index: RequirementIndex | None = None


def demo_permits_for(party_id: str, tariff_code: str, direction: str = "import", on: date | None = None) -> list[str]:
    """Permit numbers a demo declaration line should cite (no database: reads the shipped CSV)."""
    global _demo_index
    if _demo_index is None:
        reqs, _problems = model.parse_requirements_csv(DEMO_REQUIREMENTS.read_text(encoding="utf-8"))
        _demo_index = RequirementIndex(reqs)
    reqs = _demo_index.find(tariff_code, direction, on or date.today())
    return [demo_permit_number(r.agency, r.permit_type, party_id) for r in reqs]


DEMO_PARTIES = tuple(["TW10000001", *(f"TW{10000000 + n}" for n in range(2, 41))])
"""The importers of `clearance.demo` (trader1 is TW10000001)."""


def seed_demo(session: Session) -> dict[str, int]:
    """Demo data: the illustrative requirements registry and, for every demo importer, a permit of each
    import type the registry names (so demo filings that cite them pass), plus a few with problems for
    TW10000001: one nearly used up, one expired, one revoked. Idempotent."""
    from smartcustoms.tariff.service import ensure_default_schedule

    ensure_default_schedule(session)
    report = import_requirements(
        session, SYSTEM, DEMO_REQUIREMENTS.read_text(encoding="utf-8"), source=DEMO_REQUIREMENTS.name
    )
    _v, index = requirement_index(session)
    today = _now().date()
    by_type: dict[tuple[str, str, str], list[str]] = {}
    for reqs in index.by_prefix.values():
        for r in reqs:
            by_type.setdefault((r.agency, r.permit_type, r.direction), []).append(r.code_prefix)
    existing = set(session.scalars(select(PermitRow.number)))
    issued = 0
    start = date(today.year - 1, 1, 1)
    end = date(today.year + 1, 12, 31)
    for party in DEMO_PARTIES:
        for (agency, ptype, direction), prefixes in sorted(by_type.items()):
            if direction != "import":
                continue
            number = demo_permit_number(agency, ptype, party)
            if number in existing:
                continue
            p = PermitInput(
                number=number,
                permit_type=ptype,
                direction=direction,
                holder=party,
                codes=sorted(set(prefixes)),
                valid_from=start,
                valid_to=end,
                quantity_allowance=Decimal(500000),
                quantity_unit="kg",
                conditions="Demo permit (illustrative).",
            )
            issue_permit(session, SYSTEM, p, agency=agency)
            issued += 1
    extras = [
        PermitInput(
            "BAPHIQ-QC-DEMO-LOW",
            "quarantine_certificate",
            "import",
            "TW10000001",
            ["0201", "0202"],
            start,
            end,
            Decimal(50),
            "kg",
            conditions="Nearly used up (demo).",
        ),
        PermitInput(
            "TFDA-FI-DEMO-OLD",
            "food_import_permit",
            "import",
            "TW10000001",
            ["02", "03"],
            date(today.year - 2, 1, 1),
            date(today.year - 1, 6, 30),
            Decimal(1000),
            "kg",
            conditions="Expired (demo).",
        ),
        PermitInput(
            "FANCA-CITES-DEMO-01",
            "cites_permit",
            "import",
            "TW10000001",
            ["4403", "4407"],
            start,
            end,
            value_allowance=Decimal(200000),
            value_currency="USD",
        ),
    ]
    for p in extras:
        if p.number not in existing:
            issue_permit(session, SYSTEM, p, agency=p.number.split("-")[0])
            issued += 1
    if "FANCA-CITES-DEMO-01" not in existing:
        revoke_permit(
            session, SYSTEM, "FANCA-CITES-DEMO-01", "Exporting country suspended trade in this species (demo)"
        )
    return {"requirements": report["rows"], "permits_issued": issued}
