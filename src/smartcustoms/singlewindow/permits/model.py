"""Permits domain: the regulatory requirements registry, permits with allowances, and the line check.

Pure functions and dataclasses, no I/O. A *requirement* says that goods whose tariff code starts with a
prefix need, in one direction (import or export), a permit of one type from one agency. A *permit* is
what that agency issued to one party: the codes it covers, its validity, and optionally a quantity
and/or value allowance that declarations draw down. `evaluate` checks a declaration's lines against
both and returns the problems and the draws the filing would make.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t, t_plain

RULES_VERSION = "1"
"""Version of the check's logic; with the registry version it names what produced a finding."""
SOURCE = "permits"
DIRECTIONS = ("import", "export")
ACTIVE, REVOKED = "active", "revoked"
RESERVED, FINAL, RETURNED = "reserved", "final", "returned"
"""Usage states: reserved at filing, final on release, returned when rejected or amended away."""

NUMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,34}$")
AGENCY_RE = re.compile(r"^[A-Z][A-Z0-9_-]{1,15}$")
TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
PREFIX_RE = re.compile(r"^[0-9]{2,12}$")
UNIT_RE = re.compile(r"^[a-z0-9]{1,8}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

SCORES = {
    "permit_missing": 0.7,
    "permit_unknown": 0.8,
    "permit_wrong_type": 0.7,
    "permit_revoked": 0.85,
    "permit_expired": 0.6,
    "permit_not_yet_valid": 0.6,
    "permit_other_holder": 0.85,
    "permit_code_not_covered": 0.7,
    "permit_allowance_exceeded": 0.75,
    "permit_unit_mismatch": 0.5,
    "permit_currency_mismatch": 0.5,
}


def registry_label(registry_version: int) -> str:
    """The version string findings carry: check logic and requirements registry."""
    return f"permit-rules-{RULES_VERSION}+registry-{registry_version}"


def normalise_code(code: str) -> str:
    return code.replace(".", "").replace(" ", "").strip()


# ---------------------------------------------------------------------------------------------- requirements


@dataclass(frozen=True)
class Requirement:
    """Goods under `code_prefix` moving in `direction` need a `permit_type` from `agency`."""

    code_prefix: str
    direction: str
    agency: str
    permit_type: str
    title: str
    valid_from: date
    valid_to: date | None = None
    legal_basis: str | None = None
    id: int | None = None

    def valid_on(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.code_prefix, self.direction, self.agency, self.permit_type)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code_prefix": self.code_prefix,
            "direction": self.direction,
            "agency": self.agency,
            "permit_type": self.permit_type,
            "title": self.title,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "legal_basis": self.legal_basis,
        }


class RequirementIndex:
    """Requirements by direction and prefix: a line's requirements are found by its code's prefixes."""

    def __init__(self, requirements: Iterable[Requirement]) -> None:
        self.by_prefix: dict[tuple[str, str], list[Requirement]] = {}
        for r in requirements:
            self.by_prefix.setdefault((r.direction, r.code_prefix), []).append(r)
        self.lengths = sorted({len(p) for _d, p in self.by_prefix})
        self.size = sum(len(v) for v in self.by_prefix.values())

    def find(self, code: str, direction: str, on: date) -> list[Requirement]:
        """Requirements valid on `on` for `code`; a longer prefix of the same agency and type wins."""
        code = normalise_code(code)
        found: dict[tuple[str, str], Requirement] = {}
        for n in self.lengths:
            if n > len(code):
                break
            for r in self.by_prefix.get((direction, code[:n]), ()):
                if r.valid_on(on):
                    found[(r.agency, r.permit_type)] = r
        return list(found.values())

    def __len__(self) -> int:
        return self.size


REQUIREMENT_COLUMNS = ("code_prefix", "direction", "agency", "permit_type", "title", "valid_from", "valid_to")
OPTIONAL_COLUMNS = ("legal_basis",)


def _date(text: str) -> date:
    return date.fromisoformat(text.strip())


def check_requirement(
    data: Mapping[str, Any], path: tuple[str | int, ...] = (), known_code: Callable[[str], bool] | None = None
) -> tuple[Requirement | None, list[Problem]]:
    """Validate one requirement given as strings or typed values; every problem names its field."""
    problems: list[Problem] = []

    def text(name: str, required: bool = True) -> str:
        value = data.get(name)
        value = "" if value is None else str(value).strip()
        if required and not value:
            problems.append(Problem("required", (*path, name), t("{field} is required", field=name)))
        return value

    prefix = normalise_code(text("code_prefix"))
    direction = text("direction").lower()
    agency = text("agency").upper()
    permit_type = text("permit_type").lower()
    title = text("title")
    legal = text("legal_basis", required=False) or None
    if prefix and not PREFIX_RE.match(prefix):
        problems.append(Problem("invalid_code", (*path, "code_prefix"), t("'{code}' is not 2-12 digits", code=prefix)))
    elif prefix and known_code is not None and not known_code(prefix):
        problems.append(
            Problem("unknown_code", (*path, "code_prefix"), t("No tariff line starts with {code}", code=prefix))
        )
    if direction and direction not in DIRECTIONS:
        problems.append(
            Problem(
                "unknown_direction",
                (*path, "direction"),
                t("'{direction}' is not import or export", direction=direction),
            )
        )
    if agency and not AGENCY_RE.match(agency):
        problems.append(
            Problem(
                "invalid_agency", (*path, "agency"), t("'{agency}' is not an agency code (A-Z, 2-16)", agency=agency)
            )
        )
    if permit_type and not TYPE_RE.match(permit_type):
        problems.append(
            Problem(
                "invalid_permit_type",
                (*path, "permit_type"),
                t("'{permit_type}': lower-case letters, digits, _", permit_type=permit_type),
            )
        )
    if len(title) > 200:
        problems.append(Problem("too_long", (*path, "title"), t("At most {limit} characters", limit=200)))
    valid_from = valid_to = None
    for name in ("valid_from", "valid_to"):
        raw = data.get(name)
        if raw in (None, ""):
            if name == "valid_from":
                problems.append(Problem("required", (*path, name), t("{field} is required", field=name)))
            continue
        try:
            value = raw if isinstance(raw, date) else _date(str(raw))
        except ValueError:
            problems.append(
                Problem("invalid_date", (*path, name), t("'{value}' is not a date (YYYY-MM-DD)", value=raw))
            )
            continue
        if name == "valid_from":
            valid_from = value
        else:
            valid_to = value
    if valid_from and valid_to and valid_to < valid_from:
        problems.append(Problem("ends_before_start", (*path, "valid_to"), t("Validity ends before it starts")))
    if problems or valid_from is None:
        return None, problems
    return Requirement(prefix, direction, agency, permit_type, title, valid_from, valid_to, legal), []


def parse_requirements_csv(
    text: str, known_code: Callable[[str], bool] | None = None
) -> tuple[list[Requirement], list[Problem]]:
    """Parse a requirements CSV (header row; `#` lines are comments). Problems carry ("line", n, column)."""
    lines = [ln for ln in text.splitlines()]
    data_lines = [(n, ln) for n, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not data_lines:
        return [], [Problem("empty_file", ("line", 1), t("No header row: the file is empty"))]
    header_no, header = data_lines[0]
    columns = [c.strip().lower() for c in next(csv.reader([header]))]
    missing = [c for c in REQUIREMENT_COLUMNS if c not in columns]
    if missing:
        return [], [
            Problem("missing_column", ("line", header_no, c), t("Header lacks column '{column}'", column=c))
            for c in missing
        ]
    unknown = [c for c in columns if c not in REQUIREMENT_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        return [], [
            Problem("unknown_column", ("line", header_no, c), t("Unknown column '{column}'", column=c)) for c in unknown
        ]
    out: list[Requirement] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str, str, date], int] = {}
    for n, ln in data_lines[1:]:
        cells = next(csv.reader(io.StringIO(ln)), [])
        if len(cells) != len(columns):
            problems.append(
                Problem(
                    "wrong_cell_count",
                    ("line", n),
                    t(
                        "Line {line}: {cells} cells, the header has {columns}",
                        line=n,
                        cells=len(cells),
                        columns=len(columns),
                    ),
                )
            )
            continue
        req, found = check_requirement(dict(zip(columns, cells, strict=True)), ("line", n), known_code)
        problems.extend(found)
        if req is not None:
            key = (*req.key, req.valid_from)
            if key in seen:
                problems.append(
                    Problem(
                        "duplicate_row",
                        ("line", n),
                        t(
                            "Line {line} repeats line {first} (same prefix, direction, agency, type, start)",
                            line=n,
                            first=seen[key],
                        ),
                    )
                )
                continue
            seen[key] = n
            out.append(req)
    return out, problems


# ---------------------------------------------------------------------------------------------- permits


@dataclass(frozen=True)
class Permit:
    """A permit as the check sees it, with what has been drawn from its allowances so far."""

    id: int
    number: str
    agency: str
    permit_type: str
    direction: str
    holder: str
    codes: tuple[str, ...]
    valid_from: date
    valid_to: date
    status: str = ACTIVE
    quantity_allowance: Decimal | None = None
    quantity_unit: str | None = None
    quantity_used: Decimal = Decimal(0)
    value_allowance: Decimal | None = None
    value_currency: str | None = None
    value_used: Decimal = Decimal(0)

    def covers(self, code: str) -> bool:
        code = normalise_code(code)
        return any(code.startswith(p) for p in self.codes)

    def valid_on(self, on: date) -> bool:
        return self.valid_from <= on <= self.valid_to


def can_draw(allowance: Decimal | None, used: Decimal, amount: Decimal) -> bool:
    """Whether `amount` more fits in the allowance (None: no limit). Never negative draws."""
    return amount >= 0 and (allowance is None or used + amount <= allowance)


def remaining(allowance: Decimal | None, used: Decimal) -> Decimal | None:
    return None if allowance is None else allowance - used


@dataclass(frozen=True)
class PermitInput:
    """An issue or amendment request as plain values (the API's schema maps onto it)."""

    number: str
    permit_type: str
    direction: str
    holder: str
    codes: Sequence[str]
    valid_from: date | None
    valid_to: date | None
    quantity_allowance: Decimal | None = None
    quantity_unit: str | None = None
    value_allowance: Decimal | None = None
    value_currency: str | None = None
    holder_name: str | None = None
    conditions: str | None = None


def check_permit(p: PermitInput, known_code: Callable[[str], bool] | None = None) -> list[Problem]:
    """Every problem of a permit's fields at once, each with its field path."""
    problems: list[Problem] = []
    if not NUMBER_RE.match(p.number or ""):
        problems.append(Problem("invalid_number", ("number",), t("1-35 letters, digits, '.', '_', '/', '-'")))
    if not TYPE_RE.match(p.permit_type or ""):
        problems.append(Problem("invalid_permit_type", ("permit_type",), t("Lower-case letters, digits and '_'")))
    if p.direction not in DIRECTIONS:
        problems.append(
            Problem(
                "unknown_direction", ("direction",), t("'{direction}' is not import or export", direction=p.direction)
            )
        )
    if not p.holder or len(p.holder) > 35:
        problems.append(
            Problem("invalid_holder", ("holder",), t("The holder's party id (1-35 characters) is required"))
        )
    if not p.codes:
        problems.append(Problem("required", ("codes",), t("At least one tariff code (prefix) is covered")))
    seen: set[str] = set()
    for i, raw in enumerate(p.codes):
        code = normalise_code(raw)
        if not PREFIX_RE.match(code):
            problems.append(Problem("invalid_code", ("codes", i), t("'{code}' is not 2-12 digits", code=raw)))
        elif known_code is not None and not known_code(code):
            problems.append(Problem("unknown_code", ("codes", i), t("No tariff line starts with {code}", code=code)))
        elif code in seen:
            problems.append(Problem("duplicate_code", ("codes", i), t("{code} is listed twice", code=code)))
        seen.add(code)
    if p.valid_from is None:
        problems.append(Problem("required", ("valid_from",), t("{field} is required", field="valid_from")))
    if p.valid_to is None:
        problems.append(Problem("required", ("valid_to",), t("valid_to is required: permits expire")))
    if p.valid_from and p.valid_to and p.valid_to < p.valid_from:
        problems.append(Problem("ends_before_start", ("valid_to",), t("Validity ends before it starts")))
    for amount, unit, unit_re, names in (
        (p.quantity_allowance, p.quantity_unit, UNIT_RE, ("quantity_allowance", "quantity_unit")),
        (p.value_allowance, p.value_currency, CURRENCY_RE, ("value_allowance", "value_currency")),
    ):
        if amount is not None:
            if not amount.is_finite() or amount < 0:
                problems.append(Problem("negative_allowance", (names[0],), t("An allowance must not be negative")))
            elif amount.as_tuple().exponent < -6 or amount >= Decimal(10) ** 15:  # type: ignore[operator]
                problems.append(Problem("out_of_range", (names[0],), t("At most 15 digits and 6 decimals")))
            if not unit:
                problems.append(
                    Problem(
                        "required", (names[1],), t("{field} is required with {other}", field=names[1], other=names[0])
                    )
                )
        if unit and not unit_re.match(unit):
            problems.append(
                Problem("invalid_unit", (names[1],), t("'{value}' is not a valid {field}", value=unit, field=names[1]))
            )
    if p.conditions and len(p.conditions) > 4000:
        problems.append(Problem("too_long", ("conditions",), t("At most {limit} characters", limit=4000)))
    if p.holder_name and len(p.holder_name) > 200:
        problems.append(Problem("too_long", ("holder_name",), t("At most {limit} characters", limit=200)))
    return problems


# ---------------------------------------------------------------------------------------------- the line check


@dataclass(frozen=True)
class Line:
    """One declaration line as the check needs it."""

    index: int
    line_no: int
    code: str
    quantity: Decimal
    quantity_unit: str
    net_mass_kg: Decimal
    value: Decimal
    currency: str
    permits: tuple[str, ...]


@dataclass(frozen=True)
class LineProblem:
    index: int
    line_no: int
    code: str
    message: str
    requirement: Requirement | None = None
    permit: str | None = None

    @property
    def score(self) -> float:
        return SCORES.get(self.code, 0.6)

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line_no": self.line_no, "permit": self.permit}
        if self.requirement is not None:
            out.update(
                agency=self.requirement.agency,
                permit_type=self.requirement.permit_type,
                code_prefix=self.requirement.code_prefix,
            )
        return out


@dataclass(frozen=True)
class Draw:
    """What one line takes from one permit's allowances (in the permit's unit and currency)."""

    permit_id: int
    number: str
    index: int
    line_no: int
    quantity: Decimal
    value: Decimal


@dataclass
class Evaluation:
    problems: list[LineProblem] = field(default_factory=list)
    draws: list[Draw] = field(default_factory=list)
    satisfied: dict[int, list[tuple[Requirement, str]]] = field(default_factory=dict)
    """Line index -> (requirement, permit number) pairs that passed."""


Convert = Callable[[Decimal, str, str], Decimal | None]
"""(amount, from currency, to currency) -> amount, or None when no exchange rate is known."""


def amount_for(line: Line, permit: Permit, convert: Convert | None) -> tuple[Decimal, Decimal, str | None]:
    """The quantity and value the line draws from the permit, or the code of why it cannot be measured."""
    qty = Decimal(0)
    value = Decimal(0)
    if permit.quantity_allowance is not None:
        if permit.quantity_unit == line.quantity_unit:
            qty = line.quantity
        elif permit.quantity_unit == "kg":
            qty = line.net_mass_kg
        else:
            return qty, value, "permit_unit_mismatch"
    if permit.value_allowance is not None:
        if permit.value_currency == line.currency:
            value = line.value
        else:
            converted = convert(line.value, line.currency, permit.value_currency or "") if convert else None
            if converted is None:
                return qty, value, "permit_currency_mismatch"
            value = converted
    return qty, value, None


def evaluate(
    lines: Sequence[Line],
    direction: str,
    holder: str,
    on: date,
    index: RequirementIndex,
    permits: Mapping[str, Permit],
    *,
    used: Mapping[int, tuple[Decimal, Decimal]] | None = None,
    convert: Convert | None = None,
) -> Evaluation:
    """Check each line needing a permit against the permits it cites.

    `permits` maps number -> permit (unknown numbers are absent); `used` overrides each permit's drawn
    quantity and value (e.g. without the declaration's own earlier draws on amendment, plus earlier
    filings of the same batch). Draws accumulate across the lines of the declaration.
    """
    out = Evaluation()
    drawn: dict[int, tuple[Decimal, Decimal]] = dict(used or {})
    for line in lines:
        reqs = index.find(line.code, direction, on)
        if not reqs:
            continue
        cited = [n for n in dict.fromkeys(line.permits)]
        for number in cited:
            if number not in permits:
                out.problems.append(
                    LineProblem(
                        line.index,
                        line.line_no,
                        "permit_unknown",
                        t_plain("Item {line_no}: permit {permit} is not known", line_no=line.line_no, permit=number),
                        permit=number,
                    )
                )
        known = [permits[n] for n in cited if n in permits]
        for req in reqs:
            matching = [p for p in known if p.agency == req.agency and p.permit_type == req.permit_type]
            if not matching:
                stray = [p for p in known if all((p.agency, p.permit_type) != (r.agency, r.permit_type) for r in reqs)]
                if stray:
                    others = ", ".join(p.number for p in stray)
                    code = "permit_wrong_type"
                    msg = t_plain(
                        "Item {line_no}: {permits} is not a {title} ({agency})",
                        line_no=line.line_no,
                        permits=others,
                        title=req.title,
                        agency=req.agency,
                    )
                else:
                    code = "permit_missing"
                    msg = t_plain(
                        "Item {line_no}: code {code} needs a {title} ({agency}); none cited",
                        line_no=line.line_no,
                        code=line.code,
                        title=req.title,
                        agency=req.agency,
                    )
                out.problems.append(LineProblem(line.index, line.line_no, code, msg, req))
                continue
            failures: list[LineProblem] = []
            for p in matching:
                problem = _permit_problem(line, p, req, holder, direction, on)
                if problem is None:
                    qty, value, why = amount_for(line, p, convert)
                    if why is not None:
                        unit = p.quantity_unit if why == "permit_unit_mismatch" else p.value_currency
                        problem = (
                            why,
                            t_plain(
                                "Item {line_no}: permit {permit} counts in {unit}; the line cannot be measured in it",
                                line_no=line.line_no,
                                permit=p.number,
                                unit=unit,
                            ),
                        )
                    else:
                        q_used, v_used = drawn.get(p.id, (p.quantity_used, p.value_used))
                        if not can_draw(p.quantity_allowance, q_used, qty) or not can_draw(
                            p.value_allowance, v_used, value
                        ):
                            problem = (
                                "permit_allowance_exceeded",
                                t_plain(
                                    "Item {line_no}: permit {permit} allowance exceeded ({left} left, line needs {need})",
                                    line_no=line.line_no,
                                    permit=p.number,
                                    left=_left(p, q_used, v_used),
                                    need=_need(p, qty, value),
                                ),
                            )
                        else:
                            drawn[p.id] = (q_used + qty, v_used + value)
                            out.draws.append(Draw(p.id, p.number, line.index, line.line_no, qty, value))
                            out.satisfied.setdefault(line.index, []).append((req, p.number))
                            break
                failures.append(LineProblem(line.index, line.line_no, problem[0], problem[1], req, p.number))
            else:
                out.problems.extend(failures)
    return out


def _permit_problem(
    line: Line, p: Permit, req: Requirement, holder: str, direction: str, on: date
) -> tuple[str, str] | None:
    n = line.line_no
    if p.status == REVOKED:
        return "permit_revoked", t_plain("Item {line_no}: permit {permit} was revoked", line_no=n, permit=p.number)
    if p.direction != direction:
        if p.direction == "export":
            return "permit_wrong_type", t_plain(
                "Item {line_no}: permit {permit} is for export, not import", line_no=n, permit=p.number
            )
        return "permit_wrong_type", t_plain(
            "Item {line_no}: permit {permit} is for import, not export", line_no=n, permit=p.number
        )
    if on > p.valid_to:
        return "permit_expired", t_plain(
            "Item {line_no}: permit {permit} expired on {date}", line_no=n, permit=p.number, date=p.valid_to
        )
    if on < p.valid_from:
        return "permit_not_yet_valid", t_plain(
            "Item {line_no}: permit {permit} is valid only from {date}", line_no=n, permit=p.number, date=p.valid_from
        )
    if p.holder != holder:
        return "permit_other_holder", t_plain(
            "Item {line_no}: permit {permit} was issued to {holder}, not {declarant}",
            line_no=n,
            permit=p.number,
            holder=p.holder,
            declarant=holder,
        )
    if not p.covers(line.code):
        return "permit_code_not_covered", t_plain(
            "Item {line_no}: permit {permit} does not cover code {code}", line_no=n, permit=p.number, code=line.code
        )
    return None


def _left(p: Permit, q_used: Decimal, v_used: Decimal) -> str:
    parts = []
    if p.quantity_allowance is not None:
        parts.append(f"{p.quantity_allowance - q_used} {p.quantity_unit}")
    if p.value_allowance is not None:
        parts.append(f"{p.value_currency} {p.value_allowance - v_used}")
    return ", ".join(parts)


def _need(p: Permit, qty: Decimal, value: Decimal) -> str:
    parts = []
    if p.quantity_allowance is not None:
        parts.append(f"{qty} {p.quantity_unit}")
    if p.value_allowance is not None:
        parts.append(f"{p.value_currency} {value}")
    return ", ".join(parts)
