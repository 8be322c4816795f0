"""Business validation of a filed declaration: every problem at once, each with its JSON path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from smartcustoms.clearance import refdata
from smartcustoms.clearance.schema import DeclarationIn, DeclarationType, TransportMode
from smartcustoms.platform.errors import Problem


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
            problems.append(Problem("unknown_country", path, f"{value!r} is not an ISO 3166-1 alpha-2 country code"))
    if decl.currency not in refdata.currencies():
        problems.append(
            Problem("unknown_currency", ("currency",), f"{decl.currency!r} is not an ISO 4217 currency code")
        )
    if decl.incoterm not in refdata.INCOTERMS_2020:
        problems.append(
            Problem(
                "unknown_incoterm",
                ("incoterm",),
                f"{decl.incoterm!r} is not an Incoterm 2020 ({', '.join(sorted(refdata.INCOTERMS_2020))})",
            )
        )
    nat = limits.national_country
    if decl.type is DeclarationType.IMPORT and decl.country_of_destination != nat:
        problems.append(
            Problem(
                "wrong_destination",
                ("country_of_destination",),
                f"An import declaration here must have destination {nat}",
            )
        )
    if decl.type is DeclarationType.EXPORT and decl.country_of_dispatch != nat:
        problems.append(
            Problem(
                "wrong_dispatch",
                ("country_of_dispatch",),
                f"An export declaration here must have dispatch country {nat}",
            )
        )
    arrival = decl.transport.arrival_date
    if arrival is not None:
        if arrival < today - timedelta(days=limits.arrival_past_days):
            problems.append(
                Problem(
                    "implausible_date",
                    ("transport", "arrival_date"),
                    f"Arrival date {arrival} is more than {limits.arrival_past_days} days ago",
                )
            )
        if arrival > today + timedelta(days=limits.arrival_future_days):
            problems.append(
                Problem(
                    "implausible_date",
                    ("transport", "arrival_date"),
                    f"Arrival date {arrival} is more than {limits.arrival_future_days} days ahead",
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
                f"Goods arriving by {decl.transport.mode.value} need a transport document (B/L, AWB, CMR or CIM)",
            )
        )
    for path, amount in (
        (("invoice_total",), decl.invoice_total),
        (("freight",), decl.freight),
        (("insurance",), decl.insurance),
    ):
        if amount < 0:
            problems.append(Problem("negative_amount", path, "Must not be negative"))
    if decl.invoice_total <= 0:
        problems.append(Problem("not_positive", ("invoice_total",), "The invoice total must be greater than zero"))

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
                    f"Line number {item.line_no} also used by items[{seen_lines[item.line_no]}]",
                )
            )
        seen_lines[item.line_no] = idx
        code = normalise_code(item.tariff_code)
        if not code.isdigit():
            problems.append(
                Problem(
                    "invalid_tariff_code",
                    (*base, "tariff_code"),
                    f"{item.tariff_code!r}: a tariff code has digits only",
                )
            )
        else:
            line = index.get(code)
            if line is None and not index.exists(code):
                problems.append(
                    Problem("unknown_tariff_code", (*base, "tariff_code"), f"{code} is not in the tariff schedule")
                )
            elif line is None or not line.is_leaf:
                problems.append(
                    Problem(
                        "non_leaf_tariff_code",
                        (*base, "tariff_code"),
                        f"{code} is a heading, not a tariff line: declare one of its subdivisions",
                    )
                )
            else:
                lines[item.line_no] = line
                if item.preference is not None and preferential_rate(line, item.preference.fta) is None:
                    problems.append(
                        Problem(
                            "preference_not_available",
                            (*base, "preference", "fta"),
                            f"No {item.preference.fta} preferential rate for {code}",
                        )
                    )
        if item.origin_country not in countries:
            problems.append(
                Problem(
                    "unknown_country",
                    (*base, "origin_country"),
                    f"{item.origin_country!r} is not an ISO 3166-1 alpha-2 country code",
                )
            )
        if item.quantity <= 0:
            problems.append(Problem("not_positive", (*base, "quantity"), "Quantity must be greater than zero"))
        elif item.quantity > limits.max_quantity:
            problems.append(Problem("implausible_value", (*base, "quantity"), f"Quantity over {limits.max_quantity:,}"))
        if item.net_mass_kg <= 0:
            problems.append(Problem("not_positive", (*base, "net_mass_kg"), "Net mass must be greater than zero"))
        elif item.net_mass_kg > limits.max_net_mass_kg:
            problems.append(
                Problem("implausible_value", (*base, "net_mass_kg"), f"Net mass over {limits.max_net_mass_kg:,} kg")
            )
        if item.gross_mass_kg is not None and item.gross_mass_kg < item.net_mass_kg:
            problems.append(Problem("gross_below_net", (*base, "gross_mass_kg"), "Gross mass is less than net mass"))
        if item.value < 0:
            problems.append(Problem("negative_amount", (*base, "value"), "Must not be negative"))
        elif item.value > limits.max_item_value:
            problems.append(
                Problem("implausible_value", (*base, "value"), f"Item value over {limits.max_item_value:,}")
            )
        item_total += item.value
    if abs(item_total - decl.invoice_total) > limits.total_tolerance:
        problems.append(
            Problem(
                "totals_mismatch",
                ("invoice_total",),
                f"Invoice total {decl.invoice_total} differs from the sum of item values {item_total}",
            )
        )
    return problems, lines
