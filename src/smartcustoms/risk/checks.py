"""Targeting rules from the rule editor, run by the clearance core on every filing and amendment.

Each enabled rule that fires becomes a `Finding` with the lane (or score) the rule calls for, its reason
and its version (`RULE@vN`), so the declaration records exactly which rule text selected it. Derived
fields that need history (price ratio, importer history, model score) come from the active model when
a rule uses them. A fault here must not stop clearance: it is logged and the filing goes on unruled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from smartcustoms.clearance import checks
from smartcustoms.clearance.checks import CheckContext, Finding
from smartcustoms.clearance.lanes import DeclarationFacts
from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.platform.i18n import t_plain
from smartcustoms.risk.model import RuleSet, evaluate_rules

if TYPE_CHECKING:
    from smartcustoms.clearance.schema import DeclarationIn

log = logging.getLogger(__name__)
MODEL_FIELDS = frozenset(
    {"price_ratio", "importer_history", "first_time_importer", "importer_fraud_rate", "risk_score"}
)


def _rows(facts: DeclarationFacts) -> list[dict[str, Any]]:
    return [
        {
            "declaration_id": facts.key,
            "office": facts.office,
            "transport_mode": facts.transport_mode,
            "departure_country": facts.country_of_dispatch,
            "origin": item.origin,
            "declarant_id": facts.declarant_id,
            "importer_id": facts.importer_id,
            "seller_id": facts.seller_id,
            "hs_code": item.hs_code,
            "net_mass_kg": float(item.net_mass_kg),
            "value": float(item.value),
            "aeo": facts.aeo,
        }
        for item in facts.items
    ]


class TargetingRuleCheck:
    name = "risk.targeting_rules"

    def check(self, ctx: CheckContext, decl: DeclarationIn, facts: DeclarationFacts) -> Sequence[Finding]:
        try:
            return self._check(ctx, facts)
        except Exception:  # clearance keeps running when a rule cannot be evaluated
            log.exception("targeting rules could not be evaluated on %s", facts.key)
            return []

    def _check(self, ctx: CheckContext, facts: DeclarationFacts) -> list[Finding]:
        from smartcustoms.risk import service

        rules: RuleSet | None = ctx.cache.get("risk.rules")
        if rules is None:
            rules = service.active_rules(ctx.session)
            ctx.cache["risk.rules"] = rules
        if not rules.rules:
            return []
        needs_model = any(r.when.fields() & MODEL_FIELDS for r in rules.rules)
        model = service._safe_active_model() if needs_model else None
        found: dict[str, Finding] = {}
        for i, row in enumerate(_rows(facts)):
            row["date"] = ctx.on.isoformat()
            if model is not None:
                row.update(model.score_one(row, explain=False)["derived"])
                if row.get("importer_history") is not None:
                    row["first_time_importer"] = row["importer_history"] == 0
            for hit in evaluate_rules(rules, row, on=ctx.on):
                if hit.rule_id in found:
                    continue
                found[hit.rule_id] = Finding(
                    source="risk",
                    code=hit.rule_id,
                    message=t_plain(
                        "Targeting rule {rule} v{version}: {written_reason} (item {item})",
                        rule=hit.rule_id,
                        version=hit.version,
                        written_reason=hit.reason,
                        item=facts.items[i].line_no,
                    )
                    if len(facts.items) > 1
                    else t_plain(
                        "Targeting rule {rule} v{version}: {written_reason}",
                        rule=hit.rule_id,
                        version=hit.version,
                        written_reason=hit.reason,
                    ),
                    path=("items", i) if len(facts.items) > 1 else (),
                    lane=Lane(hit.lane) if hit.lane else None,
                    hold=False,
                    score=float(hit.score) if hit.score is not None else 0.0,
                    version=f"{hit.rule_id}@v{hit.version}",
                    detail={"rules": rules.version},
                )
        return list(found.values())


def register() -> None:
    checks.register_check(TargetingRuleCheck())
