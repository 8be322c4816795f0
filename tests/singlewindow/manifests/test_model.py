"""Manifest parsing, container check digits, tolerances and the matching of declarations to lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.singlewindow.manifests.model import (
    DeclaredGoods,
    LineFacts,
    ManifestError,
    PartyRef,
    Rules,
    container_check_digit,
    container_problem,
    declared_goods,
    lines_from_csv_rows,
    manifest_json,
    match,
    parse_manifest,
    rules_from,
    same_party,
    weights_differ,
)
from tests.clearance.conftest import declaration
from tests.singlewindow.manifests.conftest import container, manifest


def test_iso6346_check_digit_of_a_known_container() -> None:
    assert container_check_digit("CSQU305438") == 3
    assert container_problem("CSQU3054383") is None
    assert "check digit" in (container_problem("CSQU3054384") or "")
    assert "owner letters" in (container_problem("CSQ3054383") or "")


def test_every_problem_is_listed_with_its_path_and_nothing_is_read() -> None:
    body = manifest()
    body["mode"] = "teleport"
    body["lines"][1]["doc_ref"] = body["lines"][0]["doc_ref"]
    body["lines"][0]["packages"] = -3
    body["lines"][1]["gross_weight_kg"] = "-1.5"
    body["lines"][1]["containers"] = ["ABCU1234567"]
    body["colour"] = "red"
    with pytest.raises(ManifestError) as exc:
        parse_manifest(body)
    got = {(p.code, p.as_dict()["loc"]) for p in exc.value.problems}
    assert got == {
        ("unknown_mode", "$.mode"),
        ("duplicate_document", "$.lines[1].doc_ref"),
        ("negative", "$.lines[0].packages"),
        ("negative", "$.lines[1].gross_weight_kg"),
        ("bad_container_number", "$.lines[1].containers[0].number"),
        ("unknown_field", "$.colour"),
    }
    body["lines"][0]["packages"] = 3
    body["lines"][1]["gross_weight_kg"] = "1.5"
    body["lines"][1]["containers"] = []
    body["mode"] = "sea"
    del body["colour"]
    with pytest.raises(ManifestError) as exc:
        parse_manifest(body)
    assert [(p.code, p.as_dict()["loc"]) for p in exc.value.problems] == [("duplicate_document", "$.lines[1].doc_ref")]


def test_missing_fields_and_bad_types() -> None:
    with pytest.raises(ManifestError) as exc:
        parse_manifest({"voyage": "V1", "mode": "air", "port": "XX", "expected_arrival": "tomorrow", "lines": [{}]})
    locs = {p.as_dict()["loc"] for p in exc.value.problems}
    assert {"$.port", "$.expected_arrival", "$.lines[0].doc_ref", "$.lines[0].packages"} <= locs
    with pytest.raises(ManifestError):
        parse_manifest([1, 2])


def test_csv_rows_become_lines() -> None:
    rows = [
        {
            "doc_ref": "AWB1",
            "doc_type": "AWB",
            "shipper_name": "S",
            "consignee_name": "C",
            "consignee_id": "TW1",
            "description": "phones",
            "packages": "2",
            "gross_weight_kg": "10.5",
            "containers": f"{container('ABC', 1)}:S1/S2",
        }
    ]
    body = {
        "voyage": "CI0061",
        "mode": "air",
        "port": "TWTPE",
        "expected_arrival": "2030-01-01T10:00",
        "lines": lines_from_csv_rows(rows),
    }
    m = parse_manifest(body)
    assert m.lines[0].consignee == PartyRef("C", "TW1") and m.lines[0].containers[0].seals == ("S1", "S2")
    assert m.lines[0].gross_weight_kg == Decimal("10.5") and m.expected_arrival.tzinfo is not None


safe_text = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(
    refs=st.lists(safe_text, min_size=1, max_size=6, unique_by=str.upper),
    packages=st.integers(1, 10**6),
    weight=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
)
def test_the_canonical_form_reads_back_the_same(refs: list[str], packages: int, weight: Decimal) -> None:
    body: dict[str, Any] = manifest()
    template = body["lines"][0]
    body["lines"] = [dict(template, doc_ref=r, packages=packages, gross_weight_kg=str(weight)) for r in refs]
    first = parse_manifest(body)
    assert parse_manifest(manifest_json(first)) == first


@settings(max_examples=60, deadline=None)
@given(
    manifested=st.decimals(min_value=0, max_value=10**6, places=2),
    delta=st.decimals(min_value=0, max_value=10**4, places=2),
    pct=st.decimals(min_value=0, max_value=50, places=1),
)
def test_weight_tolerance_is_the_larger_of_percentage_and_floor(
    manifested: Decimal, delta: Decimal, pct: Decimal
) -> None:
    rules = Rules(weight_tolerance_pct=pct, weight_tolerance_kg=Decimal(10))
    allowed = max(manifested * pct / 100, Decimal(10))
    assert weights_differ(manifested + delta, manifested, rules) == (delta > allowed)
    assert weights_differ(manifested - delta, manifested, rules) == (delta > allowed)


def test_rules_are_validated_all_at_once() -> None:
    with pytest.raises(ManifestError) as exc:
        rules_from({"weight_tolerance_pct": 500, "lanes": {"weight_differs": "C9"}, "bogus": 1})
    assert {p.as_dict()["loc"] for p in exc.value.problems} == {
        "$.weight_tolerance_pct",
        "$.lanes.weight_differs",
        "$.bogus",
    }
    r = rules_from({"weight_tolerance_pct": "2", "hold": ["description_mismatch"]}, version=3)
    assert r.label == "manifest-rules-v3" and r.hold == {"description_mismatch"}


def test_party_names_fold_legal_forms_and_punctuation() -> None:
    assert same_party(PartyRef("Formosa Trading Co., Ltd."), PartyRef("FORMOSA TRADING CO LTD"), 0.8)
    assert same_party(PartyRef("X", "tw1"), PartyRef("Y", "TW1"), 0.8)
    assert not same_party(PartyRef("Formosa Trading"), PartyRef("Kaohsiung Steel Works"), 0.8)


def _line(
    key: int,
    doc: str,
    *,
    consignee: str = "Formosa Trading Co.",
    cid: str | None = "TW10000001",
    packages: int = 10,
    weight: str = "100",
    chapters: tuple[tuple[str, float], ...] = (),
) -> LineFacts:
    return LineFacts(key, "MF1", "V1", doc, PartyRef(consignee, cid), "goods", packages, Decimal(weight), chapters)


def _goods(
    ref: str,
    docs: tuple[str, ...],
    *,
    weight: str = "100",
    packages: int | None = 10,
    chapters: frozenset[str] = frozenset({"85"}),
    mode: str = "sea",
) -> DeclaredGoods:
    return DeclaredGoods(
        ref,
        docs,
        "import",
        mode,
        PartyRef("Formosa Trading Co.", "TW10000001"),
        Decimal(weight),
        packages,
        chapters,
        arrival_date=date(2026, 1, 1),
    )


def test_a_clean_match_has_no_discrepancies() -> None:
    r = match([_line(1, "BL1")], [_goods("D1", ("BL1",))], Rules(), on=date(2026, 1, 2))
    assert r.discrepancies == [] and r.lines_of == {"D1": [1]} and r.declarations_of == {1: ["D1"]}


def test_each_kind_of_discrepancy() -> None:
    lines = [
        _line(
            1,
            "BL1",
            consignee="Other Importer",
            cid="TW999",
            packages=12,
            weight="150",
            chapters=(("02", 1.0), ("16", 0.4)),
        )
    ]
    r = match(lines, [_goods("D1", ("BL1",)), _goods("D2", ("BL9",))], Rules(), on=date(2026, 1, 2))
    codes = sorted((d.reference, d.code) for d in r.discrepancies)
    assert codes == [
        ("D1", "consignee_differs"),
        ("D1", "description_mismatch"),
        ("D1", "packages_differ"),
        ("D1", "weight_differs"),
        ("D2", "manifest_missing"),
    ]
    assert r.unmatched_lines(lines) == []


def test_split_consignments_compare_group_totals() -> None:
    lines = [_line(1, "BL1", packages=10, weight="100"), _line(2, "BL2", packages=5, weight="50")]
    decls = [_goods("D1", ("BL1",), packages=6, weight="60"), _goods("D2", ("BL1", "BL2"), packages=9, weight="90")]
    assert match(lines, decls, Rules()).discrepancies == []
    short = [_goods("D1", ("BL1",), packages=6, weight="60"), _goods("D2", ("BL1", "BL2"), packages=4, weight="40")]
    found = match(lines, short, Rules(), judge=["D2"]).discrepancies
    assert sorted(d.code for d in found) == ["packages_differ", "weight_differs"]
    assert all(d.reference == "D2" for d in found)


def test_vague_or_unknown_descriptions_and_missing_rules() -> None:
    vague = [_line(1, "BL1", chapters=(("89", 0.2),))]
    assert match(vague, [_goods("D1", ("BL1",))], Rules()).discrepancies == []
    air_future = DeclaredGoods(
        "D3", ("AWB1",), "import", "air", PartyRef("A"), Decimal(1), None, frozenset(), arrival_date=date(2026, 2, 1)
    )
    assert match([], [air_future], Rules(), on=date(2026, 1, 1)).discrepancies == []
    assert [d.code for d in match([], [air_future], Rules(), on=date(2026, 2, 2)).discrepancies] == ["manifest_missing"]
    road = _goods("D4", ("CMR1",), mode="road")
    assert match([], [road], Rules(), on=date(2026, 2, 1)).discrepancies == []


def test_manifest_ref_narrows_to_its_manifest() -> None:
    a = LineFacts(1, "MFA", "V1", "BL1", PartyRef("Formosa Trading Co.", "TW10000001"), "x", 10, Decimal(100))
    b = LineFacts(2, "MFB", "V2", "BL1", PartyRef("Formosa Trading Co.", "TW10000001"), "x", 10, Decimal(100))
    g = DeclaredGoods(
        "D1", ("BL1",), "import", "sea", PartyRef("F", "TW10000001"), Decimal(100), 10, frozenset(), manifest_ref="V2"
    )
    assert match([a, b], [g], Rules()).lines_of == {"D1": [2]}


def test_declared_goods_from_a_declaration() -> None:
    d = declaration()
    g = declared_goods("R1", d)
    assert g.doc_refs == ("EGLV000123456",) and g.chapters == {"85", "61"}
    assert g.gross_weight_kg == Decimal(235) and g.packages is None and g.needs_manifest
    d["items"][0]["quantity_unit"] = "ctn"
    d["items"][1]["quantity_unit"] = "CTN"
    d["items"][1]["quantity"] = "30"
    assert declared_goods("R1", d).packages == 80
