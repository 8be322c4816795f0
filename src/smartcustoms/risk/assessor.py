"""Lane assessor for the clearance core: the selectivity model plus targeting rules, on one declaration.

The clearance core calls `ModelLaneAssessor.assess(declaration)` on submission. Each item is scored
(the submission path, well under 5 ms per item); the declaration takes the riskiest item's score, the
strictest lane of model and rules, the reasons of both, and the versions that decided (model version,
rules document version and each rule version that fired), so the decision can be explained and replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from smartcustoms.platform.i18n import t_plain
from smartcustoms.risk.kcs import from_declaration
from smartcustoms.risk.model import LANES, RuleSet, combine_lane, evaluate_rules
from smartcustoms.risk.selectivity import SelectivityModel


@dataclass(frozen=True)
class LaneDecision:
    lane: str  # "C1" | "C2" | "C3"
    score: float
    reasons: list[str]
    versions: list[str]
    expected_revenue: float = 0.0
    """Score x the usual inspection yield of the declaration's goods (see `revenue.py`)."""


class ModelLaneAssessor:
    """Pluggable lane assessor: model (a directory or a loaded model), optional rules."""

    def __init__(self, model: SelectivityModel | str | Path, rules: RuleSet | None = None) -> None:
        self.model = model if isinstance(model, SelectivityModel) else SelectivityModel.load(model)
        self.rules = rules

    def assess(self, declaration: Mapping[str, Any]) -> LaneDecision:
        rows = from_declaration(dict(declaration))
        today = declaration.get("date") or date.today().isoformat()
        best: dict[str, Any] | None = None
        lane = "C1"
        hits_all = []
        rule_reasons: list[str] = []
        for i, row in enumerate(rows):
            row["date"] = today
            if not row["declaration_id"]:
                row["declaration_id"] = f"{declaration.get('importer_id')}-{today}-{i}"
            result = self.model.score_one(row)
            if best is None or result["score"] > best["score"]:
                best = result
            lane = max(lane, result["lane"], key=LANES.index)
            if self.rules is not None:
                facts = {**row, **result["derived"]}
                hits = evaluate_rules(self.rules, facts, on=_day(today))
                lane = combine_lane(lane, hits)
                for h in hits:
                    hits_all.append(h)
                    text = (
                        t_plain(
                            "rule {rule} v{version}: {written_reason} (item {item})",
                            rule=h.rule_id,
                            version=h.version,
                            written_reason=h.reason,
                            item=i + 1,
                        )
                        if len(rows) > 1
                        else t_plain(
                            "rule {rule} v{version}: {written_reason}",
                            rule=h.rule_id,
                            version=h.version,
                            written_reason=h.reason,
                        )
                    )
                    if text not in rule_reasons:
                        rule_reasons.append(text)
        assert best is not None
        score = float(best["score"])
        rule_scores = [h.score for h in hits_all if h.score is not None]
        if rule_scores:
            score = max(score, *rule_scores)
        expected = self.model.yields.expected(score, [str(r["hs_code"]) for r in rows])
        versions = [self.model.version]
        if self.rules is not None:
            versions.append(f"rules@{self.rules.version or 'unversioned'}")
            versions.extend(sorted({f"{h.rule_id}@v{h.version}" for h in hits_all}))
        reasons = [*rule_reasons, *best["reasons"]]
        if expected.amount >= 1:
            reasons.append(expected.reason())
        return LaneDecision(
            lane=lane, score=score, reasons=reasons, versions=versions, expected_revenue=round(expected.amount, 2)
        )


def _day(v: Any) -> date | None:
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        return None
