"""Amounts as printed, reading structured documents, rules, and the field-by-field comparison."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.singlewindow.trade_documents.invoice_text import read_invoice
from smartcustoms.singlewindow.trade_documents.model import (
    Rules,
    TradeDocumentError,
    compare,
    description_similarity,
    document_json,
    parse_amount,
    parse_date,
    parse_document,
    rules_from,
    summary,
    within,
)
from tests.clearance.conftest import declaration
from tests.singlewindow.trade_documents.conftest import doc

amounts = st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2, allow_nan=False)


def _english(d: Decimal) -> str:
    return f"{d:,.2f}"


def _european(d: Decimal) -> str:
    return f"{d:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


@settings(max_examples=150, deadline=None)
@given(amounts, st.sampled_from([_english, _european, lambda d: f"{d:.2f}", lambda d: f"USD {d:,.2f}"]))
def test_printed_amounts_read_back(value: Decimal, style: object) -> None:
    assert parse_amount(style(value)) == value  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=12))
def test_anything_else_is_refused_or_a_number(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_amount(text) >= 0


def test_amount_and_date_edge_cases() -> None:
    assert parse_amount("1,234") == 1234 and parse_amount("12,5") == Decimal("12.5")
    assert parse_amount("1.234") == Decimal("1.234") and parse_amount("1 234,50") == Decimal("1234.50")
    for bad in ("1,23,4", "-5", "1.2.3,4", "abc", ""):
        with pytest.raises(ValueError):
            parse_amount(bad)
    assert str(parse_date("2026年11月5日")) == "2026-11-05"
    assert str(parse_date("Nov 2, 2026")) == "2026-11-02" and str(parse_date("02.11.2026")) == "2026-11-02"
    assert parse_date("2026-13-40") is None


@settings(max_examples=60, deadline=None)
@given(documented=amounts, delta=amounts, pct=st.decimals(min_value=0, max_value=20, places=1))
def test_tolerance_is_the_larger_of_share_and_floor(documented: Decimal, delta: Decimal, pct: Decimal) -> None:
    allowed = max(documented * pct / 100, Decimal(1))
    assert within(documented + delta, documented, pct, Decimal(1)) == (delta <= allowed)


def test_structured_documents_read_back_and_bad_ones_list_every_problem() -> None:
    for kind in ("invoice", "packing_list", "bill_of_lading"):
        parsed = parse_document(kind, doc(kind))
        assert parse_document(kind, document_json(parsed)) == parsed
    bad = doc("invoice", currency="dollars", total="-3", colour="red")
    bad["lines"][1]["quantity"] = "many"
    with pytest.raises(TradeDocumentError) as exc:
        parse_document("invoice", bad)
    assert {p.as_dict()["loc"] for p in exc.value.problems} == {
        "$.data.currency",
        "$.data.total",
        "$.data.colour",
        "$.data.lines[1].quantity",
    }
    with pytest.raises(TradeDocumentError, match="Unknown document type"):
        parse_document("certificate", {})
    with pytest.raises(TradeDocumentError, match="number is required"):
        parse_document("bill_of_lading", {})


def test_matching_documents_give_a_clean_report() -> None:
    docs = {k: parse_document(k, doc(k)) for k in ("invoice", "packing_list", "bill_of_lading")}
    checks = compare(declaration(), docs, Rules())
    mismatches = [c.as_dict() for c in checks if c.result == "mismatch"]
    assert mismatches == []
    assert summary(checks)["match"] >= 20
    assert all(c.tolerance for c in checks if c.kind in ("total", "amount", "weight", "quantity"))


def test_each_mismatch_with_its_severity_and_path() -> None:
    inv = doc("invoice", currency="EUR", total="12000.00", buyer={"name": "Somebody Else Ltd"})
    inv["lines"][0]["amount"] = "8000.00"
    inv["lines"][0]["tariff_code"] = "8471.30"
    bl = doc("bill_of_lading", number="OTHER123", gross_weight_kg="400", containers=["MSCU0000001"])
    docs = {
        "invoice": parse_document("invoice", inv),
        "bill_of_lading": parse_document("bill_of_lading", bl),
        "packing_list": parse_document("packing_list", doc("packing_list")),
    }
    got = {
        (c.document, c.field, c.severity, tuple(c.path))
        for c in compare(declaration(), docs, Rules())
        if c.result == "mismatch"
    }
    assert got == {
        ("invoice", "buyer", "high", ("importer",)),
        ("invoice", "currency", "high", ("currency",)),
        ("invoice", "total", "high", ("invoice_total",)),
        ("invoice", "line 1 amount", "high", ("items", 0, "value")),
        ("invoice", "line 1 tariff code", "medium", ("items", 0, "tariff_code")),
        ("bill_of_lading", "number", "high", ("transport_documents",)),
        ("bill_of_lading", "gross weight", "medium", ("items",)),
        ("bill_of_lading", "containers (vs packing list)", "medium", ("transport_documents",)),
    }


def test_lines_pair_by_description_when_counts_differ() -> None:
    inv = doc("invoice")
    inv["lines"] = [inv["lines"][1]]
    checks = compare(declaration(), {"invoice": parse_document("invoice", inv)}, Rules())
    fields = {c.field: c for c in checks}
    assert fields["line count"].result == "mismatch"
    assert fields["line 1 quantity"].path == ("items", 1, "quantity") and fields["line 1 quantity"].result == "match"
    assert description_similarity("Men's T-shirts of cotton", "cotton t-shirt men") >= 0.6


def test_rules_validation_and_version_label() -> None:
    with pytest.raises(TradeDocumentError) as exc:
        rules_from({"value_tolerance_pct": "x", "severity": {"total": "awful"}, "lanes": {"high": "C7"}, "foo": 1})
    assert len(exc.value.problems) == 4
    r = rules_from({"finding_min_severity": "high", "value_tolerance_pct": "3"}, 4)
    assert r.label == "document-rules-v4" and r.value_tolerance_pct == 3


def test_reading_an_invoice_from_text_reports_what_is_missing() -> None:
    text = """COMMERCIAL INVOICE
    Invoice No.: A-77/2026
    Seller: Hanoi Garments Co.
    1  Cotton shirts   100 pcs   3.50   350.00
    2  Silk scarves     20 pcs  10.00   210.00
    Grand Total: EUR 550,00
    """
    got = read_invoice(text)
    assert got.data["number"] == "A-77/2026" and got.data["currency"] == "EUR" and got.data["total"] == "550.00"
    assert [ln["amount"] for ln in got.data["lines"]] == ["350.00", "210.00"]
    assert any("10.00" in u and "210.00" in u for u in got.unread), got.unread
    assert any("add up" in u for u in got.unread)
    assert {"invoice date: not found", "buyer: not found"} <= set(got.unread)
    parse_document("invoice", got.data)


words = st.text(st.characters(whitelist_categories=("Lu", "Ll"), max_codepoint=0x7F), min_size=3, max_size=10).filter(
    lambda w: w.lower() not in ("total", "amount", "due")
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.lists(words, min_size=1, max_size=3),
            st.integers(1, 99_999),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2),
        ),
        min_size=1,
        max_size=6,
    ),
    european=st.booleans(),
)
def test_invoice_lines_printed_either_way_read_back(
    lines: list[tuple[list[str], int, Decimal]], european: bool
) -> None:
    show = _european if european else _english
    rows = []
    total = Decimal(0)
    for n, (desc, qty, price) in enumerate(lines, 1):
        amount = price * qty
        total += amount
        rows.append(f"{n}  {' '.join(desc)}  {qty}  {show(price)}  {show(amount)}")
    text = "Invoice No: X-1\nCurrency: USD\n" + "\n".join(rows) + f"\nTotal: USD {show(total)}\n"
    got = read_invoice(text)
    assert [Decimal(ln["amount"]) for ln in got.data["lines"]] == [p * q for _, q, p in lines]
    assert [ln["description"] for ln in got.data["lines"]] == [" ".join(d) for d, _, _ in lines]
    assert Decimal(got.data["total"]) == total
    assert not [u for u in got.unread if "line" in u or "add up" in u]


def test_document_containers_are_checked_against_the_manifest() -> None:
    docs = {k: parse_document(k, doc(k)) for k in ("packing_list", "bill_of_lading")}
    same = compare(declaration(), docs, Rules(), manifest_containers=["EGHU1234562"])
    assert {c.result for c in same if c.field == "containers (vs manifest)"} == {"match"}
    other = compare(declaration(), docs, Rules(), manifest_containers=["MSCU0000001", "EGHU1234562"])
    bad = [c for c in other if c.field == "containers (vs manifest)"]
    assert [(c.document, c.result, c.severity) for c in bad] == [
        ("packing_list", "mismatch", "medium"),
        ("bill_of_lading", "mismatch", "medium"),
    ]
