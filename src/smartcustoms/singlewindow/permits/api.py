"""HTTP API of permits: the requirements registry (read by all, edited by admins) and permits that
agencies issue, amend and revoke; officers read all, a trader the permits it holds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import principal, require
from smartcustoms.singlewindow.permits import service
from smartcustoms.singlewindow.permits.model import PermitInput

router = APIRouter(prefix="/singlewindow/permits", tags=["single window: permits"])

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Amount = Annotated[Decimal, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequirementIn(Strict):
    code_prefix: Short = Field(description="Tariff code prefix, 2-12 digits")
    direction: Short = Field(description="import or export")
    agency: Short = Field(description="Agency code, e.g. BAPHIQ")
    permit_type: Short = Field(description="e.g. quarantine_certificate")
    title: Short
    valid_from: date
    valid_to: date | None = None
    legal_basis: Short | None = None


class RequirementPatch(Strict):
    code_prefix: Short | None = None
    direction: Short | None = None
    agency: Short | None = None
    permit_type: Short | None = None
    title: Short | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    legal_basis: Short | None = None


class RequirementOut(BaseModel):
    id: int | None
    code_prefix: str
    direction: str
    agency: str
    permit_type: str
    title: str
    valid_from: date
    valid_to: date | None
    legal_basis: str | None


class RequirementsImportIn(Strict):
    csv: Annotated[str, StringConstraints(max_length=5_000_000)] = Field(description="CSV text with a header row")
    replace: bool = Field(False, description="Remove requirements that are not in the file")


class PermitIn(Strict):
    number: Short
    agency: Short | None = Field(None, description="Administrators only: the issuing agency")
    permit_type: Short
    direction: Short
    holder: Short = Field(description="Party id of the holder (importer or exporter)")
    holder_name: Short | None = None
    codes: list[Short] = Field(max_length=200, description="Covered tariff code prefixes")
    quantity_allowance: Amount | None = None
    quantity_unit: Short | None = None
    value_allowance: Amount | None = None
    value_currency: Short | None = None
    valid_from: date
    valid_to: date
    conditions: Annotated[str, StringConstraints(max_length=4000)] | None = None


class PermitPatch(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = Field(
        description="Why the permit is amended (kept in its history)"
    )
    holder: Short | None = None
    holder_name: Short | None = None
    codes: list[Short] | None = Field(None, max_length=200)
    quantity_allowance: Amount | None = None
    quantity_unit: Short | None = None
    value_allowance: Amount | None = None
    value_currency: Short | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    conditions: Annotated[str, StringConstraints(max_length=4000)] | None = None


class RevokeIn(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class PermitOut(BaseModel):
    number: str
    agency: str
    permit_type: str
    direction: str
    holder: str
    holder_name: str | None
    codes: list[str]
    quantity_allowance: str | None
    quantity_unit: str | None
    quantity_used: str | None
    quantity_left: str | None
    value_allowance: str | None
    value_currency: str | None
    value_used: str | None
    value_left: str | None
    valid_from: date
    valid_to: date
    conditions: str | None
    status: str
    version: int
    issued_at: str | None
    issued_by: str
    updated_at: str | None
    revoked_at: str | None
    revoke_reason: str | None


class PermitDetailOut(PermitOut):
    history: list[dict[str, Any]]
    usage: list[dict[str, Any]]


class PermitListOut(BaseModel):
    total: int
    permits: list[PermitOut]


def _req_out(r: Any) -> RequirementOut:
    return RequirementOut(**r.as_dict())


@router.get("/requirements", response_model=list[RequirementOut])
def get_requirements(
    code: str | None = Query(None, max_length=14, description="Only those applying to this tariff code"),
    direction: str | None = Query(None, pattern="^(import|export)$"),
    date_: date | None = Query(None, alias="date", description="Valid on this day (default: all; with code: today)"),
    _who: Principal = Depends(principal),
) -> list[RequirementOut]:
    """The regulatory requirements registry: which agency must issue what, per code prefix and direction."""
    with unit_of_work() as session:
        return [_req_out(r) for r in service.list_requirements(session, code=code, direction=direction, on=date_)]


@router.post("/requirements", response_model=RequirementOut, status_code=201)
def post_requirement(body: RequirementIn, who: Principal = Depends(require(Role.ADMIN))) -> RequirementOut:
    with unit_of_work() as session:
        return _req_out(service.add_requirement(session, who, body.model_dump()))


@router.patch("/requirements/{req_id}", response_model=RequirementOut)
def patch_requirement(
    req_id: int, body: RequirementPatch, who: Principal = Depends(require(Role.ADMIN))
) -> RequirementOut:
    with unit_of_work() as session:
        return _req_out(service.update_requirement(session, who, req_id, body.model_dump(exclude_unset=True)))


@router.delete("/requirements/{req_id}", status_code=204)
def delete_requirement(req_id: int, who: Principal = Depends(require(Role.ADMIN))) -> Response:
    with unit_of_work() as session:
        service.delete_requirement(session, who, req_id)
    return Response(status_code=204)


@router.post("/requirements/import")
def post_requirements_import(
    body: RequirementsImportIn, who: Principal = Depends(require(Role.ADMIN))
) -> dict[str, int]:
    """Load requirements from CSV text: every malformed row is reported with its line number, nothing written."""
    with unit_of_work() as session:
        return service.import_requirements(session, who, body.csv, replace=body.replace, source="api")


@router.get("", response_model=PermitListOut)
def get_permits(
    agency: str | None = Query(None, max_length=16),
    holder: str | None = Query(None, max_length=35),
    status: str | None = Query(None, pattern="^(active|revoked)$"),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
    who: Principal = Depends(principal),
) -> PermitListOut:
    """Permits the caller may see: an agency its own, a trader those it holds, customs staff all."""
    with unit_of_work() as session:
        rows, total = service.list_permits(
            session, who, agency=agency, holder=holder, status=status, limit=limit, offset=offset
        )
        return PermitListOut(total=total, permits=[PermitOut(**service.permit_view(r)) for r in rows])


@router.post("", response_model=PermitOut, status_code=201)
def post_permit(body: PermitIn, who: Principal = Depends(require(Role.AGENCY, Role.ADMIN))) -> PermitOut:
    """Issue a permit (agency: as itself; administrator: naming the agency)."""
    data = body.model_dump(exclude={"agency"})
    with unit_of_work() as session:
        row = service.issue_permit(session, who, PermitInput(**data), agency=body.agency)
        return PermitOut(**service.permit_view(row))


@router.get("/{number}", response_model=PermitDetailOut)
def get_permit(number: str, who: Principal = Depends(principal)) -> PermitDetailOut:
    """A permit with its amendment history and what declarations drew from it."""
    with unit_of_work() as session:
        row = service.get_permit(session, who, number)
        return PermitDetailOut(
            **service.permit_view(row), history=service.history(session, row), usage=service.usage(session, row)
        )


@router.patch("/{number}", response_model=PermitOut)
def patch_permit(
    number: str, body: PermitPatch, who: Principal = Depends(require(Role.AGENCY, Role.ADMIN))
) -> PermitOut:
    """Amend a permit (its issuing agency); the previous version stays in the history."""
    changes = body.model_dump(exclude_unset=True, exclude={"reason"})
    with unit_of_work() as session:
        row = service.amend_permit(session, who, number, changes, body.reason)
        return PermitOut(**service.permit_view(row))


@router.post("/{number}/revoke", response_model=PermitOut)
def post_revoke(number: str, body: RevokeIn, who: Principal = Depends(require(Role.AGENCY, Role.ADMIN))) -> PermitOut:
    with unit_of_work() as session:
        row = service.revoke_permit(session, who, number, body.reason)
        return PermitOut(**service.permit_view(row))
