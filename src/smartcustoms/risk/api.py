"""HTTP routes of the risk engine: validate and try targeting rules, assess a declaration, the stored
targeting rules (versioned, audited), the risk queue, the model registry and the audit selection.

No business logic here: parsing and evaluation live in `model.py`, scoring in `assessor.py`, use cases in
`service.py`. The model comes from the registry directory named by SMARTCUSTOMS_RISK_REGISTRY (default
`var/risk/models`).
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import require
from smartcustoms.risk.model import parse_rules_text

router = APIRouter(prefix="/risk", tags=["risk"])


class RulesDocument(BaseModel):
    document: str = Field(description="Rules as YAML or JSON text")
    format: Literal["auto", "yaml", "json"] = "auto"


class RulesValidated(BaseModel):
    version: str
    rules: list[str]


class RuleTry(RulesDocument):
    declaration: dict[str, Any]


class RuleHitOut(BaseModel):
    rule_id: str
    version: int
    lane: str | None
    score: float | None
    reason: str


class ItemIn(BaseModel):
    hs_code: str
    origin: str
    net_mass_kg: Decimal
    value: Decimal
    tax_rate: Decimal | None = None


class DeclarationIn(BaseModel):
    declaration_id: str | None = None
    importer_id: str
    declarant_id: str
    seller_id: str | None = None
    office: str | None = None
    transport_mode: str | None = None
    aeo: bool = False
    items: list[ItemIn] = Field(min_length=1)


class LaneDecisionOut(BaseModel):
    lane: str
    score: float
    reasons: list[str]
    versions: list[str]
    expected_revenue: float = 0.0


@lru_cache(maxsize=4)
def _assessor(root: str, version: str) -> Any:
    """The assessor of the active version, loaded once (a rollback changes the key)."""
    from smartcustoms.risk.assessor import ModelLaneAssessor
    from smartcustoms.risk.registry import ModelRegistry

    return ModelLaneAssessor(ModelRegistry(root).load(version or None))


@router.post("/rules/validate", response_model=RulesValidated)
def validate_rules(body: RulesDocument, _who: Principal = Depends(require(Role.ANALYST, Role.ADMIN))) -> RulesValidated:
    """Parse a rules document; 422 lists every problem with its path."""
    rs = parse_rules_text(body.document, body.format)
    return RulesValidated(version=rs.version, rules=[r.ref for r in rs.rules])


@router.post("/rules/try", response_model=list[RuleHitOut])
def try_rules(
    body: RuleTry, _who: Principal = Depends(require(Role.ANALYST, Role.OFFICER, Role.ADMIN))
) -> list[RuleHitOut]:
    """Which rules of a document fire on one declaration (fields and derived features)."""
    from smartcustoms.risk.model import evaluate_rules

    rs = parse_rules_text(body.document, body.format)
    return [RuleHitOut(**h.__dict__) for h in evaluate_rules(rs, body.declaration)]


@router.post("/assess", response_model=LaneDecisionOut)
def assess(
    body: DeclarationIn, _who: Principal = Depends(require(Role.OFFICER, Role.ANALYST, Role.ADMIN))
) -> LaneDecisionOut:
    """Lane, score, reasons and versions for one declaration with the active model."""
    from smartcustoms.risk.registry import ModelRegistry

    registry = ModelRegistry(os.environ.get("SMARTCUSTOMS_RISK_REGISTRY", "var/risk/models"))
    decision = _assessor(str(registry.root), registry.active_version() or "").assess(body.model_dump())
    return LaneDecisionOut(**decision.__dict__)


# ---------------------------------------------------------------------------------------------- stored rules

ANALYSTS = require(Role.ANALYST, Role.ADMIN)
CUSTOMS = require(Role.OFFICER, Role.ANALYST, Role.ADMIN)


class TargetingRuleIn(BaseModel):
    """A rule as the editor sends it; `when` is the condition as YAML/JSON text or as a mapping."""

    rule_id: str = ""
    reason: str = ""
    when: str | dict[str, Any] = ""
    lane: str = ""
    score: float | str | None = None
    valid_from: str = ""
    valid_to: str = ""
    note: str = ""

    def form(self) -> Any:
        import json

        from smartcustoms.risk.service import RuleForm

        when = self.when if isinstance(self.when, str) else json.dumps(self.when)
        score = "" if self.score is None else str(self.score)
        return RuleForm(self.rule_id, self.reason, when, self.lane, score, self.valid_from, self.valid_to, self.note)


class TargetingRuleOut(BaseModel):
    rule_id: str
    version: int
    enabled: bool
    reason: str
    lane: str
    score: str
    valid_from: str
    valid_to: str
    when: Any = Field(validation_alias="when_json")
    created_by: str
    note: str
    ref: str


class Toggle(BaseModel):
    note: str = ""


def _addr(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/targeting-rules", response_model=list[TargetingRuleOut])
def list_targeting_rules(who: Principal = Depends(CUSTOMS)) -> list[TargetingRuleOut]:
    """The latest version of every stored targeting rule."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        return [TargetingRuleOut.model_validate(r) for r in service.list_rules(session, who)]


@router.get("/targeting-rules/{rule_id}", response_model=list[TargetingRuleOut])
def targeting_rule_history(rule_id: str, who: Principal = Depends(CUSTOMS)) -> list[TargetingRuleOut]:
    """Every version of one rule, newest first."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        return [TargetingRuleOut.model_validate(r) for r in service.rule_history(session, who, rule_id)]


@router.post("/targeting-rules", response_model=TargetingRuleOut, status_code=201)
def create_targeting_rule(
    body: TargetingRuleIn, request: Request, who: Principal = Depends(ANALYSTS)
) -> TargetingRuleOut:
    """Create a rule (version 1); 422 lists every problem with its field path."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        saved = service.save_rule(session, who, body.form(), remote_addr=_addr(request))
    return TargetingRuleOut.model_validate(saved)


@router.put("/targeting-rules/{rule_id}", response_model=TargetingRuleOut)
def edit_targeting_rule(
    rule_id: str, body: TargetingRuleIn, request: Request, who: Principal = Depends(ANALYSTS)
) -> TargetingRuleOut:
    """Save a new version of a rule."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        saved = service.save_rule(session, who, body.form(), editing=rule_id, remote_addr=_addr(request))
    return TargetingRuleOut.model_validate(saved)


@router.post("/targeting-rules/{rule_id}/disable", response_model=TargetingRuleOut)
def disable_targeting_rule(
    rule_id: str, request: Request, body: Toggle | None = None, who: Principal = Depends(ANALYSTS)
) -> TargetingRuleOut:
    from smartcustoms.risk import service

    with unit_of_work() as session:
        saved = service.set_enabled(
            session, who, rule_id, False, note=body.note if body else "", remote_addr=_addr(request)
        )
    return TargetingRuleOut.model_validate(saved)


@router.post("/targeting-rules/{rule_id}/enable", response_model=TargetingRuleOut)
def enable_targeting_rule(
    rule_id: str, request: Request, body: Toggle | None = None, who: Principal = Depends(ANALYSTS)
) -> TargetingRuleOut:
    from smartcustoms.risk import service

    with unit_of_work() as session:
        saved = service.set_enabled(
            session, who, rule_id, True, note=body.note if body else "", remote_addr=_addr(request)
        )
    return TargetingRuleOut.model_validate(saved)


# ---------------------------------------------------------------------------------------------- queue, models, audit


class QueueEntry(BaseModel):
    reference: str
    importer_id: str
    lane: str | None
    status: str
    score: float
    expected_revenue: float
    revenue_basis: str
    reasons: list[str]
    model_versions: list[str]
    rule_versions: list[str]


@router.get("/queue", response_model=list[QueueEntry])
def risk_queue(
    order: Literal["score", "revenue"] = "score",
    lane: Literal["C2", "C3"] | None = None,
    limit: int = 200,
    who: Principal = Depends(CUSTOMS),
) -> list[QueueEntry]:
    """Declarations waiting for an officer, by score or by expected additional revenue."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        rows = service.risk_queue(session, who, order=order, lane=lane, limit=max(1, min(limit, 1000)))
    return [QueueEntry.model_validate(r) for r in rows]


class ModelOut(BaseModel):
    version: str
    active: bool
    format: str | None = None
    created_at: str | None = None
    training_window: dict[str, Any]
    validation: dict[str, Any]
    revenue: dict[str, Any] | None = None


@router.get("/models", response_model=list[ModelOut])
def list_models(who: Principal = Depends(CUSTOMS)) -> list[ModelOut]:
    """Registered model versions, newest first, with training window, validation metrics and gain curve."""
    from smartcustoms.risk import service

    return [ModelOut.model_validate(m) for m in service.models_overview(who)["versions"]]


@router.post("/models/{version}/activate", response_model=ModelOut)
def activate_model(version: str, request: Request, who: Principal = Depends(ANALYSTS)) -> ModelOut:
    """Make a registered version the active one (activation or rollback); audited."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        service.activate_model(session, who, version, remote_addr=_addr(request))
    active = [m for m in service.models_overview(who)["versions"] if m["version"] == version]
    return ModelOut.model_validate(active[0])


class AuditEntry(BaseModel):
    rank: int
    importer_id: str
    declarations: int
    mean_score: float
    expected_unpaid: float
    reason: str
    lines_checked: int | None = None
    code_mismatches: int | None = None


@router.get("/audit-selection", response_model=list[AuditEntry])
def audit_selection(top: int = 50, who: Principal = Depends(CUSTOMS)) -> list[AuditEntry]:
    """Importers ranked for post-clearance audit by expected unpaid revenue (active model)."""
    from smartcustoms.risk import service

    with unit_of_work() as session:
        ranked = service.audit_selection(session, who, top=max(1, min(top, 500)))
    return [AuditEntry.model_validate(r) for r in ranked.to_dict("records")]


# ---------------------------------------------------------------------------------------------- backtest


class BacktestOut(BaseModel):
    rule: str
    declarations: int
    labelled: int
    frauds: int
    hits: int
    hits_labelled: int
    hits_fraud: int
    precision: float | None
    base_rate: float | None
    fraud_share: float | None
    from_: str | None = Field(None, serialization_alias="from", validation_alias="from")
    to: str | None
    examples: list[str]


@router.post("/targeting-rules/backtest", response_model=BacktestOut, response_model_by_alias=True)
def backtest_targeting_rule(
    body: TargetingRuleIn, since: date | None = None, who: Principal = Depends(ANALYSTS)
) -> BacktestOut:
    """What a rule (not saved) would have hit among past declarations, and how many of those were frauds."""
    from smartcustoms.risk import service

    with unit_of_work(read_only=True) as session:
        return BacktestOut.model_validate(service.backtest_rule(session, who, body.form(), since=since))


# ---------------------------------------------------------------------------------------------- post-clearance


class AuditListOut(BaseModel):
    computed_at: str | None
    computed_by: str
    model_version: str
    declarations: int
    rows: list[AuditEntry]


class AuditFindingIn(BaseModel):
    reference: str = Field(max_length=64)
    additional_duty: Decimal = Decimal(0)


class AuditResultIn(BaseModel):
    importer_id: str = Field(min_length=1, max_length=35)
    period_from: date
    period_to: date
    findings: list[AuditFindingIn] = Field(default_factory=list, max_length=10_000)
    note: str = Field("", max_length=4000)


class AuditResultOut(BaseModel):
    id: int
    importer_id: str
    period_from: str
    period_to: str
    findings: list[dict[str, Any]]
    recovered: str
    note: str | None
    recorded_at: str | None
    recorded_by: str


@router.get("/audit-list", response_model=AuditListOut)
def stored_audit_list(who: Principal = Depends(CUSTOMS)) -> AuditListOut:
    """The last computed post-clearance audit list (404 until it is computed)."""
    from smartcustoms.platform.errors import NotFound, Problem
    from smartcustoms.platform.i18n import t
    from smartcustoms.risk import postclearance

    with unit_of_work(read_only=True) as session:
        found = postclearance.latest_audit_list(session, who)
    if found is None:
        raise NotFound(Problem("not_computed", (), t("The audit list has not been computed yet")))
    return AuditListOut.model_validate(found)


@router.post("/audit-list", response_model=AuditListOut, status_code=201)
def compute_audit_list(top: int = 50, check_codes: bool = True, who: Principal = Depends(ANALYSTS)) -> AuditListOut:
    """Rank importers now with the active model and keep the list; `check_codes` also checks the listed
    importers' declared codes against their goods descriptions (classification mismatches)."""
    from smartcustoms.risk import postclearance

    with unit_of_work() as session:
        stored = postclearance.refresh_audit_list(session, who, top=max(1, min(top, 500)), check_codes=check_codes)
    return AuditListOut.model_validate(stored)


@router.post("/audit-results", response_model=AuditResultOut, status_code=201)
def record_audit_result(body: AuditResultIn, request: Request, who: Principal = Depends(ANALYSTS)) -> AuditResultOut:
    """Record a post-clearance audit's outcome; it becomes training labels (`risk export-labels`)."""
    from smartcustoms.risk import postclearance

    with unit_of_work() as session:
        saved = postclearance.record_audit_result(
            session,
            who,
            importer_id=body.importer_id,
            period_from=body.period_from,
            period_to=body.period_to,
            findings=[f.model_dump() for f in body.findings],
            note=body.note,
            remote_addr=_addr(request),
        )
    return AuditResultOut.model_validate(saved)


@router.get("/audit-results", response_model=list[AuditResultOut])
def list_audit_results(importer_id: str | None = None, who: Principal = Depends(CUSTOMS)) -> list[AuditResultOut]:
    """Recorded audit results, newest first (500 at most), optionally for one importer."""
    from smartcustoms.risk import postclearance

    with unit_of_work(read_only=True) as session:
        return [
            AuditResultOut.model_validate(r) for r in postclearance.audit_results(session, who, importer_id=importer_id)
        ]
