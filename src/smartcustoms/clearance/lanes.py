"""Lane assessment: a pluggable interface plus the rule-based assessor shipped with the core.

The risk engine plugs its model into the same `LaneAssessor` interface; `CombinedAssessor` takes the
strictest lane of all and keeps every reason and every rule or model version behind it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.platform.i18n import t_plain

LANE_ORDER = {Lane.C1: 0, Lane.C2: 1, Lane.C3: 2}
PAPERLESS = t_plain("No rule selected this declaration: paperless release")


@dataclass(frozen=True)
class ItemFacts:
    line_no: int
    hs_code: str
    origin: str
    net_mass_kg: Decimal
    value: Decimal
    description: str = ""


@dataclass(frozen=True)
class DeclarationFacts:
    """What an assessor may look at; built from the validated, assessed declaration."""

    key: str
    declaration_type: str
    office: str
    declarant_id: str
    importer_id: str
    seller_id: str | None
    transport_mode: str
    country_of_dispatch: str
    customs_value: Decimal
    aeo: bool
    items: tuple[ItemFacts, ...]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LaneDecision:
    lane: Lane
    score: float
    reasons: tuple[str, ...]
    versions: tuple[str, ...]


class LaneAssessor(Protocol):
    def assess(self, facts: DeclarationFacts) -> LaneDecision: ...


@dataclass(frozen=True)
class LaneRules:
    """Configuration of the rule-based assessor; editable by admins without code changes."""

    version: str = "lane-rules-1"
    random_c2_share: float = 0.05
    random_c3_share: float = 0.02
    aeo_relief: bool = True
    watch_importers: tuple[str, ...] = ()
    watch_hs_prefixes: tuple[str, ...] = ()
    watch_origins: tuple[str, ...] = ()
    watch_lane: Lane = Lane.C3
    high_value_c2: Decimal | None = Decimal("3000000")
    seed: str = "smartcustoms"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaneRules:
        return cls(
            version=str(data.get("version", cls.version)),
            random_c2_share=float(data.get("random_c2_share", cls.random_c2_share)),
            random_c3_share=float(data.get("random_c3_share", cls.random_c3_share)),
            aeo_relief=bool(data.get("aeo_relief", cls.aeo_relief)),
            watch_importers=tuple(data.get("watch_importers", ())),
            watch_hs_prefixes=tuple(str(x) for x in data.get("watch_hs_prefixes", ())),
            watch_origins=tuple(str(x).upper() for x in data.get("watch_origins", ())),
            watch_lane=Lane(data.get("watch_lane", cls.watch_lane)),
            high_value_c2=Decimal(str(data["high_value_c2"])) if data.get("high_value_c2") is not None else None,
            seed=str(data.get("seed", cls.seed)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "random_c2_share": self.random_c2_share,
            "random_c3_share": self.random_c3_share,
            "aeo_relief": self.aeo_relief,
            "watch_importers": list(self.watch_importers),
            "watch_hs_prefixes": list(self.watch_hs_prefixes),
            "watch_origins": list(self.watch_origins),
            "watch_lane": self.watch_lane.value,
            "high_value_c2": str(self.high_value_c2) if self.high_value_c2 is not None else None,
            "seed": self.seed,
        }


def _uniform(seed: str, key: str) -> float:
    """A reproducible draw in [0, 1) per declaration: the same filing always gets the same draw."""
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class RuleBasedAssessor:
    """Watchlists, a random inspection share and trusted-trader relief."""

    def __init__(self, rules: LaneRules) -> None:
        self.rules = rules

    def assess(self, facts: DeclarationFacts) -> LaneDecision:
        r = self.rules
        lane = Lane.C1
        reasons: list[str] = []
        score = 0.0

        def raise_to(target: Lane, reason: str, points: float) -> None:
            nonlocal lane, score
            if LANE_ORDER[target] > LANE_ORDER[lane]:
                lane = target
            score = max(score, points)
            reasons.append(reason)

        if facts.importer_id in r.watch_importers:
            raise_to(r.watch_lane, t_plain("Importer {importer} is on the watchlist", importer=facts.importer_id), 0.9)
        for item in facts.items:
            hit = next((p for p in r.watch_hs_prefixes if item.hs_code.startswith(p)), None)
            if hit:
                raise_to(
                    r.watch_lane,
                    t_plain(
                        "Item {line_no}: tariff code {code} is under watch ({prefix}*)",
                        line_no=item.line_no,
                        code=item.hs_code,
                        prefix=hit,
                    ),
                    0.8,
                )
            if item.origin in r.watch_origins:
                raise_to(
                    r.watch_lane,
                    t_plain("Item {line_no}: origin {origin} is under watch", line_no=item.line_no, origin=item.origin),
                    0.7,
                )
        if r.high_value_c2 is not None and facts.customs_value >= r.high_value_c2:
            raise_to(
                Lane.C2,
                t_plain(
                    "Customs value {value} at or above the documentary-check threshold {threshold}",
                    value=f"{facts.customs_value:,.0f}",
                    threshold=f"{r.high_value_c2:,.0f}",
                ),
                0.4,
            )
        exempt = facts.aeo and r.aeo_relief
        draw = _uniform(r.seed, facts.key)
        if not exempt and draw < r.random_c3_share:
            raise_to(
                Lane.C3,
                t_plain("Selected at random for inspection ({share} share)", share=f"{r.random_c3_share:.0%}"),
                0.5,
            )
        elif not exempt and draw < r.random_c3_share + r.random_c2_share:
            raise_to(
                Lane.C2,
                t_plain("Selected at random for documentary check ({share} share)", share=f"{r.random_c2_share:.0%}"),
                0.3,
            )
        if exempt:
            reasons.append(t_plain("Trusted trader (AEO): exempt from random selection"))
        if lane is Lane.C1 and not reasons:
            reasons.append(PAPERLESS)
        return LaneDecision(lane, score, tuple(reasons), (r.version,))


class CombinedAssessor:
    """Runs several assessors and keeps the strictest lane, with all reasons and versions."""

    def __init__(self, assessors: Sequence[LaneAssessor]) -> None:
        self.assessors = list(assessors)

    def assess(self, facts: DeclarationFacts) -> LaneDecision:
        decisions = [a.assess(facts) for a in self.assessors]
        lane = max((d.lane for d in decisions), key=LANE_ORDER.__getitem__)
        reasons = tuple(r for d in decisions for r in d.reasons)
        versions = tuple(v for d in decisions for v in d.versions)
        return LaneDecision(lane, max(d.score for d in decisions), reasons, versions)
