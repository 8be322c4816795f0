"""Business validation of a filed declaration: every problem at once, each with its JSON path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from smartcustoms.clearance import refdata
from smartcustoms.clearance.lifecycle import MODE_WORDS
from smartcustoms.clearance.schema import DeclarationIn, DeclarationType, TransportMode
from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t


class TariffIndex(Protocol):
    def get(self, code: str) -> Any: ...

    def exists(self, code: str) -> bool: ...


@dataclass(frozen=True)
class Limits:
    """Plausibility limits; values beyond them are refused as absurd rather than assessed."""

    national_country: str = "TW"
    max_item_value: Decimal = Decimal("100000000000")
    max_net_mass_kg: Decimal = Decimal("500000000")
    max_quantity: Decimal = Decimal("1000000000")
    total_tolerance: Decimal = Decimal("0.01")
    arrival_past_days: int = 365
    arrival_future_days: int = 90


NEEDS_TRANSPORT_DOC = {TransportMode.SEA, TransportMode.AIR, TransportMode.ROAD, TransportMode.RAIL}


def preferential_rate(line: Any, fta: str) -> Any:
    """The line's rate under preference programme `fta`, or None when the line grants none."""
    rate = line.rate_for(fta) if hasattr(line, "rate_for") else line.preferential.get(fta)
    return None if rate is None or rate is line.general_rate else rate


def normalise_code(code: str) -> str:
    return code.replace(".", "").replace(" ", "")


def validate(
    decl: DeclarationIn,
    index: TariffIndex,
    today: date,
    *,
    limits: Limits = Limits(),
    has_rate: Callable[[str], bool] | None = None,
) -> tuple[list[Problem], dict[int, Any]]:
    """Check codes, totals and plausibility; return the problems and the tariff line of each item."""
    problems: list[Problem] = []
    countries = refdata.countries()
    for path, value in (
        (("country_of_dispatch",), decl.country_of_dispatch),
        (("country_of_destination",), decl.country_of_destination),
        *(((party, "country"), getattr(decl, party).country) for party in ("declarant", "importer", "exporter")),
    ):
        if value is not None and value not in countries:
            problems.append(
                Problem("unknown_country", path, t("'{value}' is not an ISO 3166-1 alpha-2 country code", value=value))
            )
    if decl.currency not in refdata.currencies():
        problems.append(
            Problem(
                "unknown_currency",
                ("currency",),
                t("'{currency}' is not an ISO 4217 currency code", currency=decl.currency),
            )
        )
    if decl.incoterm not in refdata.INCOTERMS_2020:
        problems.append(
            Problem(
                "unknown_incoterm",
                ("incoterm",),
                t(
                    "'{incoterm}' is not an Incoterm 2020 ({allowed})",
                    incoterm=decl.incoterm,
                    allowed=", ".join(sorted(refdata.INCOTERMS_2020)),
                ),
            )
        )
    nat = limits.national_country
    if decl.type is DeclarationType.IMPORT and decl.country_of_destination != nat:
        problems.append(
            Problem(
                "wrong_destination",
                ("country_of_destination",),
                t("An import declaration here must have destination {country}", country=nat),
            )
        )
    if decl.type is DeclarationType.EXPORT and decl.country_of_dispatch != nat:
        problems.append(
            Problem(
                "wrong_dispatch",
                ("country_of_dispatch",),
                t("An export declaration here must have dispatch country {country}", country=nat),
            )
        )
    arrival = decl.transport.arrival_date
    if arrival is not None:
        if arrival < today - timedelta(days=limits.arrival_past_days):
            problems.append(
                Problem(
                    "implausible_date",
                    ("transport", "arrival_date"),
                    t("Arrival date {date} is more than {days} days ago", date=arrival, days=limits.arrival_past_days),
                )
            )
        if arrival > today + timedelta(days=limits.arrival_future_days):
            problems.append(
                Problem(
                    "implausible_date",
                    ("transport", "arrival_date"),
                    t(
                        "Arrival date {date} is more than {days} days ahead",
                        date=arrival,
                        days=limits.arrival_future_days,
                    ),
                )
            )
    if (
        decl.transport.mode in NEEDS_TRANSPORT_DOC
        and not decl.transport_documents
        and decl.type is DeclarationType.IMPORT
    ):
        problems.append(
            Problem(
                "missing_transport_document",
                ("transport_documents",),
                t(
                    "Goods arriving by {mode_text} need a transport document (B/L, AWB, CMR or CIM)",
                    mode_text=MODE_WORDS[decl.transport.mode.value],
                ),
            )
        )
    for path, amount in (
        (("invoice_total",), decl.invoice_total),
        (("freight",), decl.freight),
        (("insurance",), decl.insurance),
    ):
        if amount < 0:
            problems.append(Problem("negative_amount", path, t("Must not be negative")))
    if decl.invoice_total <= 0:
        problems.append(Problem("not_positive", ("invoice_total",), t("The invoice total must be greater than zero")))

    seen_lines: dict[int, int] = {}
    lines: dict[int, Any] = {}
    item_total = Decimal(0)
    for idx, item in enumerate(decl.items):
        base = ("items", idx)
        if item.line_no in seen_lines:
            problems.append(
                Problem(
                    "duplicate_line_no",
                    (*base, "line_no"),
                    t(
                        "Line number {line_no} also used by items[{index}]",
                        line_no=item.line_no,
                        index=seen_lines[item.line_no],
                    ),
                )
            )
        seen_lines[item.line_no] = idx
        code = normalise_code(item.tariff_code)
        if not code.isdigit():
            problems.append(
                Problem(
                    "invalid_tariff_code",
                    (*base, "tariff_code"),
                    t("'{code}': a tariff code has digits only", code=item.tariff_code),
                )
            )
        else:
            line = index.get(code)
            if line is None and not index.exists(code):
                problems.append(
                    Problem(
                        "unknown_tariff_code",
                        (*base, "tariff_code"),
                        t("{code} is not in the tariff schedule", code=code),
                    )
                )
            elif line is None or not line.is_leaf:
                problems.append(
                    Problem(
                        "non_leaf_tariff_code",
                        (*base, "tariff_code"),
                        t("{code} is a heading, not a tariff line: declare one of its subdivisions", code=code),
                    )
                )
            else:
                lines[item.line_no] = line
                if item.preference is not None and preferential_rate(line, item.preference.fta) is None:
                    problems.append(
                        Problem(
                            "preference_not_available",
                            (*base, "preference", "fta"),
                            t("No {fta} preferential rate for {code}", fta=item.preference.fta, code=code),
                        )
                    )
        if item.origin_country not in countries:
            problems.append(
                Problem(
                    "unknown_country",
                    (*base, "origin_country"),
                    t("'{value}' is not an ISO 3166-1 alpha-2 country code", value=item.origin_country),
                )
            )
        if item.quantity <= 0:
            problems.append(Problem("not_positive", (*base, "quantity"), t("Quantity must be greater than zero")))
        elif item.quantity > limits.max_quantity:
            problems.append(
                Problem(
                    "implausible_value",
                    (*base, "quantity"),
                    t("Quantity over {limit}", limit=f"{limits.max_quantity:,}"),
                )
            )
        if item.net_mass_kg <= 0:
            problems.append(Problem("not_positive", (*base, "net_mass_kg"), t("Net mass must be greater than zero")))
        elif item.net_mass_kg > limits.max_net_mass_kg:
            problems.append(
                Problem(
                    "implausible_value",
                    (*base, "net_mass_kg"),
                    t("Net mass over {limit} kg", limit=f"{limits.max_net_mass_kg:,}"),
                )
            )
        if item.gross_mass_kg is not None and item.gross_mass_kg < item.net_mass_kg:
            problems.append(Problem("gross_below_net", (*base, "gross_mass_kg"), t("Gross mass is less than net mass")))
        if item.value < 0:
            problems.append(Problem("negative_amount", (*base, "value"), t("Must not be negative")))
        elif item.value > limits.max_item_value:
            problems.append(
                Problem(
                    "implausible_value",
                    (*base, "value"),
                    t("Item value over {limit}", limit=f"{limits.max_item_value:,}"),
                )
            )
        item_total += item.value
    if abs(item_total - decl.invoice_total) > limits.total_tolerance:
        problems.append(
            Problem(
                "totals_mismatch",
                ("invoice_total",),
                t(
                    "Invoice total {invoice_total} differs from the sum of item values {item_total}",
                    invoice_total=decl.invoice_total,
                    item_total=item_total,
                ),
            )
        )
    return problems, lines
