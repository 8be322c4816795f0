"""Declared versus seen: which detections contradict the declared goods, and why."""

from __future__ import annotations

import pytest

from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.model import (
    DEFAULT_RULES,
    Box,
    DeclaredItem,
    Detection,
    canonical_label,
    conflicts,
    items_from_payload,
    rules_from_config,
)

BOX = Box(10, 10, 60, 40)
TOYS = [DeclaredItem(1, "toys", "950300")]


def det(label: str, score: float) -> Detection:
    return Detection(label, score, BOX)


def test_meat_in_a_toy_declaration_conflicts_with_the_reason() -> None:
    (c,) = conflicts([det("meat", 0.91), det("meat", 0.6)], TOYS)
    assert c.code == "declared_vs_seen"
    assert c.message == "meat detected with confidence 0.91; declared: toys, chapter 95"
    assert c.detail["chapters"] == ["02", "16"] and c.detail["box"] == [10, 10, 60, 40]


def test_declared_meat_explains_the_scan() -> None:
    assert conflicts([det("meat", 0.95)], [DeclaredItem(1, "beef cuts", "020130")]) == []
    assert conflicts([det("meat", 0.95)], [DeclaredItem(1, "sausages", "160100")]) == []


def test_drugs_are_never_consistent() -> None:
    items = [DeclaredItem(1, "anything", code) for code in ("020130", "300490", "930100")]
    assert [c.code for c in conflicts([det("drugs", 0.7)], items)] == ["declared_vs_seen"]


def test_firearms_need_chapter_93_and_a_permit() -> None:
    gun = [det("handgun", 0.8)]
    assert conflicts(gun, TOYS)[0].code == "declared_vs_seen"
    no_permit = conflicts(gun, [DeclaredItem(2, "pistols", "930200")])
    assert no_permit[0].code == "permit_missing" and "line 2 without a permit" in no_permit[0].message
    assert conflicts(gun, [DeclaredItem(2, "pistols", "930200", ("WPN-2026-1",))]) == []


def test_low_confidence_and_benign_lookalikes_raise_nothing() -> None:
    assert conflicts([det("meat", 0.3), det("knife", 0.45)], TOYS) == []
    assert conflicts([det("cheese", 0.99), det("book", 0.99), det("unknown_thing", 0.99)], TOYS) == []


def test_rules_follow_the_models_alarm_threshold_unless_they_set_their_own() -> None:
    assert [c.detection.label for c in conflicts([det("meat", 0.3)], TOYS, DEFAULT_RULES, 0.25)] == ["meat"]
    assert conflicts([det("meat", 0.3)], TOYS, DEFAULT_RULES, 0.35) == []
    strict = rules_from_config({"meat": {"chapters": ["02", "16"], "min_confidence": 0.9}})
    assert conflicts([det("meat", 0.8)], TOYS, strict, 0.25) == []
    assert rules_from_config({"meat": {"chapters": ["02"]}})[0].threshold(0.3) == 0.3


def test_conflicts_are_ordered_by_confidence() -> None:
    out = conflicts([det("meat", 0.6), det("drugs", 0.9)], TOYS)
    assert [c.detection.label for c in out] == ["drugs", "meat"]


def test_rules_are_configurable_and_validated() -> None:
    rules = rules_from_config({"cheese": {"chapters": ["04"], "enforce": True, "min_confidence": 0.5}})
    assert len(rules) == len(DEFAULT_RULES)
    assert conflicts([det("cheese", 0.8)], TOYS, rules)[0].message.startswith("cheese detected")
    with pytest.raises(XrayError) as err:
        rules_from_config({"meat": {"chapters": ["2x"]}, "drugs": {"min_confidence": 3}, "knife": []})
    assert [p.code for p in err.value.problems] == ["invalid_chapters", "invalid_confidence", "invalid_rule"]


def test_labels_and_payload_items() -> None:
    assert canonical_label("Straight_Knife") == "knife"
    assert canonical_label("Gun") == "handgun"
    assert canonical_label("Wrench") == "tool"
    assert canonical_label("Some Thing") == "some_thing"
    items = items_from_payload(
        {"items": [{"line_no": 3, "description": "x", "tariff_code": "930200", "permits": ["P"]}]}
    )
    assert items == [DeclaredItem(3, "x", "930200", ("P",))]
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_reasons_read_in_traditional_chinese_from_the_stored_english() -> None:
    from smartcustoms.platform.i18n import translate

    (c,) = conflicts([det("gun_part", 0.91)], TOYS)
    assert c.message == "gun part detected with confidence 0.91; declared: toys, chapter 95"
    assert translate(c.message, "zh-Hant") == "偵測到槍枝零件,信心度 0.91;申報內容:toys,第 95 章"
    two = [DeclaredItem(1, "toys", "950300"), DeclaredItem(2, "phones", "851713")]
    (c,) = conflicts([det("meat", 0.8)], two)
    assert c.message == "meat detected with confidence 0.80; declared: toys / phones; chapters 95, 85"
    assert translate(c.message, "zh-Hant") == "偵測到肉品,信心度 0.80;申報內容:toys / phones;第 95, 85 章"
    (p,) = conflicts([det("handgun", 0.7)], [DeclaredItem(2, "pistols", "930200")])
    assert translate(p.message, "zh-Hant") == "偵測到手槍,信心度 0.70;申報於第 2 項但未附許可證"
    assert translate(conflicts([det("drugs", 0.9)], [])[0].message, "zh-Hant").endswith("申報內容:無")
