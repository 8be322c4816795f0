from __future__ import annotations

from decimal import Decimal

from smartcustoms.clearance.lanes import (
    CombinedAssessor,
    DeclarationFacts,
    ItemFacts,
    LaneDecision,
    LaneRules,
    RuleBasedAssessor,
)
from smartcustoms.clearance.lifecycle import Lane


def facts(
    key: str = "k",
    importer: str = "TW1",
    hs: str = "851762",
    origin: str = "CN",
    aeo: bool = False,
    value: str = "1000",
) -> DeclarationFacts:
    return DeclarationFacts(
        key=key,
        declaration_type="import",
        office="TWKHH",
        declarant_id=importer,
        importer_id=importer,
        seller_id="CN1",
        transport_mode="sea",
        country_of_dispatch=origin,
        customs_value=Decimal(value),
        aeo=aeo,
        items=(ItemFacts(1, hs, origin, Decimal(10), Decimal(value)),),
    )


NO_RANDOM = LaneRules(random_c2_share=0, random_c3_share=0)


def test_clean_declaration_goes_paperless_with_a_reason() -> None:
    d = RuleBasedAssessor(NO_RANDOM).assess(facts())
    assert d.lane is Lane.C1 and d.reasons and d.versions == ("lane-rules-1",)


def test_watchlists_force_inspection_with_reasons() -> None:
    rules = LaneRules(
        random_c2_share=0,
        random_c3_share=0,
        watch_importers=("TW9",),
        watch_hs_prefixes=("0201",),
        watch_origins=("KP",),
    )
    a = RuleBasedAssessor(rules)
    assert a.assess(facts(importer="TW9")).lane is Lane.C3
    d = a.assess(facts(hs="020130"))
    assert d.lane is Lane.C3 and any("0201" in r for r in d.reasons)
    assert a.assess(facts(origin="KP")).lane is Lane.C3


def test_random_share_is_close_to_configured_and_reproducible() -> None:
    a = RuleBasedAssessor(LaneRules(random_c2_share=0.10, random_c3_share=0.05, high_value_c2=None))
    lanes = [a.assess(facts(key=f"decl-{i}")).lane for i in range(4000)]
    assert 0.03 < lanes.count(Lane.C3) / 4000 < 0.07
    assert 0.08 < lanes.count(Lane.C2) / 4000 < 0.12
    assert lanes == [a.assess(facts(key=f"decl-{i}")).lane for i in range(4000)]


def test_aeo_exempt_from_random_selection_but_not_watchlists() -> None:
    a = RuleBasedAssessor(LaneRules(random_c2_share=0.5, random_c3_share=0.5, watch_hs_prefixes=("93",)))
    assert all(a.assess(facts(key=str(i), aeo=True)).lane is Lane.C1 for i in range(200))
    assert a.assess(facts(aeo=True, hs="930200")).lane is Lane.C3


def test_high_value_goes_to_documentary_check() -> None:
    d = RuleBasedAssessor(NO_RANDOM).assess(facts(value="5000000"))
    assert d.lane is Lane.C2


class Fixed:
    def __init__(self, lane: Lane) -> None:
        self.lane = lane

    def assess(self, f: DeclarationFacts) -> LaneDecision:
        return LaneDecision(self.lane, 0.9, (f"model says {self.lane}",), ("risk-model-7",))


def test_combined_takes_strictest_lane_and_keeps_all_versions() -> None:
    d = CombinedAssessor([RuleBasedAssessor(NO_RANDOM), Fixed(Lane.C2)]).assess(facts())
    assert d.lane is Lane.C2 and "risk-model-7" in d.versions and "lane-rules-1" in d.versions
    assert "model says C2" in d.reasons


def test_rules_round_trip_through_dict() -> None:
    rules = LaneRules(random_c2_share=0.2, watch_origins=("IR",), high_value_c2=None)
    assert LaneRules.from_dict(rules.as_dict()) == rules
