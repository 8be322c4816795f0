"""HTTP routes of the risk engine: validate and try targeting rules, assess a declaration.

No business logic here: parsing and evaluation live in `model.py`, scoring in `assessor.py`. The model
comes from the registry directory named by SMARTCUSTOMS_RISK_REGISTRY (default `var/risk/models`).
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from smartcustoms.platform.auth import Principal, Role
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
