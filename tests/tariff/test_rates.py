"""Duty-rate parsing (real US HTS texts, the demo notation) and duty arithmetic, with property tests."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.platform.errors import DomainError
from smartcustoms.tariff.model import (
    DutyRate,
    SpecificRate,
    TariffError,
    TariffLine,
    ValueShare,
    format_rate,
    normalise_code,
    parse_rate,
    parse_special,
    rate_from_dict,
    rate_to_dict,
)

D = Decimal


def usd_to_twd(amount: Decimal, currency: str) -> Decimal:
    assert currency in ("USD", "TWD")
    return amount * D("32") if currency == "USD" else amount


@pytest.mark.parametrize(
    ("text", "ad_valorem", "specific", "parts"),
    [
        ("Free", None, [], []),
        ("6.8%", "0.068", [], []),
        ("17.60%", "0.176", [], []),
        ("1.5¢/kg", None, [("0.015", "USD", "kg", None)], []),
        ("2.5% + 1.5¢/kg", "0.025", [("0.015", "USD", "kg", None)], []),
        ("$1.035/kg + 17.5%", "0.175", [("1.035", "USD", "kg", None)], []),
        ("44¢/kg on drained weight", None, [("0.44", "USD", "kg", "drained weight")], []),
        ("1.5¢/kg on lead content", None, [("0.015", "USD", "kg", "lead content")], []),
        ("18.7¢/clean kg", None, [("0.187", "USD", "kg", "clean")], []),
        ("19¢/liter", None, [("0.19", "USD", "l", None)], []),
        ("8.5¢/ liter", None, [("0.085", "USD", "l", None)], []),
        ("$2.13/m2 + 5%", "0.05", [("2.13", "USD", "m2", None)], []),
        ("$1.27/m3", None, [("1.27", "USD", "m3", None)], []),
        ("86.1¢/m2of recording surface", None, [("0.861", "USD", "m2", "recording surface")], []),
        ("26¢/pr. + 10%", "0.1", [("0.26", "USD", "pair", None)], []),
        ("4.6¢/doz. + 1.9%", "0.019", [("0.046", "USD", "doz", None)], []),
        ("$1.08/pf. liter", None, [("1.08", "USD", "liter-pf", None)], []),
        ("10.5¢/bbl", None, [("0.105", "USD", "bbl", None)], []),
        ("51¢ each + 6.25% on the case", None, [("0.51", "USD", "u", None)], [("0.0625", "case")]),
        (
            "$1.90 each + 45% on the case + 110% on the strap, band or bracelet + 35% on the battery",
            None,
            [("1.90", "USD", "u", None)],
            [("0.45", "case"), ("1.10", "strap, band or bracelet"), ("0.35", "battery")],
        ),
        ("4.4¢/kg of total sugars + 8.5%", "0.085", [("0.044", "USD", "kg", "total sugars")], []),
        ("3.9% on the value of the rifle + 13% on the value of the telescopic sight, if any", None, [], None),
        ("2% of the fair retail value", None, [], [("0.02", "fair retail value")]),
        ("5% on the full value of the imported article", "0.05", [], []),
        ("NT$20/kg", None, [("20", "TWD", "kg", None)], []),
        ("EUR 1.6/100 kg", None, [("1.6", "EUR", "kg", None)], []),
    ],
)
def test_real_rate_texts(
    text: str,
    ad_valorem: str | None,
    specific: list[tuple[str, str, str, str | None]],
    parts: list[tuple[str, str]] | None,
) -> None:
    rate = parse_rate(text)
    assert rate.text == text
    assert rate.ad_valorem == (D(ad_valorem) if ad_valorem else None)
    assert [(s.amount, s.currency, s.per_unit, s.basis) for s in rate.specific] == [
        (D(a), c, u, b) for a, c, u, b in specific
    ]
    if parts is not None:
        assert [(p.rate, p.basis) for p in rate.parts] == [(D(r), b) for r, b in parts]
    assert rate.reference is None


def test_per_quantity_and_free_flags() -> None:
    assert parse_rate("EUR 1.6/100 kg").specific[0].per_quantity == 100
    free = parse_rate("Free")
    assert free.free and free.ad_valorem is None and not free.specific
    bonded = parse_rate("Free, under bond, as prescribed in U.S. note 1 to this subchapter")
    assert bonded.free and bonded.note == "under bond, as prescribed in U.S. note 1 to this subchapter"


@pytest.mark.parametrize(
    ("text", "reference", "extra"),
    [
        ("No change", "no_change", None),
        ("The duty provided in the applicable subheading", "applicable_subheading", None),
        ("The duty provided in the applicable subheading + 25%", "applicable_subheading", "0.25"),
        ("The duty provided in the applicable subheading plus 7.5%", "applicable_subheading", "0.075"),
        ("The duty provided inthe applicable subheading+ 25%", "applicable_subheading", "0.25"),
        ("The rate applicable to each garment in the ensemble if separately entered", "garments_separately", None),
        ("See additional U.S. note 3", "see:additional U.S. note 3", None),
    ],
)
def test_references_to_other_lines(text: str, reference: str, extra: str | None) -> None:
    rate = parse_rate(text)
    assert rate.reference == reference
    assert rate.ad_valorem == (D(extra) if extra else None)
    with pytest.raises(TariffError) as err:
        rate.assess(D(100), {}, usd_to_twd)
    assert err.value.problems[0].code == "rate_not_self_contained"


def test_steel_content_share() -> None:
    rate = parse_rate(
        "The duty provided in the applicable subheading + a duty of 50% upon the value of the steel content."
    )
    assert rate.reference == "applicable_subheading"
    assert rate.parts == (ValueShare(D("0.5"), "steel content"),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        ":",
        "¢",
        "6.8",
        "%",
        "1.5¢/furlong",
        "3.6606¢/kg less 0.020668¢/kg for each degree under 100 degrees (and fractions of a degree in proportion) "
        "but not less than 3.143854¢/kg",
        "A duty upon the value of the repairs or alterations (see U.S. note 3 of this subchapter)",
    ],
)
def test_unparsable_texts_raise_domain_error(text: str) -> None:
    with pytest.raises(TariffError) as err:
        parse_rate(text)
    assert isinstance(err.value, DomainError)
    assert err.value.problems[0].code == "unparsable_rate"


def test_special_column() -> None:
    rates = parse_special("Free (A+,AU,BH,CA,CL,CO,D,E,IL,JO,KR,MA,OM,P,PA,PE,S,SG) 3.4% (JP)")
    assert rates["A+"].free and rates["SG"].free and rates["JP"].ad_valorem == D("0.034")
    assert set(rates) >= {"A+", "AU", "CA", "JP"}
    squeezed = parse_special("Free (A+,AU,B,BH,CL,CO,D,E,IL,JO,MA,OM,P,PA,PE,S,SG)2.4% (KR)")
    assert squeezed["KR"].ad_valorem == D("0.024") and squeezed["B"].free
    mixed = parse_special("Free (AU,BH,CL,IL,KR,MA,OM,P,PE,S,SG) 6.7% (PA) See 9822.09.17-9822.09.20 (CO)")
    assert mixed["PA"].ad_valorem == D("0.067") and mixed["CO"].reference == "see:9822.09.17-9822.09.20"
    spaced = parse_special("Free (AU,BH, CL,CO,IL,JO,KR, MA,OM,P, PA,PE,S,SG)")
    assert len(spaced) == 14
    compound = parse_special("1.1¢/kg + 8.5% (S+)")
    assert compound["S+"].specific[0].amount == D("0.011")
    assert parse_special("No change")["*"].reference == "no_change"
    assert parse_special("") == {}
    with pytest.raises(TariffError):
        parse_special("Free (AU) nonsense")


def test_demo_notation_min_max_whichever() -> None:
    rate = parse_rate("20% or NT$185/liter-pf, whichever is higher")
    assert rate.combine == "max" and rate.ad_valorem == D("0.2") and rate.specific[0].per_unit == "liter-pf"
    low = parse_rate("10% or NT$5/kg, whichever is lower")
    assert low.combine == "min"
    bounded = parse_rate("15%, minimum NT$5/kg, maximum 40%")
    assert bounded.minimum == SpecificRate(D(5), "TWD", "kg") and bounded.maximum == D("0.4")


def test_assess_ad_valorem_steps() -> None:
    result = parse_rate("6.8%").assess(D("12345.00"), {}, usd_to_twd, "TWD")
    assert result.amount == D("839.46000")
    assert result.steps == ("6.8 % of 12,345.00 = 839.46",)


def test_assess_specific_converts_currency() -> None:
    result = parse_rate("1.5¢/kg").assess(D("1000"), {"kg": D(120)}, usd_to_twd, "TWD")
    assert result.amount == D("57.600")
    assert result.steps[0] == "1.5¢/kg × 120 kg = USD 1.80 → TWD 57.60"


def test_assess_compound_and_parts() -> None:
    rate = parse_rate("$1.90 each + 45% on the case + 110% on the strap, band or bracelet + 35% on the battery")
    q = {"u": D(10), "value:case": D(100), "value:strap, band or bracelet": D(50), "value:battery": D(4)}
    result = rate.assess(D(1000), q, usd_to_twd, "TWD")
    assert result.amount == D("19.00") * 32 + D(45) + D(55) + D("1.40")
    assert result.steps[-1].startswith("sum of the parts")


def test_assess_min_and_max() -> None:
    rate = parse_rate("15%, minimum NT$5/kg")
    small = rate.assess(D(100), {"kg": D(10)}, usd_to_twd, "TWD")
    assert small.amount == D(50) and "minimum" in small.steps[-1]
    big = rate.assess(D(1000), {"kg": D(10)}, usd_to_twd, "TWD")
    assert big.amount == D(150)
    capped = parse_rate("12%, maximum NT$50/u").assess(D(1000), {"u": D(2)}, usd_to_twd, "TWD")
    assert capped.amount == D(100) and "maximum" in capped.steps[-1]
    higher = parse_rate("20% or NT$185/liter-pf, whichever is higher")
    assert higher.assess(D(100), {"liter-pf": D(1)}, usd_to_twd, "TWD").amount == D(185)
    assert higher.assess(D(10000), {"liter-pf": D(1)}, usd_to_twd, "TWD").amount == D(2000)


def test_assess_missing_quantity_names_the_unit() -> None:
    with pytest.raises(TariffError) as err:
        parse_rate("2.5% + 1.5¢/kg on drained weight + 3¢/l").assess(D(100), {}, usd_to_twd)
    problems = err.value.problems
    assert [p.code for p in problems] == ["quantity_required", "quantity_required"]
    assert [p.path for p in problems] == [("quantities", "kg:drained weight"), ("quantities", "l")]


def test_free_assesses_to_zero() -> None:
    assert parse_rate("Free").assess(D(999), {}, usd_to_twd).amount == 0


def test_rate_dict_round_trip_and_codes() -> None:
    rate = parse_rate("15%, minimum NT$5/kg, maximum 40%")
    assert rate_from_dict(rate_to_dict(rate)) == rate
    assert normalise_code("0101.21.00.10") == "0101210010" and normalise_code("S01") == "S01"


def test_line_rate_for_programme() -> None:
    line = TariffLine(
        "01012100",
        8,
        True,
        general_rate=parse_rate("5%"),
        preferential={"A+": parse_rate("Free"), "KR": parse_rate("1%")},
    )
    assert line.rate_for("KR") == parse_rate("1%")
    assert line.rate_for("A") == parse_rate("Free")  # 'A+' grants programme A to least-developed beneficiaries
    assert line.rate_for("XX") == parse_rate("5%") and line.rate_for(None) == parse_rate("5%")


# --- properties -------------------------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.001"), max_value=D("9999"), places=3, allow_nan=False, allow_infinity=False)
fractions = st.decimals(min_value=D("0"), max_value=D("3"), places=4, allow_nan=False, allow_infinity=False)
units = st.sampled_from(["kg", "g", "l", "u", "pair", "doz", "m", "m2", "m3", "liter-pf", "t", "bbl"])
currencies = st.sampled_from(["USD", "TWD", "EUR", "JPY"])
specifics = st.builds(
    SpecificRate,
    amount=amounts,
    currency=currencies,
    per_unit=units,
    per_quantity=st.sampled_from([D(1), D(100), D(1000)]),
    basis=st.sampled_from([None, "drained weight", "lead content"]),
)
shares = st.builds(ValueShare, rate=fractions, basis=st.sampled_from(["case", "battery", "steel content"]))


@st.composite
def rates(draw: st.DrawFn) -> DutyRate:
    av = draw(st.none() | fractions)
    spec = tuple(draw(st.lists(specifics, max_size=3)))
    parts = tuple(draw(st.lists(shares, max_size=2, unique_by=lambda s: s.basis)))
    n_terms = (av is not None) + len(spec) + len(parts)
    combine = draw(st.sampled_from(["sum", "max", "min"])) if n_terms >= 2 else "sum"
    bound = st.none() | fractions | specifics.filter(lambda s: s.basis is None)
    minimum = draw(bound) if n_terms else None
    maximum = draw(bound) if n_terms else None
    return DutyRate("", av, spec, combine, minimum, maximum, free=n_terms == 0, parts=parts)


@settings(max_examples=100, deadline=None)
@given(rates())
def test_canonical_text_round_trips(rate: DutyRate) -> None:
    text = format_rate(rate)
    parsed = parse_rate(text)
    assert parsed.structure() == rate.structure(), text


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789.,%¢$/+ kgeachFreOorwhiclmnuxpt()ABS;:-NT")), max_size=40))
def test_parser_fails_only_with_domain_error(text: str) -> None:
    try:
        parse_rate(text)
        parse_special(text)
    except DomainError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_parser_never_crashes_on_any_text(text: str) -> None:
    with contextlib.suppress(DomainError):
        parse_rate(text)


def _quantities(rate: DutyRate, q: Decimal) -> dict[str, Decimal]:
    return dict.fromkeys(rate.quantity_keys, q)


money = st.decimals(min_value=D("0"), max_value=D("1000000"), places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(rates(), money, money, st.decimals(min_value=D(0), max_value=D(5000), places=3))
def test_assess_non_negative_and_monotone_in_value(rate: DutyRate, v1: Decimal, v2: Decimal, q: Decimal) -> None:
    low, high = sorted((v1, v2))
    qs = _quantities(rate, q)
    a = rate.assess(low, qs, usd_to_twd_any)
    b = rate.assess(high, qs, usd_to_twd_any)
    assert a.amount >= 0 and b.amount >= 0
    assert a.amount <= b.amount


def usd_to_twd_any(amount: Decimal, currency: str) -> Decimal:
    return amount * {"USD": D(32), "TWD": D(1), "EUR": D(35), "JPY": D("0.21")}[currency]


@settings(max_examples=100, deadline=None)
@given(
    st.none() | fractions,
    st.lists(specifics, min_size=1, max_size=3),
    money,
    st.decimals(min_value=D(0), max_value=D(5000), places=3),
)
def test_compound_is_the_sum_of_its_parts(
    av: Decimal | None, spec: list[SpecificRate], value: Decimal, q: Decimal
) -> None:
    compound = DutyRate("", av, tuple(spec))
    qs = _quantities(compound, q)
    total = compound.assess(value, qs, usd_to_twd_any).amount
    parts = [DutyRate("", None, (s,)).assess(value, qs, usd_to_twd_any).amount for s in spec]
    if av is not None:
        parts.append(DutyRate("", av).assess(value, qs, usd_to_twd_any).amount)
    assert total == sum(parts, D(0))
