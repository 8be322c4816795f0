"""Duty and tax arithmetic with the schedule's real rate objects: CIF, exchange, preference, de minimis, rounding."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.clearance.assessment import TaxRules, assess
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform.errors import DomainError
from smartcustoms.tariff.model import parse_rate
from tests.clearance.conftest import declaration

ON = date(2026, 11, 20)


@dataclass
class Line:
    code: str
    general_rate: Any
    preferential: dict[str, Any] = field(default_factory=dict)
    is_leaf: bool = True


def fx(currency: str, _on: date) -> Decimal | None:
    return {"USD": Decimal("30"), "JPY": Decimal("0.2")}.get(currency)


def decl(**kw: Any) -> DeclarationIn:
    return DeclarationIn.model_validate(declaration(**kw))


def lines(rate1: str = "10%", rate2: str = "5%", pref: dict[str, str] | None = None) -> dict[int, Line]:
    return {
        1: Line("851713", parse_rate(rate1), {k: parse_rate(v) for k, v in (pref or {}).items()}),
        2: Line("610910", parse_rate(rate2)),
    }


def test_cif_fob_conversion_duty_and_vat_line_by_line() -> None:
    a = assess(decl(), lines(), fx, TaxRules(), ON)
    # FOB 10000 + 400 + 50 = 10450 USD × 30 = 313,500 TWD
    assert a.customs_value == Decimal("313500")
    # line 1: 6000 + 60 % of 450 = 6270 USD → 188,100; duty 10 % = 18,810; line 2: 4180 USD → 125,400; 5 % = 6,270
    assert [i.customs_value for i in a.items] == [Decimal("188100"), Decimal("125400")]
    assert [i.duty for i in a.items] == [Decimal("18810"), Decimal("6270")]
    assert a.duty == Decimal("25080")
    # VAT 5 % of (value + duty)
    assert a.vat == Decimal("10346") + Decimal("6584")
    assert a.total == a.duty + a.vat
    assert any("CIF" in s for s in a.steps) and all(i.steps for i in a.items)


def test_cif_incoterm_does_not_add_freight_again() -> None:
    a = assess(decl(incoterm="CIF"), lines(), fx, TaxRules(), ON)
    assert a.customs_value == Decimal("300000")
    assert any("included in the CIF price" in s for s in a.steps)


def test_preferential_rate_when_claimed() -> None:
    d = declaration()
    d["items"][0]["preference"] = {"fta": "ECFA", "proof_of_origin_ref": "CO-1"}
    a = assess(DeclarationIn.model_validate(d), lines(pref={"ECFA": "Free"}), fx, TaxRules(), ON)
    assert a.items[0].duty == 0 and a.items[0].rate_basis == "preferential ECFA"


def test_specific_and_compound_rates() -> None:
    rules = TaxRules(rounding_quantum=Decimal("0.01"))
    a = assess(decl(), lines(rate1="2.5% + 1.5¢/kg", rate2="$2/kg"), fx, rules, ON)
    # line 1: 2.5 % × 188,100 = 4,702.50 + 0.015 USD × 12.5 kg × 30 = 5.625 → 4,708.13
    assert a.items[0].duty == Decimal("4708.13")
    # line 2: 2 USD × 200 kg × 30 = 12,000
    assert a.items[1].duty == Decimal("12000.00")


def test_de_minimis_waives_duty_and_tax() -> None:
    d = declaration(invoice_total="50.00", freight="0", insurance="0")
    d["items"] = [d["items"][0] | {"value": "50.00"}]
    a = assess(DeclarationIn.model_validate(d), lines(), fx, TaxRules(de_minimis=Decimal("2000")), ON)
    assert a.de_minimis_applied and a.duty == 0 and a.vat == 0
    rules = TaxRules(de_minimis=Decimal("2000"), de_minimis_covers_tax=False)
    a = assess(DeclarationIn.model_validate(d), lines(), fx, rules, ON)
    assert a.duty == 0 and a.vat > 0


def test_rounding_mode_matters_on_fractions() -> None:
    d = declaration(invoice_total="10.01", freight="0", insurance="0")
    d["items"] = [d["items"][0] | {"value": "10.01"}]
    up = assess(DeclarationIn.model_validate(d), lines(), fx, TaxRules(rounding_mode="up", de_minimis=Decimal(0)), ON)
    down = assess(
        DeclarationIn.model_validate(d), lines(), fx, TaxRules(rounding_mode="down", de_minimis=Decimal(0)), ON
    )
    assert up.items[0].duty - down.items[0].duty == 1  # 10 % of 300.30 = 30.03


def test_missing_exchange_rate_and_missing_rate_are_problems() -> None:
    with pytest.raises(DomainError) as err:
        assess(decl(currency="EUR"), lines(), fx, TaxRules(), ON)
    assert err.value.problems[0].code == "no_exchange_rate"
    no_rate = lines()
    no_rate[2] = Line("610910", None)
    with pytest.raises(DomainError) as err:
        assess(decl(), no_rate, fx, TaxRules(), ON)
    assert err.value.problems[0].path == ("items", 1, "tariff_code")


def test_rules_reject_unknown_rounding_mode() -> None:
    with pytest.raises(DomainError):
        TaxRules.from_dict({"rounding_mode": "banker"})


money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2)


@settings(max_examples=60, deadline=None)
@given(v1=money, v2=money, freight=money, pct=st.integers(0, 40))
def test_totals_are_sums_and_duty_monotone_in_value(v1: Decimal, v2: Decimal, freight: Decimal, pct: int) -> None:
    d = declaration(invoice_total=str(v1 + v2), freight=str(freight))
    d["items"][0]["value"], d["items"][1]["value"] = str(v1), str(v2)
    rules = TaxRules(de_minimis=Decimal(0), rounding_quantum=Decimal("0.01"))
    ls = lines(rate1=f"{pct}%")
    a = assess(DeclarationIn.model_validate(d), ls, fx, rules, ON)
    assert a.duty == sum(i.duty for i in a.items) and a.vat == sum(i.vat for i in a.items)
    assert all(i.duty >= 0 and i.vat >= 0 for i in a.items)
    assert abs(sum(i.customs_value for i in a.items) - (v1 + v2 + freight + Decimal(50)) * 30) < Decimal("0.0001")
    d["items"][0]["value"] = str(v1 * 2)
    d["invoice_total"] = str(v1 * 2 + v2)
    bigger = assess(DeclarationIn.model_validate(d), ls, fx, rules, ON)
    assert bigger.items[0].duty >= a.items[0].duty


def test_preference_needs_a_verified_certificate_when_configured() -> None:
    d = declaration()
    d["items"][0]["preference"] = {"fta": "ECFA", "proof_of_origin_ref": "CO-1"}
    rules = TaxRules(preference_requires_certificate=True)
    ls = lines(pref={"ECFA": "Free"})
    granted = assess(DeclarationIn.model_validate(d), ls, fx, rules, ON, origin_check=lambda fta, ref: None)
    assert granted.items[0].duty == 0
    refused = assess(
        DeclarationIn.model_validate(d), ls, fx, rules, ON, origin_check=lambda fta, ref: f"no certificate {ref}"
    )
    assert refused.items[0].rate_basis == "general" and refused.items[0].duty == Decimal("18810")
    assert any("not granted: no certificate CO-1" in s for s in refused.items[0].steps)
