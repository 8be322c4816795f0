"""Duty and tax assessment: customs value (CIF), duty from the schedule, VAT, de minimis, rounding.

Every amount carries the steps that produced it, in words an officer can read to a trader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any, Protocol

from smartcustoms.clearance import refdata
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.clearance.validation import preferential_rate
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t, t_plain

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN, "up": ROUND_UP}


class RateResult(Protocol):
    amount: Decimal
    steps: tuple[str, ...]


class Rate(Protocol):
    text: str

    def assess(
        self, customs_value: Decimal, quantities: Mapping[str, Decimal], to_national: Callable[[Decimal, str], Decimal]
    ) -> RateResult: ...


class TariffLineLike(Protocol):
    code: str
    is_leaf: bool
    general_rate: Any
    preferential: Mapping[str, Any]


@dataclass(frozen=True)
class TaxRules:
    """Assessment configuration an administration sets without code changes."""

    national_currency: str = "TWD"
    vat_rate: Decimal = Decimal("0.05")
    de_minimis: Decimal = Decimal("2000")
    de_minimis_covers_tax: bool = True
    rounding_quantum: Decimal = Decimal("1")
    rounding_mode: str = "half_up"
    preference_requires_certificate: bool = False
    version: str = "tax-rules-1"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaxRules:
        base = cls()
        mode = str(data.get("rounding_mode", base.rounding_mode))
        if mode not in ROUNDING_MODES:
            raise DomainError(
                Problem(
                    "invalid_rounding_mode",
                    ("rounding_mode",),
                    t("One of {allowed}", allowed=", ".join(ROUNDING_MODES)),
                )
            )
        return cls(
            national_currency=str(data.get("national_currency", base.national_currency)),
            vat_rate=Decimal(str(data.get("vat_rate", base.vat_rate))),
            de_minimis=Decimal(str(data.get("de_minimis", base.de_minimis))),
            de_minimis_covers_tax=bool(data.get("de_minimis_covers_tax", base.de_minimis_covers_tax)),
            rounding_quantum=Decimal(str(data.get("rounding_quantum", base.rounding_quantum))),
            rounding_mode=mode,
            preference_requires_certificate=bool(
                data.get("preference_requires_certificate", base.preference_requires_certificate)
            ),
            version=str(data.get("version", base.version)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "national_currency": self.national_currency,
            "vat_rate": str(self.vat_rate),
            "de_minimis": str(self.de_minimis),
            "de_minimis_covers_tax": self.de_minimis_covers_tax,
            "rounding_quantum": str(self.rounding_quantum),
            "rounding_mode": self.rounding_mode,
            "preference_requires_certificate": self.preference_requires_certificate,
            "version": self.version,
        }

    def round(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.rounding_quantum, rounding=ROUNDING_MODES[self.rounding_mode])


@dataclass(slots=True)
class ItemAssessment:
    """Duty and VAT of one item, with each step of the arithmetic in words.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    line_no: int
    tariff_code: str
    customs_value: Decimal
    rate_applied: str
    rate_basis: str
    duty: Decimal
    vat: Decimal
    steps: tuple[str, ...]


@dataclass(slots=True)
class Assessment:
    """Duty and tax of a declaration: totals, the items' assessments and each step in words.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    currency: str
    exchange_rate: Decimal
    national_currency: str
    customs_value: Decimal
    duty: Decimal
    vat: Decimal
    additional_duty: Decimal
    total: Decimal
    de_minimis_applied: bool
    items: tuple[ItemAssessment, ...]
    steps: tuple[str, ...]
    rules_version: str
    schedule: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "exchange_rate": str(self.exchange_rate),
            "national_currency": self.national_currency,
            "customs_value": str(self.customs_value),
            "duty": str(self.duty),
            "vat": str(self.vat),
            "additional_duty": str(self.additional_duty),
            "total": str(self.total),
            "de_minimis_applied": self.de_minimis_applied,
            "rules_version": self.rules_version,
            "schedule": self.schedule,
            "steps": list(self.steps),
            "items": [
                {
                    "line_no": i.line_no,
                    "tariff_code": i.tariff_code,
                    "customs_value": str(i.customs_value),
                    "rate_applied": i.rate_applied,
                    "rate_basis": i.rate_basis,
                    "duty": str(i.duty),
                    "vat": str(i.vat),
                    "steps": list(i.steps),
                }
                for i in self.items
            ],
        }


FxLookup = Callable[[str, date], Decimal | None]
OriginCheck = Callable[[str, str | None], str | None]
"""(FTA, proof-of-origin reference) -> None when a verified certificate backs the claim, else the reason why not."""
"""Exchange rate (national currency per one unit of `currency`) valid on a date, or None."""


def _fmt(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def assess(
    decl: DeclarationIn,
    lines: Mapping[int, TariffLineLike],
    fx: FxLookup,
    rules: TaxRules,
    on: date,
    *,
    schedule: str = "",
    origin_check: OriginCheck | None = None,
) -> Assessment:
    """Assess duty and tax for a validated declaration; `lines` maps item line_no to its tariff line."""
    nat = rules.national_currency
    rate = Decimal(1) if decl.currency == nat else fx(decl.currency, on)
    if rate is None:
        raise DomainError(
            Problem(
                "no_exchange_rate",
                ("currency",),
                t("No exchange rate for {currency} on {date}", currency=decl.currency, date=on),
            )
        )
    steps: list[str] = []
    freight = Decimal(0) if decl.incoterm in refdata.FREIGHT_INCLUDED else decl.freight
    insurance = Decimal(0) if decl.incoterm in refdata.INSURANCE_INCLUDED else decl.insurance
    if decl.incoterm in refdata.FREIGHT_INCLUDED and decl.freight:
        steps.append(
            t_plain(
                "Freight {amount} not added: included in the {incoterm} price",
                amount=_fmt(decl.freight),
                incoterm=decl.incoterm,
            )
        )
    if decl.incoterm in refdata.INSURANCE_INCLUDED and decl.insurance:
        steps.append(
            t_plain(
                "Insurance {amount} not added: included in the {incoterm} price",
                amount=_fmt(decl.insurance),
                incoterm=decl.incoterm,
            )
        )
    cif_foreign = decl.invoice_total + freight + insurance
    steps.append(
        t_plain(
            "Customs value (CIF) = invoice {invoice} + freight {freight} + insurance {insurance} = {currency} {cif}",
            invoice=_fmt(decl.invoice_total),
            freight=_fmt(freight),
            insurance=_fmt(insurance),
            currency=decl.currency,
            cif=_fmt(cif_foreign),
        )
    )
    if decl.currency != nat:
        steps.append(
            t_plain(
                "Exchange rate {currency}→{national} on {date}: {rate}",
                currency=decl.currency,
                national=nat,
                date=on,
                rate=rate,
            )
        )
    customs_value_total = cif_foreign * rate

    def to_national(amount: Decimal, currency: str) -> Decimal:
        if currency == nat:
            return amount
        r = fx(currency, on)
        if r is None:
            raise DomainError(
                Problem(
                    "no_exchange_rate",
                    ("currency",),
                    t("No exchange rate for {currency} on {date}", currency=currency, date=on),
                )
            )
        return amount * r

    de_minimis = customs_value_total <= rules.de_minimis
    items: list[ItemAssessment] = []
    base_total = sum((i.value for i in decl.items), Decimal(0))
    problems: list[Problem] = []
    for idx, item in enumerate(decl.items):
        share = item.value / base_total if base_total else Decimal(1) / len(decl.items)
        item_cif = (item.value + (freight + insurance) * share) * rate
        line = lines[item.line_no]
        item_steps: list[str] = [
            t_plain(
                "Customs value of line {line_no}: ({value} + {share} of freight and insurance) × {rate} = {national} {cif}",
                line_no=item.line_no,
                value=_fmt(item.value),
                share=f"{share:.4%}",
                rate=rate,
                national=nat,
                cif=_fmt(item_cif),
            )
        ]
        chosen = line.general_rate
        basis = "general"
        if item.preference is not None:
            pref = preferential_rate(line, item.preference.fta)
            refusal = None
            if pref is not None and rules.preference_requires_certificate:
                refusal = (
                    origin_check(item.preference.fta, item.preference.proof_of_origin_ref)
                    if origin_check
                    else t_plain("no certificate check available")
                )
            if refusal is not None:
                item_steps.append(
                    t_plain(
                        "Preference {fta} not granted: {reason}; general rate applies",
                        fta=item.preference.fta,
                        reason=refusal,
                    )
                )
            elif pref is not None:
                chosen, basis = pref, f"preferential {item.preference.fta}"
                item_steps.append(
                    t_plain(
                        "Preference {fta} claimed (proof {proof}): rate {rate}",
                        fta=item.preference.fta,
                        proof=item.preference.proof_of_origin_ref,
                        rate=pref.text,
                    )
                )
        if chosen is None:
            problems.append(
                Problem(
                    "no_duty_rate",
                    ("items", idx, "tariff_code"),
                    t("The schedule has no duty rate for {code}", code=line.code),
                )
            )
            continue
        quantities = {"kg": item.net_mass_kg, item.quantity_unit: item.quantity}
        try:
            result = chosen.assess(item_cif, quantities, to_national)
        except DomainError as exc:
            for p in exc.problems:
                problems.append(Problem(p.code, ("items", idx, *p.path), p.message))
            continue
        duty = rules.round(result.amount)
        item_steps.extend(result.steps)
        item_steps.append(t_plain("Duty ({rate}) = {national} {duty}", rate=chosen.text, national=nat, duty=_fmt(duty)))
        vat = rules.round((item_cif + duty) * rules.vat_rate)
        item_steps.append(
            t_plain(
                "VAT {rate} × (value {value} + duty {duty}) = {national} {vat}",
                rate=f"{rules.vat_rate:.2%}",
                value=_fmt(item_cif),
                duty=_fmt(duty),
                national=nat,
                vat=_fmt(vat),
            )
        )
        if de_minimis:
            duty = Decimal(0)
            if rules.de_minimis_covers_tax:
                vat = Decimal(0)
        items.append(
            ItemAssessment(item.line_no, line.code, item_cif, chosen.text, basis, duty, vat, tuple(item_steps))
        )
    if problems:
        raise DomainError(problems)
    if de_minimis:
        amounts = {"national": nat, "value": _fmt(customs_value_total), "threshold": _fmt(rules.de_minimis)}
        if rules.de_minimis_covers_tax:
            steps.append(
                t_plain(
                    "Consignment value {national} {value} at or below the de minimis {national} {threshold}: duty and tax waived",
                    **amounts,
                )
            )
        else:
            steps.append(
                t_plain(
                    "Consignment value {national} {value} at or below the de minimis {national} {threshold}: duty waived",
                    **amounts,
                )
            )
    duty_total = sum((i.duty for i in items), Decimal(0))
    vat_total = sum((i.vat for i in items), Decimal(0))
    steps.append(
        t_plain(
            "Total duty {national} {duty}, VAT {national} {vat}",
            national=nat,
            duty=_fmt(duty_total),
            vat=_fmt(vat_total),
        )
    )
    return Assessment(
        currency=decl.currency,
        exchange_rate=rate,
        national_currency=nat,
        customs_value=rules.round(customs_value_total),
        duty=duty_total,
        vat=vat_total,
        additional_duty=Decimal(0),
        total=duty_total + vat_total,
        de_minimis_applied=de_minimis,
        items=tuple(items),
        steps=tuple(steps),
        rules_version=rules.version,
        schedule=schedule,
    )
