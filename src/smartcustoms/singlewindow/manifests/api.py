"""HTTP API of the manifests part: carriers file advance cargo information; officers follow up."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.types import iso
from smartcustoms.platform.web import client_addr, principal, require
from smartcustoms.singlewindow.manifests import service

router = APIRouter(tags=["manifests"])


class PartyIn(BaseModel):
    name: str
    id: str | None = None


class ContainerIn(BaseModel):
    number: str = Field(description="ISO 6346 container number, check digit included")
    seals: list[str] = []


class LineIn(BaseModel):
    line_no: int | None = None
    doc_type: str = Field("BL", description="BL, AWB, CMR, CIM or POST")
    doc_ref: str = Field(description="Bill of lading or air waybill number")
    shipper: PartyIn
    consignee: PartyIn
    description: str
    packages: int
    package_type: str | None = None
    gross_weight_kg: str
    containers: list[ContainerIn] = []


class ManifestIn(BaseModel):
    """Advance cargo information for one voyage or flight at one port (documentation of the body)."""

    voyage: str = Field(description="Voyage or flight number")
    mode: str = Field(description="sea, air, rail, road, post, fixed or inland_water")
    port: str = Field(description="UN/LOCODE of the port of arrival")
    means_id: str | None = Field(None, description="Vessel name/IMO or aircraft registration")
    expected_arrival: datetime
    lines: list[LineIn]


_MANIFEST_BODY = {"requestBody": {"content": {"application/json": {"schema": ManifestIn.model_json_schema()}}}}


class ReplaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manifest: dict[str, Any]
    reason: str | None = Field(None, max_length=2000)


class ArrivalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: datetime | None = None


@router.post("/manifests", status_code=201, openapi_extra=_MANIFEST_BODY)
def post_manifest(
    request: Request,
    body: Annotated[dict[str, Any], Body()],
    carrier: str | None = Query(None, description="Carrier code (administrators filing for a carrier)"),
    who: Principal = Depends(require(Role.CARRIER, Role.ADMIN)),
) -> dict[str, Any]:
    """File a manifest. Every problem of the body is listed at once (paths like `lines[3].packages`);
    nothing is stored unless the whole manifest is valid. The reply carries the matching summary."""
    with unit_of_work() as session:
        row, summary = service.file_manifest(session, who, body, carrier=carrier, remote_addr=client_addr(request))
        return {**service.manifest_view(row), "matching": summary.as_dict()}


@router.get("/manifests")
def get_manifests(
    port: str | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Manifests the caller may see (a carrier: its own), each with its count of undeclared lines."""
    with unit_of_work() as session:
        rows, total = service.list_manifests(session, who, port=port, limit=limit, offset=offset)
        return {
            "total": total,
            "manifests": [{**service.manifest_view(r), "unmatched_lines": n} for r, n in rows],
        }


@router.get("/manifests/follow-up")
def get_follow_up(
    days: int | None = Query(None, description="Days after arrival (default: the rules' follow_up_days)"),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Manifest lines that no declaration covers some days after arrival: cargo to follow up."""
    with unit_of_work() as session:
        found = service.follow_up(session, who, days=days)
        return {
            "count": len(found),
            "lines": [
                {
                    "manifest": m.reference,
                    "carrier": m.carrier,
                    "voyage": m.voyage,
                    "port": m.port,
                    "arrival": iso(m.arrived_at or m.expected_arrival),
                    "days_since_arrival": age,
                    **service.line_view(ln),
                }
                for m, ln, age in found
            ],
        }


@router.get("/manifests/rules")
def get_rules(_who: Principal = Depends(require(Role.OFFICER, Role.ANALYST, Role.ADMIN))) -> dict[str, Any]:
    with unit_of_work() as session:
        rules = service.current_rules(session)
        return {"version": rules.label, **rules.as_dict()}


@router.put("/manifests/rules")
def put_rules(body: Annotated[dict[str, Any], Body()], who: Principal = Depends(require(Role.ADMIN))) -> dict[str, Any]:
    """Tolerances, lanes, scores and holds of the matching (a new rules version)."""
    with unit_of_work() as session:
        rules = service.set_rules(session, who, body)
        return {"version": rules.label, **rules.as_dict()}


@router.post("/manifests/sweep")
def post_sweep(who: Principal = Depends(require(Role.OFFICER, Role.ADMIN))) -> dict[str, Any]:
    """Flag sea/air imports filed before arrival that still have no manifest line once arrived."""
    with unit_of_work() as session:
        flagged = service.flag_missing(session, who)
        return {"flagged": flagged}


@router.get("/manifests/{reference}")
def get_manifest(reference: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    with unit_of_work() as session:
        row, lines = service.read_manifest(session, who, reference)
        return service.manifest_view(row, lines=lines)


@router.put("/manifests/{reference}")
def put_manifest(
    request: Request, reference: str, body: ReplaceIn, who: Principal = Depends(require(Role.CARRIER, Role.ADMIN))
) -> dict[str, Any]:
    """Replace a manifest before arrival; the previous version is kept and the lines are matched again."""
    with unit_of_work() as session:
        row, summary = service.replace_manifest(
            session, who, reference, body.manifest, reason=body.reason, remote_addr=client_addr(request)
        )
        return {**service.manifest_view(row), "matching": summary.as_dict()}


@router.post("/manifests/{reference}/arrival")
def post_arrival(reference: str, body: ArrivalIn | None = None, who: Principal = Depends(principal)) -> dict[str, Any]:
    with unit_of_work() as session:
        row = service.record_arrival(session, who, reference, body.at if body else None)
        return service.manifest_view(row)


@router.get("/manifests/{reference}/versions")
def get_versions(reference: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    with unit_of_work() as session:
        rows = service.versions(session, who, reference)
        return {
            "reference": reference,
            "versions": [
                {"version": v.version, "at": iso(v.at), "actor": v.actor, "reason": v.reason, "manifest": v.payload}
                for v in rows
            ],
        }


@router.get("/declarations/{reference}/manifest-lines")
def get_declaration_lines(reference: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    """The manifest lines that cover a declaration (for whoever may see the declaration)."""
    from smartcustoms.clearance.service import get_row as declaration_row

    with unit_of_work() as session:
        declaration_row(session, who, reference)
        return {
            "reference": reference,
            "lines": [
                {"manifest": m.reference, "voyage": m.voyage, "port": m.port, **service.line_view(ln)}
                for m, ln in service.lines_of_declaration(session, reference)
            ],
        }
