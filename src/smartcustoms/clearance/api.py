"""HTTP routes of the clearance core: filing, reading, officer decisions, admin configuration."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from smartcustoms.clearance import config, service, views
from smartcustoms.clearance.committer import committer
from smartcustoms.clearance.fastpath import filing_response
from smartcustoms.clearance.lifecycle import Lane, Status
from smartcustoms.clearance.schema import DecisionIn, DeclarationIn, InspectionIn
from smartcustoms.platform import audit, auth, i18n
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.web import client_addr, forget_tokens, principal, request_language, require

router = APIRouter()


class FastJSON(Response):
    """JSON rendered by orjson straight to bytes: the hot paths skip response-model validation."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


def _localise(request: Request, response: Response, view: dict[str, Any]) -> dict[str, Any]:
    """`view` (not changed: it may be shared) plus its `localized` block when the caller reads another language."""
    lang = request_language(request)
    response.headers["Content-Language"] = lang
    return view | {"localized": views.localised_view(view, lang)} if lang != i18n.DEFAULT else view


Who = Annotated[Principal, Depends(principal)]
Officer = Annotated[Principal, Depends(require(Role.OFFICER, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


@router.post("/declarations", status_code=201, tags=["declarations"], response_class=FastJSON)
def submit_declaration(decl: DeclarationIn, who: Who, request: Request) -> Response:
    """File a declaration. Every validation problem comes back at once (422). Same LRN + content: 200 with the first filing.

    Well-formed filings are usually answered by `clearance.fastpath` before reaching this route; both answer alike.
    """
    out, created = committer().submit(who, decl, remote_addr=client_addr(request))
    answer = filing_response(request, out, created, who.language)
    return Response(
        answer["body"], status_code=answer["status"], headers=answer["headers"], media_type="application/json"
    )


class DeclarationQuery(BaseModel):
    """Filters of the declarations list. An unknown parameter is refused (422) rather than ignored: a
    misspelt filter would otherwise list everything the caller may see."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    lane: Lane | None = None
    office: str | None = Field(None, max_length=8)
    importer: str | None = Field(None, max_length=35)
    declarant: str | None = Field(None, max_length=35)
    lrn: str | None = Field(None, min_length=1, max_length=35, description="The declarant's own reference")
    hs_chapter: str | None = Field(None, pattern=r"^\d{2}$")
    date_from: date | None = None
    date_to: date | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)
    lang: str | None = Field(None, max_length=35, description="Language of error messages")


@router.get("/declarations", tags=["declarations"])
def list_declarations(who: Who, q: Annotated[DeclarationQuery, Query()]) -> dict[str, Any]:
    """Declarations the caller may see (a trader or broker: only their own), newest first. `lrn` finds a
    filing by its local reference (with `declarant`; a trader's or broker's own by default)."""
    filters = service.Filters(
        q.status.value if q.status else None,
        q.lane.value if q.lane else None,
        q.office,
        q.importer,
        q.hs_chapter,
        q.date_from,
        q.date_to,
        q.declarant,
        q.lrn,
    )
    with unit_of_work() as session:
        rows, total = service.list_rows(session, who, filters, limit=q.limit, offset=q.offset)
        return {"total": total, "limit": q.limit, "offset": q.offset, "items": [views.summary(r) for r in rows]}


@router.get("/declarations/{reference}", tags=["declarations"])
def get_declaration(reference: str, who: Who, request: Request, response: Response) -> dict[str, Any]:
    """A declaration with its assessment and lane reasons (`localized` adds them in the caller's language)."""
    with unit_of_work() as session:
        view = views.detail(service.get_row(session, who, reference))
    return _localise(request, response, view)


@router.get("/declarations/{reference}/timeline", tags=["declarations"])
def get_timeline(reference: str, who: Who) -> dict[str, Any]:
    """Every step with its time and actor, inspections and all filed versions."""
    with unit_of_work() as session:
        row, events, inspections, versions = service.timeline(session, who, reference)
        return {
            "reference": row.reference,
            "status": row.status,
            "events": [views.event(e) for e in events],
            "inspections": [views.inspection(i) for i in inspections],
            "versions": [views.version(v) for v in versions],
        }


@router.get("/declarations/{reference}/release-note", tags=["declarations"])
def get_release_note(reference: str, who: Who, request: Request, response: Response) -> dict[str, Any]:
    """The release note; `title` and `statement` are in the caller's language (`?lang=`, Accept-Language)."""
    with unit_of_work() as session:
        note = service.release_note(session, who, reference)
    lang = request_language(request)
    response.headers["Content-Language"] = lang
    for key in ("title", "statement"):
        if key in note:
            note[key] = i18n.translate(note[key], lang)
    return note


class AmendmentIn(BaseModel):
    declaration: DeclarationIn
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


@router.put("/declarations/{reference}", tags=["declarations"])
def amend_declaration(
    reference: str, body: AmendmentIn, who: Who, request: Request, response: Response
) -> dict[str, Any]:
    """Amend a declaration (when an officer asked for it, or while under check or held)."""
    with unit_of_work() as session:
        row = service.amend(session, who, reference, body.declaration, body.reason, remote_addr=client_addr(request))
        view = views.detail(row)
    return _localise(request, response, view)


@router.post("/declarations/{reference}/decisions", tags=["officer"])
def record_decision(
    reference: str, decision: DecisionIn, who: Officer, request: Request, response: Response
) -> dict[str, Any]:
    """release, hold (reason), request_amendment (reason), reject (reason), escalate, resume."""
    with unit_of_work() as session:
        view = views.detail(service.decide(session, who, reference, decision, remote_addr=client_addr(request)))
    return _localise(request, response, view)


@router.post("/declarations/{reference}/inspection", tags=["officer"])
def record_inspection(
    reference: str, result: InspectionIn, who: Officer, request: Request, response: Response
) -> dict[str, Any]:
    with unit_of_work() as session:
        row = service.record_inspection(session, who, reference, result, remote_addr=client_addr(request))
        view = views.detail(row)
    return _localise(request, response, view)


@router.get("/queue", tags=["officer"])
def queue(
    who: Officer,
    request: Request,
    response: Response,
    lane: Lane | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Declarations waiting for an officer (C2 documentary checks, C3 inspections, held), riskiest first."""
    with unit_of_work() as session:
        rows = service.officer_queue(session, who, lane.value if lane else None, limit=limit)
        items = [views.summary(r) | {"lane_reasons": r.lane_reasons} for r in rows]
    lang = request_language(request)
    response.headers["Content-Language"] = lang
    if lang != i18n.DEFAULT:
        for item in items:
            item["localized"] = {"lang": lang, "lane_reasons": i18n.translate_all(item["lane_reasons"] or (), lang)}
    return {"items": items}


@router.get("/stats/release-times", tags=["officer"])
def release_times(
    who: Annotated[Principal, Depends(require(Role.OFFICER, Role.ANALYST, Role.ADMIN))],
) -> dict[str, Any]:
    """Time Release Study: median and p90 seconds per stage and lane."""
    with unit_of_work() as session:
        return service.release_time_stats(session, who)


# ---------------------------------------------------------------------------------------------- auth & admin


class LoginIn(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


@router.post("/auth/login", tags=["auth"])
def login(body: LoginIn) -> dict[str, Any]:
    """Exchange a console password for a 12-hour bearer token."""
    with unit_of_work() as session:
        who, token = auth.sign_in(session, body.username, body.password)
    return {"token": token, "username": who.username, "role": who.role.value}


@router.get("/auth/me", tags=["auth"])
def me(who: Who) -> dict[str, Any]:
    return {"username": who.username, "role": who.role.value, "party_id": who.party_id, "language": who.language}


class UserIn(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    role: str
    display_name: str | None = None
    party_id: str | None = None
    password: str | None = None
    language: str = "en"


@router.post("/admin/users", status_code=201, tags=["admin"])
def add_user(body: UserIn, who: Admin, request: Request) -> dict[str, Any]:
    """Create a user and return its first API token (shown once, stored hashed)."""
    with unit_of_work() as session:
        user = auth.create_user(
            session,
            body.username,
            body.role,
            display_name=body.display_name,
            party_id=body.party_id,
            password=body.password,
            language=body.language,
        )
        token = auth.issue_token(session, user)
        audit.record(
            session,
            who,
            "add_user",
            "user",
            body.username,
            remote_addr=client_addr(request),
            detail={"role": body.role},
        )
    return {"username": body.username, "role": body.role, "token": token}


class UserPatch(BaseModel):
    role: str | None = None
    active: bool | None = None
    display_name: str | None = None
    language: str | None = None


@router.get("/admin/users", tags=["admin"])
def list_users(who: Admin) -> dict[str, Any]:
    with unit_of_work() as session:
        return {"items": [auth.user_view(u) for u in auth.list_users(session)]}


@router.patch("/admin/users/{username}", tags=["admin"])
def change_user(username: str, body: UserPatch, who: Admin, request: Request) -> dict[str, Any]:
    """Change a user's role, display name, language, or deactivate them (their tokens stop working)."""
    with unit_of_work() as session:
        user = auth.update_user(session, username, **body.model_dump(exclude_none=True))
        audit.record(
            session,
            who,
            "change_user",
            "user",
            username,
            remote_addr=client_addr(request),
            detail=body.model_dump(exclude_none=True),
        )
        out = auth.user_view(user)
    forget_tokens()
    return out


@router.get("/admin/audit", tags=["admin"])
def audit_log(
    who: Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST))],
    entity_id: str | None = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The append-only audit log, newest first: who did what, when, from where."""
    with unit_of_work() as session:
        return {"items": audit.query(session, entity_id=entity_id, actor=actor, limit=limit, offset=offset)}


@router.post("/admin/users/{username}/tokens", status_code=201, tags=["admin"])
def add_token(username: str, who: Admin) -> dict[str, Any]:
    with unit_of_work() as session:
        token = auth.issue_token(session, auth.find_user(session, username))
        audit.record(session, who, "issue_token", "user", username)
    return {"username": username, "token": token}


@router.delete("/admin/users/{username}/tokens", tags=["admin"])
def revoke_tokens(username: str, who: Admin) -> dict[str, Any]:
    with unit_of_work() as session:
        n = auth.revoke_tokens(session, username)
        audit.record(session, who, "revoke_tokens", "user", username, detail={"count": n})
    forget_tokens()
    return {"username": username, "revoked": n}


class FxRateIn(BaseModel):
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    valid_from: date
    rate: Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]


class FxRatesIn(BaseModel):
    source: Annotated[str, Field(min_length=1, max_length=64)] = "api"
    rates: Annotated[list[FxRateIn], Field(min_length=1, max_length=10000)]


@router.post("/admin/exchange-rates", tags=["admin"])
def load_exchange_rates(body: FxRatesIn, who: Admin) -> dict[str, Any]:
    """Load exchange rates: national currency per one unit of the foreign currency, valid from a day."""
    with unit_of_work() as session:
        n = service.load_fx_rates(
            session, who, [(r.currency.upper(), r.valid_from, r.rate) for r in body.rates], body.source
        )
    return {"loaded": n}


@router.get("/admin/settings/{key}", tags=["admin"])
def get_setting(
    key: str, who: Annotated[Principal, Depends(require(Role.ADMIN, Role.ANALYST, Role.OFFICER))]
) -> dict[str, Any]:
    with unit_of_work() as session:
        if key not in config.KEYS:
            raise DomainError(
                Problem(
                    "unknown_setting",
                    ("key",),
                    t("Unknown setting '{key}'; one of {allowed}", key=key, allowed=", ".join(config.KEYS)),
                )
            )
        return config.as_dict(config.get(session, key))


@router.put("/admin/settings/{key}", tags=["admin"])
def put_setting(key: str, body: dict[str, Any], who: Admin) -> dict[str, Any]:
    """Change lane rules, tax rules or plausibility limits; applies to declarations filed from now on."""
    with unit_of_work() as session:
        value = config.put(session, who, key, body)
        audit.record(session, who, "put_setting", "setting", key, detail=body)
        return config.as_dict(value)


class AeoIn(BaseModel):
    level: str = "AEO"
    valid_from: date
    valid_to: date | None = None


@router.put("/admin/aeo/{party_id}", tags=["admin"])
def put_aeo(party_id: str, body: AeoIn, who: Admin) -> dict[str, Any]:
    with unit_of_work() as session:
        service.set_aeo(session, who, party_id, body.level, body.valid_from, body.valid_to)
    return {"party_id": party_id, "level": body.level}
