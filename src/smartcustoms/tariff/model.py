"""Tariff domain: duty-rate texts parsed into structured rates, duty arithmetic, tariff lines and schedules.

Pure: no I/O. Money and rates are `Decimal` throughout; nothing is rounded inside (the caller rounds
the assessed amount to its currency's minor unit), so sums of parts stay exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import Any, Literal

from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t, t_plain

Combine = Literal["sum", "max", "min"]
HUNDRED = Decimal(100)
ZERO = Decimal(0)


class TariffError(DomainError):
    """The tariff slice's error: an unparsable rate, a missing quantity, an unknown schedule or code."""


def _problem(code: str, path: tuple[str | int, ...], message: str) -> TariffError:
    return TariffError(Problem(code, path, message))


# ---------------------------------------------------------------------------------------------------------------
# Units


UNIT_ALIASES: dict[str, str] = {
    "kg": "kg",
    "kgs": "kg",
    "kgm": "kg",
    "clean kg": "kg",
    "g": "g",
    "t": "t",
    "tne": "t",
    "l": "l",
    "liter": "l",
    "liters": "l",
    "litre": "l",
    "litres": "l",
    "ltr": "l",
    "pf.liter": "liter-pf",
    "pf. liter": "liter-pf",
    "pf.liters": "liter-pf",
    "proof liter": "liter-pf",
    "liter-pf": "liter-pf",
    "bbl": "bbl",
    "u": "u",
    "each": "u",
    "no.": "u",
    "no": "u",
    "item": "u",
    "items": "u",
    "pcs": "u",
    "pce": "u",
    "pr.": "pair",
    "pr": "pair",
    "prs": "pair",
    "prs.": "pair",
    "pair": "pair",
    "pairs": "pair",
    "doz.": "doz",
    "doz": "doz",
    "gross": "gross",
    "m": "m",
    "lin. m": "m",
    "mtr": "m",
    "m2": "m2",
    "m²": "m2",
    "mtk": "m2",
    "m3": "m3",
    "m³": "m3",
    "mtq": "m3",
    "cm2": "cm2",
    "jewel": "jewel",
    "carat": "carat",
}
"""Unit spellings met in schedules (US HTS, WCO/UN-ECE codes) mapped to the slice's unit names."""

_UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(UNIT_ALIASES, key=len, reverse=True))


def normalise_unit(text: str) -> str:
    """A unit spelling ('No.', 'prs.', 'liters', 'm²') as the slice's unit name ('u', 'pair', 'l', 'm2')."""
    key = text.strip().lower()
    if key in UNIT_ALIASES:
        return UNIT_ALIASES[key]
    key = key.rstrip(".")
    return UNIT_ALIASES.get(key, UNIT_ALIASES.get(key + ".", key))


# ---------------------------------------------------------------------------------------------------------------
# Rates


@dataclass(frozen=True)
class SpecificRate:
    """An amount of money per quantity of goods: 1.5 ¢/kg is SpecificRate(Decimal('0.015'), 'USD', 'kg').

    `basis` qualifies what is measured ('drained weight', 'lead content', 'over 17' jewels); a rate with a
    basis needs the quantity under `quantity_key`, e.g. 'kg:drained weight'.
    """

    amount: Decimal
    currency: str
    per_unit: str
    per_quantity: Decimal = Decimal(1)
    basis: str | None = None

    @property
    def quantity_key(self) -> str:
        return f"{self.per_unit}:{self.basis}" if self.basis else self.per_unit


@dataclass(frozen=True)
class ValueShare:
    """An ad valorem part charged on the value of a named part or content ('5% on the case').

    Its value is passed to `assess` in `quantities` under `value:<basis>`, in the national currency.
    """

    rate: Decimal
    basis: str

    @property
    def quantity_key(self) -> str:
        return f"value:{self.basis}"


Bound = SpecificRate | Decimal


@dataclass(slots=True)
class DutyAssessment:
    """Duty owed, unrounded, in the national currency, with each step of the arithmetic in words.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    amount: Decimal
    steps: tuple[str, ...]


@dataclass(frozen=True)
class DutyRate:
    """A duty rate as a schedule states it (`text`) and its structure.

    The duty is `combine` ('sum', 'max' = whichever is higher, 'min' = whichever is lower) of the ad valorem
    part (`ad_valorem`, a fraction of the customs value), each specific part and each value share,
    then raised to `minimum` and capped at `maximum` (a fraction of value or a specific amount).
    `reference` marks a rate that is (or adds to) the rate of another line, as the US chapter 99 and
    chapter 98 lines say ('The duty provided in the applicable subheading + 25%'); such a rate cannot be
    assessed on its own.
    """

    text: str
    ad_valorem: Decimal | None = None
    specific: tuple[SpecificRate, ...] = ()
    combine: Combine = "sum"
    minimum: Bound | None = None
    maximum: Bound | None = None
    free: bool = False
    parts: tuple[ValueShare, ...] = ()
    reference: str | None = None
    note: str | None = None

    @property
    def is_self_contained(self) -> bool:
        return self.reference is None

    @cached_property
    def quantity_keys(self) -> tuple[str, ...]:
        """The quantities `assess` needs (units of specific parts, values of value shares)."""
        keys = [s.quantity_key for s in self.specific] + [p.quantity_key for p in self.parts]
        for bound in (self.minimum, self.maximum):
            if isinstance(bound, SpecificRate):
                keys.append(bound.quantity_key)
        return tuple(dict.fromkeys(keys))

    def structure(self) -> dict[str, Any]:
        """The parsed form as JSON-ready data (everything but the original text)."""
        out = rate_to_dict(self)
        out.pop("text")
        return out

    def assess(
        self,
        customs_value: Decimal,
        quantities: Mapping[str, Decimal],
        to_national: Callable[[Decimal, str], Decimal],
        national_currency: str | None = None,
    ) -> DutyAssessment:
        """Duty on goods of `customs_value` (national currency) and `quantities` (unit name -> amount).

        `to_national(amount, currency)` converts specific amounts; it is not called for amounts already in
        `national_currency` when that is given.
        """
        if self.reference is not None:
            raise _problem(
                "rate_not_self_contained",
                ("rate",),
                t(
                    "Rate {rate} refers to another line's rate ({reference}); assess that line's rate",
                    rate=repr(self.text),
                    reference=self.reference,
                ),
            )
        if customs_value < 0:
            raise _problem("invalid_value", ("customs_value",), t("Customs value must not be negative"))
        missing = [k for k in self.quantity_keys if k not in quantities]
        if missing:
            raise TariffError(
                [
                    Problem(
                        "quantity_required",
                        ("quantities", k),
                        t("Rate {rate} needs the quantity in {key}", rate=repr(self.text), key=k),
                    )
                    for k in missing
                ]
            )
        negative = [k for k in self.quantity_keys if quantities[k] < 0]
        if negative:
            raise TariffError(
                [
                    Problem("invalid_quantity", ("quantities", k), t("Quantity {key} must not be negative", key=k))
                    for k in negative
                ]
            )
        steps: list[str] = []
        amounts: list[Decimal] = []
        nat = national_currency

        def convert(amount: Decimal, currency: str) -> tuple[Decimal, str]:
            if nat is not None and currency == nat:
                return amount, ""
            converted = to_national(amount, currency)
            return converted, f" → {nat + ' ' if nat else ''}{_money(converted)}"

        if self.free and self.ad_valorem is None and not self.specific and not self.parts:
            steps.append(t_plain("{rate}: free = 0.00", rate=self.text))
            amounts.append(ZERO)
        if self.ad_valorem is not None:
            amount = customs_value * self.ad_valorem
            steps.append(
                t_plain(
                    "{percent} % of {value} = {amount}",
                    percent=_pct(self.ad_valorem),
                    value=_money(customs_value),
                    amount=_money(amount),
                )
            )
            amounts.append(amount)
        for spec in self.specific:
            qty = quantities[spec.quantity_key]
            raw = spec.amount * qty / spec.per_quantity
            amount, arrow = convert(raw, spec.currency)
            steps.append(
                t_plain(
                    "{rate} × {quantity} {unit} = {currency} {amount}{converted}",
                    rate=format_specific(spec),
                    quantity=_num(qty),
                    unit=spec.per_unit,
                    currency=spec.currency,
                    amount=_money(raw),
                    converted=arrow,
                )
            )
            amounts.append(amount)
        for share in self.parts:
            value = quantities[share.quantity_key]
            amount = value * share.rate
            steps.append(
                t_plain(
                    "{percent} % of {basis} value {value} = {amount}",
                    percent=_pct(share.rate),
                    basis=share.basis,
                    value=_money(value),
                    amount=_money(amount),
                )
            )
            amounts.append(amount)
        if not amounts:
            amounts.append(ZERO)
        if self.combine == "sum":
            total = sum(amounts, ZERO)
            if len(amounts) > 1:
                steps.append(t_plain("sum of the parts = {amount}", amount=_money(total)))
        elif self.combine == "max":
            total = max(amounts)
            steps.append(t_plain("whichever is higher = {amount}", amount=_money(total)))
        else:
            total = min(amounts)
            steps.append(t_plain("whichever is lower = {amount}", amount=_money(total)))
        if self.minimum is not None:
            floor, how = self._bound(self.minimum, customs_value, quantities, convert)
            if total < floor:
                steps.append(t_plain("minimum {bound_text} = {amount} applies", bound_text=how, amount=_money(floor)))
                total = floor
        if self.maximum is not None:
            cap, how = self._bound(self.maximum, customs_value, quantities, convert)
            if total > cap:
                steps.append(t_plain("maximum {bound_text} = {amount} applies", bound_text=how, amount=_money(cap)))
                total = cap
        return DutyAssessment(total, tuple(steps))

    @staticmethod
    def _bound(
        bound: Bound,
        customs_value: Decimal,
        quantities: Mapping[str, Decimal],
        convert: Callable[[Decimal, str], tuple[Decimal, str]],
    ) -> tuple[Decimal, str]:
        if isinstance(bound, Decimal):
            return customs_value * bound, t_plain(
                "{percent} % of {value}", percent=_pct(bound), value=_money(customs_value)
            )
        qty = quantities[bound.quantity_key]
        amount, _ = convert(bound.amount * qty / bound.per_quantity, bound.currency)
        return amount, f"{format_specific(bound)} × {_num(qty)} {bound.per_unit}"


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _pct(fraction: Decimal) -> str:
    return _num(fraction * HUNDRED)


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


# ---------------------------------------------------------------------------------------------------------------
# Canonical text (what `parse_rate` reads back exactly)


def format_specific(spec: SpecificRate) -> str:
    """Canonical text of a specific rate: '1.5¢/kg', '$1.035/kg', 'NT$20/kg', 'EUR 1.6/100 kg on drained weight'."""
    per = f"{_num(spec.per_quantity)} {spec.per_unit}" if spec.per_quantity != 1 else spec.per_unit
    if spec.currency == "USD" and spec.amount < 1:
        text = f"{_num(spec.amount * HUNDRED)}¢/{per}"
    elif spec.currency == "USD":
        text = f"${_num(spec.amount)}/{per}"
    elif spec.currency == "TWD":
        text = f"NT${_num(spec.amount)}/{per}"
    else:
        text = f"{spec.currency} {_num(spec.amount)}/{per}"
    return f"{text} on {spec.basis}" if spec.basis else text


def _format_bound(bound: Bound) -> str:
    return f"{_pct(bound)}%" if isinstance(bound, Decimal) else format_specific(bound)


def format_rate(rate: DutyRate) -> str:
    """Canonical text of a rate's structure; `parse_rate(format_rate(r))` has the same structure as `r`."""
    terms: list[str] = []
    if rate.ad_valorem is not None:
        terms.append(f"{_pct(rate.ad_valorem)}%")
    terms += [format_specific(s) for s in rate.specific]
    terms += [f"{_pct(p.rate)}% on {p.basis}" for p in rate.parts]
    if rate.reference is not None:
        head = REFERENCE_TEXT.get(rate.reference, rate.reference)
        text = " + ".join([head, *terms])
    elif not terms:
        text = "Free"
    elif rate.combine == "sum":
        text = " + ".join(terms)
    else:
        text = " or ".join(terms) + (", whichever is higher" if rate.combine == "max" else ", whichever is lower")
    if rate.minimum is not None:
        text += f", minimum {_format_bound(rate.minimum)}"
    if rate.maximum is not None:
        text += f", maximum {_format_bound(rate.maximum)}"
    if rate.note:
        text += f"; {rate.note}"
    return text


# ---------------------------------------------------------------------------------------------------------------
# Parsing

REFERENCE_TEXT = {
    "applicable_subheading": "The duty provided in the applicable subheading",
    "such_subheading": "The duty rate provided in such subheading",
    "no_change": "No change",
    "garments_separately": "The rate applicable to each garment in the ensemble if separately entered",
    "principal_article": "The rate applicable to the article of which it is a part or accessory",
    "absent_heading": "The rate applicable in the absence of this heading",
}

_REFERENCES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^the duty (?:rate )?provided (?:for )?in\s*the applicable subheading", re.I),
        "applicable_subheading",
    ),
    (re.compile(r"^the duty rate provided in such subheading", re.I), "such_subheading"),
    (re.compile(r"^no change", re.I), "no_change"),
    (
        re.compile(
            r"^the rate applicable to each garment in (?:(?:in )?the )+ensemble if (?:separately entered|entered separately)",
            re.I,
        ),
        "garments_separately",
    ),
    (
        re.compile(r"^the rate applicable to the article of which it is an? (?:part or )?accessory", re.I),
        "principal_article",
    ),
    (re.compile(r"^the rate applicable in the absence of this (?:sub)?heading", re.I), "absent_heading"),
    (
        re.compile(r"^the duty rate provided for originating goods of (?P<arg>[a-z]+) in such subheading", re.I),
        "fta_origin",
    ),
    (
        re.compile(r"^the rate provided for beneficiary countries in heading (?P<arg>[\d.]+)", re.I),
        "beneficiary_heading",
    ),
    (re.compile(r"^see (?P<arg>.+)$", re.I), "see"),
]

_NUMBER = r"\d+(?:[.,]\d+)?|\.\d+"
_AD_VALOREM = re.compile(
    rf"^(?:a duty of\s+)?(?P<n>{_NUMBER})\s*(?:%|percent|per cent)(?:\s+(?:on|of|upon)\s+(?P<basis>.+))?$", re.I
)
_SPECIFIC = re.compile(
    rf"^(?P<cur>\$|NT\$|US\$|[A-Z]{{3}}\s*)?(?P<n>{_NUMBER})\s*(?P<cent>¢)?\s*(?P<cur2>[A-Z]{{3}})?\s*"
    rf"(?:/\s*(?:(?P<perq>{_NUMBER})\s*)?(?P<unit>{_UNIT_PATTERN})(?![a-z0-9])|\s*(?P<each>each)(?![a-z]))"
    r"(?:\s+(?P<rest>.+))?$",
    re.I,
)
_FULL_VALUE = {
    "",
    "value",
    "the value",
    "customs value",
    "full value of the imported article",
    "the full value of the imported article",
}
_MIN_MAX = re.compile(
    r"(?:,|;)?\s*(?:but\s+)?(?P<kind>minimum|maximum|min\.?|max\.?|not less than|not more than)\s+(?P<val>[^,;]+)\s*$",
    re.I,
)
_WHICHEVER = re.compile(r",?\s*whichever is (?P<kind>higher|greater|lower|less)\s*$", re.I)


def _clean(text: str) -> str:
    tx = text.replace("\r", " ").replace("\n", " ").replace("\u00a0", " ")
    tx = tx.replace("m²", "m2").replace("m³", "m3").replace("％", "%").replace("＋", "+")
    tx = re.sub(r"\s+", " ", tx).strip()
    tx = re.sub(r"¢\s+/", "¢/", tx)
    tx = re.sub(r"/\s+", "/", tx)
    tx = re.sub(r"(m[23])of\b", r"\1 of", tx)
    tx = re.sub(r"([a-z])- ([a-z])", r"\1\2", tx)  # words split at a line end: 'origin- ating'
    return tx.rstrip(".").strip()


def _dec(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regexes only pass numbers
        raise _problem("unparsable_rate", ("rate",), t("Not a number: {value}", value=repr(text))) from exc


def _basis(text: str | None) -> str | None:
    if text is None:
        return None
    b = re.sub(r"^(?:on|of|upon)\s+", "", text.strip(), flags=re.I)
    b = re.sub(r"^the\s+", "", b, flags=re.I)
    b = re.sub(r"^value of (?:the\s+)?", "", b, flags=re.I)
    b = b.strip().rstrip(",").strip()
    return b or None


def _term(text: str, whole: str) -> SpecificRate | ValueShare | Decimal:
    """One '+'-separated term: an ad valorem fraction, a value share or a specific rate."""
    tx = text.strip()
    m = _AD_VALOREM.match(tx)
    if m:
        rate = _dec(m["n"]) / HUNDRED
        basis = m["basis"]
        if basis is None or basis.strip().lower() in _FULL_VALUE:
            return rate
        b = _basis(basis)
        if b is None or b.lower() in _FULL_VALUE:
            return rate
        return ValueShare(rate, b)
    m = _SPECIFIC.match(tx)
    if m:
        cur = (m["cur"] or "").strip()
        cur2 = m["cur2"]
        if m["cent"]:
            if cur and cur not in ("$", "US$", "USD"):
                raise _problem(
                    "unparsable_rate", ("rate",), t("Cents of {currency} in {rate}", currency=cur, rate=repr(whole))
                )
            currency, amount = "USD", _dec(m["n"]) / HUNDRED
        elif cur in ("$", "US$"):
            currency, amount = "USD", _dec(m["n"])
        elif cur == "NT$":
            currency, amount = "TWD", _dec(m["n"])
        elif cur:
            currency, amount = cur.upper(), _dec(m["n"])
        elif cur2:
            currency, amount = cur2.upper(), _dec(m["n"])
        else:
            raise _problem(
                "unparsable_rate", ("rate",), t("No currency in {term} of {rate}", term=repr(tx), rate=repr(whole))
            )
        if cur and cur2:
            raise _problem("unparsable_rate", ("rate",), t("Two currencies in {term}", term=repr(tx)))
        if m["each"]:
            unit, basis_text = "u", m["rest"]
        else:
            raw_unit = m["unit"].lower()
            unit = normalise_unit(raw_unit)
            basis_text = m["rest"]
            if raw_unit == "clean kg":
                unit, basis_text = "kg", "clean"
        per_q = _dec(m["perq"]) if m["perq"] else Decimal(1)
        if per_q <= 0:
            raise _problem("unparsable_rate", ("rate",), t("Per-quantity must be positive in {rate}", rate=repr(whole)))
        basis = _basis(basis_text)
        if basis is not None and not re.fullmatch(r"[\w ,.'()\-]+", basis):
            raise _problem(
                "unparsable_rate", ("rate",), t("Cannot read {term} in {rate}", term=repr(tx), rate=repr(whole))
            )
        if basis is not None and re.search(r"\bless\b|\bfor each\b|%|¢|\$", basis):
            raise _problem(
                "unparsable_rate", ("rate",), t("Sliding or conditional rate {rate} is not supported", rate=repr(whole))
            )
        return SpecificRate(amount, currency, unit, per_q, basis)
    raise _problem(
        "unparsable_rate", ("rate",), t("Cannot read {term} in duty rate {rate}", term=repr(tx), rate=repr(whole))
    )


def _bound(text: str, whole: str) -> Bound:
    term = _term(text, whole)
    if isinstance(term, ValueShare):
        raise _problem(
            "unparsable_rate", ("rate",), t("A minimum or maximum on a part's value in {rate}", rate=repr(whole))
        )
    return term


def _terms(text: str, whole: str) -> tuple[Decimal | None, tuple[SpecificRate, ...], tuple[ValueShare, ...]]:
    ad_valorem: Decimal | None = None
    specific: list[SpecificRate] = []
    parts: list[ValueShare] = []
    for piece in re.split(r"\s*\+\s*|\s+plus\s+", text):
        if not piece:
            raise _problem("unparsable_rate", ("rate",), t("Empty term in duty rate {rate}", rate=repr(whole)))
        term = _term(piece, whole)
        if isinstance(term, Decimal):
            ad_valorem = term if ad_valorem is None else ad_valorem + term
        elif isinstance(term, ValueShare):
            parts.append(term)
        else:
            specific.append(term)
    return ad_valorem, tuple(specific), tuple(parts)


def parse_rate(text: str) -> DutyRate:
    """Structure a duty-rate text ('Free', '6.8%', '1.5¢/kg', '2.5% + 1.5¢/kg', '$1.035/kg + 17.5%',
    '10% or NT$5/kg, whichever is higher', '5%, minimum NT$3/kg', 'The duty provided in the applicable
    subheading + 25%'). Raises TariffError `unparsable_rate` on anything else."""
    if not isinstance(text, str):
        raise _problem("unparsable_rate", ("rate",), t("Duty rate must be text, not {kind}", kind=type(text).__name__))
    return _parse_cached(text)


@lru_cache(maxsize=8192)
def _parse_cached(text: str) -> DutyRate:
    tx = _clean(text)
    if not tx:
        raise _problem("unparsable_rate", ("rate",), t("Empty duty rate"))
    note: str | None = None
    if ";" in tx:
        tx, note = (s.strip() for s in tx.split(";", 1))
        note = note or None
    # Free, possibly with a condition
    m = re.fullmatch(r"free(?:\s*,\s*(?P<note>.+))?", tx, re.I)
    if m:
        cond = m["note"]
        return DutyRate(text, free=True, note=_join_note(cond, note))
    # A reference to another line's rate, possibly with additional parts
    for pattern, kind in _REFERENCES:
        m = pattern.match(tx)
        if not m:
            continue
        rest = tx[m.end() :].strip()
        arg = m.groupdict().get("arg")
        reference = f"{kind}:{arg.strip()}" if arg else kind
        if kind == "see":
            return DutyRate(text, reference=reference, note=note)
        if not rest:
            return DutyRate(text, reference=reference, note=note)
        if kind == "such_subheading" and rest.lower().startswith("minus"):
            return DutyRate(text, reference=reference, note=_join_note(rest, note))
        rest = re.sub(r"^(?:\+|plus)\s*", "", rest, flags=re.I)
        av, spec, parts = _terms(rest, text)
        return DutyRate(text, ad_valorem=av, specific=spec, parts=parts, reference=reference, note=note)
    # Minimum / maximum clauses at the end, in any order
    minimum: Bound | None = None
    maximum: Bound | None = None
    while True:
        m = _MIN_MAX.search(tx)
        if not m or m.start() == 0:
            break
        kind = m["kind"].lower()
        bound = _bound(m["val"].strip(), text)
        if kind.startswith("min") or kind == "not less than":
            if minimum is not None:
                raise _problem("unparsable_rate", ("rate",), t("Two minimums in {rate}", rate=repr(text)))
            minimum = bound
        else:
            if maximum is not None:
                raise _problem("unparsable_rate", ("rate",), t("Two maximums in {rate}", rate=repr(text)))
            maximum = bound
        tx = tx[: m.start()].strip().rstrip(",").strip()
    combine: Combine = "sum"
    m = _WHICHEVER.search(tx)
    if m:
        combine = "max" if m["kind"].lower() in ("higher", "greater") else "min"
        tx = tx[: m.start()].strip()
        pieces = re.split(r"\s+or\s+", tx, flags=re.I)
        if len(pieces) < 2:
            raise _problem(
                "unparsable_rate", ("rate",), t("'whichever' needs two alternatives in {rate}", rate=repr(text))
            )
        alt_av: Decimal | None = None
        alt_specific: list[SpecificRate] = []
        alt_parts: list[ValueShare] = []
        for piece in pieces:
            term = _term(piece, text)
            if isinstance(term, Decimal):
                if alt_av is not None:
                    raise _problem(
                        "unparsable_rate", ("rate",), t("Two ad valorem alternatives in {rate}", rate=repr(text))
                    )
                alt_av = term
            elif isinstance(term, ValueShare):
                alt_parts.append(term)
            else:
                alt_specific.append(term)
        return DutyRate(text, alt_av, tuple(alt_specific), combine, minimum, maximum, parts=tuple(alt_parts), note=note)
    av, spec, parts = _terms(tx, text)
    return DutyRate(text, av, spec, "sum", minimum, maximum, parts=parts, note=note)


def _join_note(*notes: str | None) -> str | None:
    kept = [n.strip() for n in notes if n and n.strip()]
    return "; ".join(kept) or None


_PROGRAMMES = re.compile(r"\(\s*(?P<list>\.?[A-Z]{1,2}[+*]?(?:\s*[,.\s]\s*\.?\s*[A-Z]{1,2}[+*]?)*)\s*,?\s*\)")


def parse_special(text: str) -> dict[str, DutyRate]:
    """The US 'special' column: 'Free (A+,AU,BH) 3.4% (KR)' -> {'A+': Free, 'AU': Free, 'BH': Free, 'KR': 3.4%}.

    Programme codes are kept as written ('A', 'A*', 'A+'); a rate with no programme list applies to every
    programme and is returned under '*'.
    """
    tx = _clean(text) if isinstance(text, str) else text
    if not isinstance(tx, str):
        raise _problem("unparsable_rate", ("rate",), t("Special rate must be text"))
    if not tx:
        return {}
    out: dict[str, DutyRate] = {}
    pos = 0
    for m in _PROGRAMMES.finditer(tx):
        segment = tx[pos : m.start()].strip()
        pos = m.end()
        if not segment:
            raise _problem("unparsable_rate", ("rate",), t("Programme list without a rate in {rate}", rate=repr(text)))
        rate = parse_rate(segment)
        for code in re.split(r"[,.\s]+", m["list"]):
            if code:
                out[code] = rate
    tail = tx[pos:].strip()
    if tail:
        if out:
            raise _problem(
                "unparsable_rate",
                ("rate",),
                t("Rate {tail} without a programme list in {rate}", tail=repr(tail), rate=repr(text)),
            )
        out["*"] = parse_rate(tail)
    return out


# ---------------------------------------------------------------------------------------------------------------
# (De)serialisation of the parsed form (stored next to the original text)


def _bound_to_dict(bound: Bound | None) -> dict[str, Any] | None:
    if bound is None:
        return None
    if isinstance(bound, Decimal):
        return {"ad_valorem": _num(bound)}
    return {"specific": _spec_to_dict(bound)}


def _spec_to_dict(s: SpecificRate) -> dict[str, Any]:
    out = {"amount": _num(s.amount), "currency": s.currency, "per_unit": s.per_unit}
    if s.per_quantity != 1:
        out["per_quantity"] = _num(s.per_quantity)
    if s.basis:
        out["basis"] = s.basis
    return out


def rate_to_dict(rate: DutyRate) -> dict[str, Any]:
    """JSON-ready form of a rate, compact (defaults left out); Decimals as strings so nothing is lost."""
    out: dict[str, Any] = {"text": rate.text}
    if rate.ad_valorem is not None:
        out["ad_valorem"] = _num(rate.ad_valorem)
    if rate.specific:
        out["specific"] = [_spec_to_dict(s) for s in rate.specific]
    if rate.combine != "sum":
        out["combine"] = rate.combine
    if rate.minimum is not None:
        out["minimum"] = _bound_to_dict(rate.minimum)
    if rate.maximum is not None:
        out["maximum"] = _bound_to_dict(rate.maximum)
    if rate.free:
        out["free"] = True
    if rate.parts:
        out["parts"] = [{"rate": _num(p.rate), "basis": p.basis} for p in rate.parts]
    if rate.reference is not None:
        out["reference"] = rate.reference
    if rate.note is not None:
        out["note"] = rate.note
    return out


def _spec_from_dict(d: Mapping[str, Any]) -> SpecificRate:
    return SpecificRate(
        Decimal(d["amount"]), d["currency"], d["per_unit"], Decimal(d.get("per_quantity", "1")), d.get("basis")
    )


def _bound_from_dict(d: Mapping[str, Any] | None) -> Bound | None:
    if d is None:
        return None
    if "ad_valorem" in d:
        return Decimal(d["ad_valorem"])
    return _spec_from_dict(d["specific"])


def rate_from_dict(d: Mapping[str, Any]) -> DutyRate:
    return DutyRate(
        text=d["text"],
        ad_valorem=None if d.get("ad_valorem") is None else Decimal(d["ad_valorem"]),
        specific=tuple(_spec_from_dict(s) for s in d.get("specific", ())),
        combine=d.get("combine", "sum"),
        minimum=_bound_from_dict(d.get("minimum")),
        maximum=_bound_from_dict(d.get("maximum")),
        free=bool(d.get("free", False)),
        parts=tuple(ValueShare(Decimal(p["rate"]), p["basis"]) for p in d.get("parts", ())),
        reference=d.get("reference"),
        note=d.get("note"),
    )


# ---------------------------------------------------------------------------------------------------------------
# Nomenclature


def normalise_code(code: str) -> str:
    """A tariff code as digits only ('0101.21.00' -> '01012100'); sections keep their 'S' prefix."""
    c = code.strip().upper()
    if re.fullmatch(r"S\d{2}|S[IVXL]+", c):
        return c
    return re.sub(r"\D", "", c)


@dataclass(frozen=True)
class TariffLine:
    """One line of a schedule: chapter (2 digits), heading (4), subheading (6), national line (8/10).

    `is_leaf` lines are the ones goods are declared under. `preferential` maps an FTA/preference programme
    code to its rate ('*' = every programme). `unit` lists the statistical units, primary first ('u,kg').
    `raw_rates` keeps each rate text as the schedule states it, parsed or not.
    """

    code: str
    digits: int
    is_leaf: bool
    description_en: str | None = None
    description_zh: str | None = None
    parent: str | None = None
    general_rate: DutyRate | None = None
    preferential: Mapping[str, DutyRate] = field(default_factory=dict)
    unit: str | None = None
    requirements: tuple[str, ...] = ()
    section: str | None = None
    column2_rate: DutyRate | None = None
    raw_rates: Mapping[str, str] = field(default_factory=dict)

    @property
    def level(self) -> int:
        return self.digits

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(u for u in (self.unit or "").split(",") if u)

    def description(self, lang: str = "en") -> str | None:
        if lang.startswith("zh"):
            return self.description_zh or self.description_en
        return self.description_en or self.description_zh

    def rate_for(self, programme: str | None = None) -> DutyRate | None:
        """The preferential rate of `programme` if the line grants one, else the general rate."""
        if programme:
            for key in (programme, programme.upper()):
                if key in self.preferential:
                    return self.preferential[key]
            for key, rate in self.preferential.items():
                if key.rstrip("+*") == programme.upper():
                    return rate
            if "*" in self.preferential:
                return self.preferential["*"]
        return self.general_rate


@dataclass(frozen=True)
class Schedule:
    """A versioned tariff schedule valid from `valid_from` to `valid_to` (inclusive; None = open)."""

    id: int | None
    name: str
    version: str
    valid_from: date
    valid_to: date | None
    currency: str
    lines: tuple[TariffLine, ...] = ()
    source: str | None = None
    imported_at: datetime | None = None

    def valid_on(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    def header(self) -> Schedule:
        return replace(self, lines=())


def parent_codes(codes: list[str]) -> dict[str, str | None]:
    """Each code's parent: the longest other code in `codes` that is a proper prefix of it."""
    known = set(codes)
    out: dict[str, str | None] = {}
    for code in codes:
        parent = None
        for n in range(len(code) - 1, 1, -1):
            if code[:n] in known:
                parent = code[:n]
                break
        out[code] = parent
    return out


def longest_prefix(code: str, table: Mapping[str, Any]) -> Any:
    """The value of the longest key of `table` that is a prefix of `code` (None if none)."""
    for n in range(len(code), 0, -1):
        if code[:n] in table:
            return table[code[:n]]
    return None
