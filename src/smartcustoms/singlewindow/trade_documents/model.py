"""Trade documents (commercial invoice, packing list, bill of lading) and their cross-check with the declaration.

Pure domain: reading the structured documents (every problem with its path), the comparison rules an
administration tunes (tolerances, severities, lanes; versioned), and the field-by-field comparison that
produces a report of matches and mismatches, each with its tolerance and severity.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from typing import Any

from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t, t_plain

SOURCE = "trade_documents"
INVOICE, PACKING_LIST, BILL_OF_LADING = "invoice", "packing_list", "bill_of_lading"
DOC_TYPES = (INVOICE, PACKING_LIST, BILL_OF_LADING)
ALIASES = {
    "invoice": INVOICE,
    "commercial_invoice": INVOICE,
    "inv": INVOICE,
    "packing_list": PACKING_LIST,
    "packinglist": PACKING_LIST,
    "pl": PACKING_LIST,
    "bill_of_lading": BILL_OF_LADING,
    "bl": BILL_OF_LADING,
    "b/l": BILL_OF_LADING,
    "awb": BILL_OF_LADING,
    "air_waybill": BILL_OF_LADING,
}
SEVERITIES = ("info", "low", "medium", "high")


class TradeDocumentError(DomainError):
    """Bad trade-document input, an unreadable scan, or a refused operation."""


def doc_type_of(name: str) -> str | None:
    return ALIASES.get(name.strip().lower().replace(" ", "_").replace("-", "_"))


# ---------------------------------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, code: str, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(code, path, message))

    def text(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...], required: bool = False) -> str | None:
        v = raw.get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            if required:
                self.bad("missing", (*path, key), t("{field} is required", field=key))
            return None
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            self.bad("not_text", (*path, key), t("{field} must be text", field=key))
            return None
        out = str(v).strip()
        if len(out) > 1024:
            self.bad("too_long", (*path, key), t("{field} is longer than {limit} characters", field=key, limit=1024))
            return None
        return out

    def number(
        self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...], required: bool = False
    ) -> Decimal | None:
        v = raw.get(key)
        if v is None or v == "":
            if required:
                self.bad("missing", (*path, key), t("{field} is required", field=key))
            return None
        try:
            n = parse_amount(str(v)) if not isinstance(v, bool) else None
        except ValueError:
            n = None
        if n is None:
            self.bad("not_number", (*path, key), t("{field} must be a number, got '{value}'", field=key, value=v))
            return None
        if n < 0:
            self.bad("negative", (*path, key), t("{field} may not be negative ({value})", field=key, value=n))
            return None
        return n

    def day(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> date | None:
        v = raw.get(key)
        if v is None or v == "":
            return None
        parsed = parse_date(str(v))
        if parsed is None:
            self.bad(
                "not_date", (*path, key), t("{field} must be a date (YYYY-MM-DD), got '{value}'", field=key, value=v)
            )
        return parsed

    def party(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> Party | None:
        v = raw.get(key)
        if v is None:
            return None
        if isinstance(v, str):
            v = {"name": v}
        if not isinstance(v, Mapping):
            self.bad("not_object", (*path, key), t("{field} is an object with a name and an id", field=key))
            return None
        name = self.text(v, "name", (*path, key), required=True)
        ident = self.text(v, "id", (*path, key))
        return Party(name, ident) if name else None

    def items(
        self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]
    ) -> list[tuple[int, Mapping[str, Any]]]:
        v = raw.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
            self.bad("not_list", (*path, key), t("{field} is a list of objects", field=key))
            return []
        if len(v) > 999:
            self.bad("too_many", (*path, key), t("{field} has more than {limit} entries", field=key, limit=999))
            return []
        return list(enumerate(v))

    def strings(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> tuple[str, ...]:
        v = raw.get(key)
        if v is None:
            return ()
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            self.bad("not_list", (*path, key), t("{field} is a list of texts", field=key))
            return ()
        return tuple(x.strip().upper().replace(" ", "") for x in v)

    def unknown(self, raw: Mapping[str, Any], allowed: set[str], path: tuple[str | int, ...]) -> None:
        for key in sorted(set(raw) - allowed):
            self.bad("unknown_field", (*path, key), t("Unknown field '{field}'", field=key))


def parse_amount(text: str) -> Decimal:
    """A number as printed on trade documents: '1,234.50', '1.234,50', '1 234,5', "1'234", 'USD 12.00'.

    With both ',' and '.', the later one is the decimal mark. With one kind used several times, they
    group thousands. Used once: ',' before exactly three digits groups thousands ('1,234'); otherwise it
    is the decimal mark ('12,5'); '.' is always the decimal mark then ('1.234' is one point two three four).
    """
    s = text.strip().replace("\u00a0", " ")
    s = re.sub(r"^(?:[A-Za-z]{3}|[$€£¥])\s*|\s*(?:[A-Za-z]{3})$", "", s).strip()
    s = re.sub(r"(?<=\d)[ '](?=\d{3}\b)", "", s)
    if not re.fullmatch(r"\+?[\d.,]*\d", s) or not s.lstrip("+")[:1].isdigit():
        raise ValueError(t("not an amount: {value}", value=repr(text)))
    s = s.lstrip("+")
    if "," in s and "." in s:
        mark = "," if s.rfind(",") > s.rfind(".") else "."
        other = "." if mark == "," else ","
        head, _, frac = s.rpartition(mark)
        groups = head.split(other)
        if other in frac or mark in head or any(len(g) != 3 for g in groups[1:]) or not groups[0]:
            raise ValueError(t("not an amount: {value}", value=repr(text)))
        whole = "".join(groups)
        number = f"{whole}.{frac}"
    elif s.count(",") > 1 or s.count(".") > 1:
        sep = "," if "," in s else "."
        groups = s.split(sep)
        if any(len(g) != 3 for g in groups[1:]):
            raise ValueError(t("not an amount: {value}", value=repr(text)))
        number = "".join(groups)
    elif "," in s:
        whole, _, frac = s.partition(",")
        number = whole + frac if len(frac) == 3 else f"{whole}.{frac}"
    else:
        number = s
    try:
        return Decimal(number)
    except InvalidOperation as exc:
        raise ValueError(t("not an amount: {value}", value=repr(text))) from exc


_MONTHS = {
    m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}


def parse_date(text: str) -> date | None:
    t = text.strip()
    m = re.search(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})", t)
    try:
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
        m = re.search(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", t)
        if m:
            return date(int(m[3]), int(m[2]), int(m[1]))
        m = re.search(r"([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})", t)
        if m and m[1].lower() in _MONTHS:
            return date(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
        m = re.search(r"(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?,?\s+(\d{4})", t)
        if m and m[2].lower() in _MONTHS:
            return date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    except ValueError:
        return None
    return None


@dataclass(frozen=True)
class Party:
    name: str
    id: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    description: str | None
    quantity: Decimal | None
    unit: str | None
    unit_price: Decimal | None
    amount: Decimal | None
    tariff_code: str | None = None


@dataclass(frozen=True)
class Invoice:
    number: str | None
    date: date | None
    seller: Party | None
    buyer: Party | None
    currency: str | None
    total: Decimal | None
    lines: tuple[InvoiceLine, ...] = ()
    incoterm: str | None = None


@dataclass(frozen=True)
class PackingLine:
    description: str | None
    quantity: Decimal | None
    packages: Decimal | None
    net_weight_kg: Decimal | None
    gross_weight_kg: Decimal | None


@dataclass(frozen=True)
class PackingList:
    number: str | None
    packages: Decimal | None
    net_weight_kg: Decimal | None
    gross_weight_kg: Decimal | None
    lines: tuple[PackingLine, ...] = ()
    containers: tuple[str, ...] = ()


@dataclass(frozen=True)
class BillOfLading:
    number: str | None
    shipper: Party | None
    consignee: Party | None
    packages: Decimal | None
    gross_weight_kg: Decimal | None
    description: str | None = None
    containers: tuple[str, ...] = ()
    vessel: str | None = None
    voyage: str | None = None


Document = Invoice | PackingList | BillOfLading


def parse_document(doc_type: str, raw: Any) -> Document:
    """A structured document from its JSON form; raises listing every problem with its path."""
    kind = doc_type_of(doc_type)
    if kind is None:
        raise TradeDocumentError(
            Problem(
                "unknown_type",
                ("type",),
                t(
                    "Unknown document type '{doc_type}'; one of {allowed}",
                    doc_type=doc_type,
                    allowed=", ".join(DOC_TYPES),
                ),
            )
        )
    if not isinstance(raw, Mapping):
        raise TradeDocumentError(Problem("not_object", ("data",), t("The document data is a JSON object")))
    r = _Reader()
    p: tuple[str | int, ...] = ("data",)
    doc: Document
    if kind == INVOICE:
        lines = []
        for i, ln in r.items(raw, "lines", p):
            lp = (*p, "lines", i)
            lines.append(
                InvoiceLine(
                    r.text(ln, "description", lp),
                    r.number(ln, "quantity", lp),
                    r.text(ln, "unit", lp),
                    r.number(ln, "unit_price", lp),
                    r.number(ln, "amount", lp),
                    r.text(ln, "tariff_code", lp),
                )
            )
            r.unknown(ln, {"description", "quantity", "unit", "unit_price", "amount", "tariff_code"}, lp)
        currency = r.text(raw, "currency", p)
        if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency):
            r.bad("bad_currency", (*p, "currency"), t("'{currency}' is not an ISO 4217 code", currency=currency))
        doc = Invoice(
            r.text(raw, "number", p),
            r.day(raw, "date", p),
            r.party(raw, "seller", p),
            r.party(raw, "buyer", p),
            currency.upper() if currency else None,
            r.number(raw, "total", p),
            tuple(lines),
            r.text(raw, "incoterm", p),
        )
        r.unknown(raw, {"number", "date", "seller", "buyer", "currency", "total", "lines", "incoterm"}, p)
    elif kind == PACKING_LIST:
        plines = []
        for i, ln in r.items(raw, "lines", p):
            lp = (*p, "lines", i)
            plines.append(
                PackingLine(
                    r.text(ln, "description", lp),
                    r.number(ln, "quantity", lp),
                    r.number(ln, "packages", lp),
                    r.number(ln, "net_weight_kg", lp),
                    r.number(ln, "gross_weight_kg", lp),
                )
            )
            r.unknown(ln, {"description", "quantity", "packages", "net_weight_kg", "gross_weight_kg"}, lp)
        doc = PackingList(
            r.text(raw, "number", p),
            r.number(raw, "packages", p),
            r.number(raw, "net_weight_kg", p),
            r.number(raw, "gross_weight_kg", p),
            tuple(plines),
            r.strings(raw, "containers", p),
        )
        r.unknown(raw, {"number", "packages", "net_weight_kg", "gross_weight_kg", "lines", "containers"}, p)
    else:
        doc = BillOfLading(
            r.text(raw, "number", p, required=True),
            r.party(raw, "shipper", p),
            r.party(raw, "consignee", p),
            r.number(raw, "packages", p),
            r.number(raw, "gross_weight_kg", p),
            r.text(raw, "description", p),
            r.strings(raw, "containers", p),
            r.text(raw, "vessel", p),
            r.text(raw, "voyage", p),
        )
        allowed = {"number", "shipper", "consignee", "packages", "gross_weight_kg", "description", "containers"}
        r.unknown(raw, allowed | {"vessel", "voyage"}, p)
    if r.problems:
        raise TradeDocumentError(r.problems)
    return doc


def document_json(doc: Document) -> dict[str, Any]:
    """The canonical JSON form (what `parse_document` reads back); numbers as decimal strings."""

    def conv(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, Party):
            return {"name": v.name, "id": v.id}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        if hasattr(v, "__dataclass_fields__"):
            return {k: conv(getattr(v, k)) for k in v.__dataclass_fields__}
        return v

    out = conv(doc)
    assert isinstance(out, dict)
    return out


def kind_of(doc: Document) -> str:
    return INVOICE if isinstance(doc, Invoice) else PACKING_LIST if isinstance(doc, PackingList) else BILL_OF_LADING


# ---------------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rules:
    """Tolerances and severities of the cross-check (stored as a setting; each change is a new version)."""

    value_tolerance_pct: Decimal = Decimal("1")
    value_tolerance_abs: Decimal = Decimal("1")
    quantity_tolerance_pct: Decimal = Decimal("0")
    weight_tolerance_pct: Decimal = Decimal("5")
    weight_tolerance_kg: Decimal = Decimal("1")
    name_similarity: float = 0.8
    description_similarity: float = 0.3
    severity: Mapping[str, str] = field(
        default_factory=lambda: {
            "party": "high",
            "currency": "high",
            "total": "high",
            "amount": "high",
            "unit_price": "medium",
            "quantity": "medium",
            "weight": "medium",
            "packages": "medium",
            "containers": "medium",
            "code": "medium",
            "transport_document": "high",
            "line_count": "medium",
            "description": "low",
            "number": "low",
        }
    )
    lanes: Mapping[str, str | None] = field(default_factory=lambda: {"high": "C2", "medium": "C2", "low": None})
    scores: Mapping[str, float] = field(default_factory=lambda: {"high": 0.65, "medium": 0.45, "low": 0.2})
    finding_min_severity: str = "medium"
    """Mismatches at or above this severity become findings for the lane; the others are only reported."""
    version: int = 1

    @property
    def label(self) -> str:
        return f"document-rules-v{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "value_tolerance_pct": str(self.value_tolerance_pct),
            "value_tolerance_abs": str(self.value_tolerance_abs),
            "quantity_tolerance_pct": str(self.quantity_tolerance_pct),
            "weight_tolerance_pct": str(self.weight_tolerance_pct),
            "weight_tolerance_kg": str(self.weight_tolerance_kg),
            "name_similarity": self.name_similarity,
            "description_similarity": self.description_similarity,
            "severity": dict(self.severity),
            "lanes": dict(self.lanes),
            "scores": dict(self.scores),
            "finding_min_severity": self.finding_min_severity,
        }


def rules_from(raw: Mapping[str, Any], version: int = 1) -> Rules:
    problems: list[Problem] = []
    base = Rules()
    values: dict[str, Any] = {}
    for key, lo, hi in (
        ("value_tolerance_pct", 0, 100),
        ("value_tolerance_abs", 0, 10**9),
        ("quantity_tolerance_pct", 0, 100),
        ("weight_tolerance_pct", 0, 100),
        ("weight_tolerance_kg", 0, 10**6),
        ("name_similarity", 0, 1),
        ("description_similarity", 0, 1),
    ):
        if key not in raw:
            continue
        try:
            v = Decimal(str(raw[key]))
        except InvalidOperation:
            problems.append(Problem("bad_setting", (key,), t("{field} must be a number", field=key)))
            continue
        if not v.is_finite() or not lo <= v <= hi:
            problems.append(
                Problem(
                    "bad_setting", (key,), t("{field} must be between {low} and {high}", field=key, low=lo, high=hi)
                )
            )
            continue
        values[key] = float(v) if key.endswith("similarity") else v
    if "severity" in raw:
        sev = raw["severity"]
        merged = dict(base.severity)
        if not isinstance(sev, Mapping):
            problems.append(Problem("bad_setting", ("severity",), t("severity maps check kinds to severities")))
        else:
            for k, v in sev.items():
                if k not in base.severity:
                    problems.append(Problem("unknown_check", ("severity", k), t("Unknown check kind '{kind}'", kind=k)))
                elif v not in SEVERITIES:
                    problems.append(
                        Problem(
                            "bad_severity",
                            ("severity", k),
                            t("Severity is one of {allowed}", allowed=", ".join(SEVERITIES)),
                        )
                    )
                else:
                    merged[k] = v
        values["severity"] = merged
    for key in ("lanes", "scores"):
        if key not in raw:
            continue
        given = raw[key]
        merged_any: dict[str, Any] = dict(getattr(base, key))
        if not isinstance(given, Mapping):
            problems.append(Problem("bad_setting", (key,), t("{field} maps severities to values", field=key)))
            continue
        for k, v in given.items():
            if k not in SEVERITIES:
                problems.append(
                    Problem("bad_severity", (key, k), t("Severity is one of {allowed}", allowed=", ".join(SEVERITIES)))
                )
            elif key == "lanes" and v not in ("C1", "C2", "C3", None):
                problems.append(Problem("bad_lane", (key, k), t("Lane is C1, C2, C3 or null")))
            elif key == "scores" and (not isinstance(v, (int, float)) or not 0 <= v <= 1):
                problems.append(Problem("bad_score", (key, k), t("Score is a number from 0 to 1")))
            else:
                merged_any[k] = v
        values[key] = merged_any
    if "finding_min_severity" in raw:
        if raw["finding_min_severity"] not in SEVERITIES:
            problems.append(
                Problem("bad_severity", ("finding_min_severity",), t("One of {allowed}", allowed=", ".join(SEVERITIES)))
            )
        else:
            values["finding_min_severity"] = raw["finding_min_severity"]
    for key in sorted(set(raw) - set(base.as_dict())):
        problems.append(Problem("unknown_setting", (key,), t("Unknown setting '{key}'", key=key)))
    if problems:
        raise TradeDocumentError(problems)
    return replace(base, version=version, **values)


# ---------------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Check:
    """One field compared: what the declaration says, what the document says, and the verdict."""

    document: str
    field: str
    kind: str
    path: tuple[str | int, ...]
    declared: Any
    documented: Any
    result: str  # match | mismatch | not_compared
    severity: str
    tolerance: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "field": self.field,
            "kind": self.kind,
            "path": list(self.path),
            "declared": _plain(self.declared),
            "documented": _plain(self.documented),
            "result": self.result,
            "severity": self.severity,
            "tolerance": self.tolerance,
            "message": self.message,
        }

    @property
    def key(self) -> str:
        return f"{self.document}:{self.field}:{_plain(self.declared)}:{_plain(self.documented)}"


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(int(v)) if v == v.to_integral_value() else format(v.normalize(), "f")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def fold_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold()
    words = re.findall(r"\w+", text)
    legal = {"co", "ltd", "inc", "corp", "corporation", "company", "limited", "llc", "plc", "gmbh", "pte", "sa"}
    kept = [w for w in words if w not in legal]
    return " ".join(kept or words)


def same_party(declared: Mapping[str, Any] | None, doc: Party, similarity: float) -> bool:
    if not declared:
        return False
    if doc.id and declared.get("id"):
        return str(doc.id).strip().upper() == str(declared["id"]).strip().upper()
    a, b = fold_name(str(declared.get("name", ""))), fold_name(doc.name)
    return a == b or SequenceMatcher(None, a, b).ratio() >= similarity


def description_similarity(a: str, b: str) -> float:
    """Share of the shorter text's words found in the other (case, punctuation and plural 's' folded);
    CJK texts compare by characters."""

    def words(t: str) -> set[str]:
        t = unicodedata.normalize("NFKC", t).casefold()
        ws = {w.rstrip("s") for w in re.findall(r"[a-z0-9]+", t) if len(w) > 1}
        ws |= set(re.findall(r"[\u4e00-\u9fff]", t))
        return ws

    wa, wb = words(a), words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / min(len(wa), len(wb))


def within(declared: Decimal, documented: Decimal, pct: Decimal, floor: Decimal) -> bool:
    allowed = max(abs(documented) * pct / 100, floor)
    return abs(declared - documented) <= allowed


def _dec(v: Any) -> Decimal | None:
    if v is None or v == "":
        return None
    try:
        return Decimal(str(v))
    except InvalidOperation:
        return None


class _Report:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.checks: list[Check] = []

    def add(
        self,
        doc: str,
        fld: str,
        kind: str,
        path: tuple[str | int, ...],
        declared: Any,
        documented: Any,
        ok: bool | None,
        tolerance: str | None = None,
        message: str = "",
    ) -> None:
        result = "not_compared" if ok is None else "match" if ok else "mismatch"
        severity = "info" if ok is not False else self.rules.severity.get(kind, "medium")
        if not message:
            message = _message(doc, fld, ok, _plain(declared), _plain(documented), documented is None)
        self.checks.append(Check(doc, fld, kind, path, declared, documented, result, severity, tolerance, message))

    def money(self, doc: str, fld: str, kind: str, path: tuple[str | int, ...], declared: Any, documented: Any) -> None:
        d, o = _dec(declared), _dec(documented)
        r = self.rules
        tol = t_plain("±{percent} % (at least {amount})", percent=r.value_tolerance_pct, amount=r.value_tolerance_abs)
        ok = None if d is None or o is None else within(d, o, r.value_tolerance_pct, r.value_tolerance_abs)
        self.add(doc, fld, kind, path, d, o, ok, tol)

    def quantity(self, doc: str, fld: str, path: tuple[str | int, ...], declared: Any, documented: Any) -> None:
        d, o = _dec(declared), _dec(documented)
        r = self.rules
        ok = None if d is None or o is None else within(d, o, r.quantity_tolerance_pct, Decimal(0))
        self.add(doc, fld, "quantity", path, d, o, ok, t_plain("±{percent} %", percent=r.quantity_tolerance_pct))

    def weight(self, doc: str, fld: str, path: tuple[str | int, ...], declared: Any, documented: Any) -> None:
        d, o = _dec(declared), _dec(documented)
        r = self.rules
        tol = t_plain("±{percent} % (at least {kg} kg)", percent=r.weight_tolerance_pct, kg=r.weight_tolerance_kg)
        ok = None if d is None or o is None else within(d, o, r.weight_tolerance_pct, r.weight_tolerance_kg)
        self.add(doc, fld, "weight", path, d, o, ok, tol)

    def party(
        self,
        doc: str,
        fld: str,
        path: tuple[str | int, ...],
        declared: Mapping[str, Any] | None,
        documented: Party | None,
    ) -> None:
        shown_decl = f"{declared.get('name')} ({declared.get('id')})" if declared else None
        shown_doc = (f"{documented.name}" + (f" ({documented.id})" if documented.id else "")) if documented else None
        ok = (
            None if documented is None or not declared else same_party(declared, documented, self.rules.name_similarity)
        )
        self.add(
            doc,
            fld,
            "party",
            path,
            shown_decl,
            shown_doc,
            ok,
            t_plain("name similarity ≥ {score}", score=self.rules.name_similarity),
        )

    def description(
        self, doc: str, fld: str, path: tuple[str | int, ...], declared: str | None, documented: str | None
    ) -> None:
        ok = None
        if declared and documented:
            ok = description_similarity(declared, documented) >= self.rules.description_similarity
        self.add(
            doc,
            fld,
            "description",
            path,
            declared,
            documented,
            ok,
            t_plain("word overlap ≥ {score}", score=self.rules.description_similarity),
        )


def _message(doc: str, fld: str, ok: bool | None, declared: Any, documented: Any, undocumented: bool) -> str:
    """One check's sentence, a template per document and outcome so each reads back from the catalogue."""
    if doc == INVOICE:
        if ok is False:
            return t_plain(
                "Invoice {field_text}: declared {declared}, document says {documented}",
                field_text=fld,
                declared=declared,
                documented=documented,
            )
        if ok:
            return t_plain("Invoice {field_text} agrees", field_text=fld)
        if undocumented:
            return t_plain("Invoice {field_text}: not compared (missing on the document)", field_text=fld)
        return t_plain("Invoice {field_text}: not compared (missing in the declaration)", field_text=fld)
    if doc == PACKING_LIST:
        if ok is False:
            return t_plain(
                "Packing list {field_text}: declared {declared}, document says {documented}",
                field_text=fld,
                declared=declared,
                documented=documented,
            )
        if ok:
            return t_plain("Packing list {field_text} agrees", field_text=fld)
        if undocumented:
            return t_plain("Packing list {field_text}: not compared (missing on the document)", field_text=fld)
        return t_plain("Packing list {field_text}: not compared (missing in the declaration)", field_text=fld)
    if ok is False:
        return t_plain(
            "Bill of lading {field_text}: declared {declared}, document says {documented}",
            field_text=fld,
            declared=declared,
            documented=documented,
        )
    if ok:
        return t_plain("Bill of lading {field_text} agrees", field_text=fld)
    if undocumented:
        return t_plain("Bill of lading {field_text}: not compared (missing on the document)", field_text=fld)
    return t_plain("Bill of lading {field_text}: not compared (missing in the declaration)", field_text=fld)


def _pair_lines(items: Sequence[Mapping[str, Any]], descriptions: Sequence[str | None]) -> list[tuple[int, int]]:
    """Document line i <-> declaration item j: by position when the counts agree, else greedily by
    description similarity."""
    if len(items) == len(descriptions):
        return [(i, i) for i in range(len(items))]
    pairs: list[tuple[float, int, int]] = []
    for i, desc in enumerate(descriptions):
        for j, it in enumerate(items):
            pairs.append((description_similarity(desc or "", str(it.get("description", ""))), i, j))
    used_i: set[int] = set()
    used_j: set[int] = set()
    out = []
    for score, i, j in sorted(pairs, key=lambda p: -p[0]):
        if score > 0 and i not in used_i and j not in used_j:
            out.append((i, j))
            used_i.add(i)
            used_j.add(j)
    return sorted(out)


def compare(
    decl: Mapping[str, Any],
    documents: Mapping[str, Document],
    rules: Rules,
    manifest_containers: Sequence[str] = (),
) -> list[Check]:
    """Compare the declaration (its JSON form) with each attached document, field by field.

    `manifest_containers`: the container numbers the carrier manifested for the declared transport
    documents (the declaration itself carries none); the documents' containers are checked against them.
    """
    rep = _Report(rules)
    items: list[Mapping[str, Any]] = list(decl.get("items") or [])
    inv = documents.get(INVOICE)
    if isinstance(inv, Invoice):
        _compare_invoice(rep, decl, items, inv)
    pl = documents.get(PACKING_LIST)
    if isinstance(pl, PackingList):
        _compare_packing(rep, items, pl)
    bl = documents.get(BILL_OF_LADING)
    if isinstance(bl, BillOfLading):
        _compare_bl(rep, decl, items, bl, pl if isinstance(pl, PackingList) else None)
    if manifest_containers:
        manifested = sorted(set(manifest_containers))
        for kind, d in ((PACKING_LIST, pl), (BILL_OF_LADING, bl)):
            if isinstance(d, (PackingList, BillOfLading)) and d.containers:
                listed = sorted(set(d.containers))
                rep.add(
                    kind,
                    "containers (vs manifest)",
                    "containers",
                    ("transport_documents",),
                    manifested,
                    listed,
                    listed == manifested,
                )
    return rep.checks


def _compare_invoice(rep: _Report, decl: Mapping[str, Any], items: list[Mapping[str, Any]], inv: Invoice) -> None:
    d = INVOICE
    refs = [
        str(x.get("reference", "")).upper()
        for x in decl.get("documents") or []
        if doc_type_of(str(x.get("type", ""))) == INVOICE
    ]
    if refs and inv.number:
        rep.add(d, "number", "number", ("documents",), ", ".join(refs), inv.number, inv.number.upper() in refs)
    rep.party(
        d,
        "seller",
        ("seller",) if decl.get("seller") else ("exporter",),
        decl.get("seller") or decl.get("exporter"),
        inv.seller,
    )
    rep.party(d, "buyer", ("importer",), decl.get("importer"), inv.buyer)
    cur = str(decl.get("currency") or "").upper() or None
    rep.add(
        d,
        "currency",
        "currency",
        ("currency",),
        cur,
        inv.currency,
        None if not inv.currency or not cur else inv.currency == cur,
    )
    rep.money(d, "total", "total", ("invoice_total",), decl.get("invoice_total"), inv.total)
    if inv.lines:
        rep.add(
            d,
            t_plain("line count"),
            "line_count",
            ("items",),
            len(items),
            len(inv.lines),
            len(items) == len(inv.lines),
            message=""
            if len(items) == len(inv.lines)
            else t_plain(
                "Invoice has {lines} lines, the declaration {items} items", lines=len(inv.lines), items=len(items)
            ),
        )
    for i, j in _pair_lines(items, [ln.description for ln in inv.lines]):
        ln, it = inv.lines[i], items[j]
        p: tuple[str | int, ...] = ("items", j)
        rep.description(
            d,
            t_plain("line {line} description", line=i + 1),
            (*p, "description"),
            it.get("description"),
            ln.description,
        )
        rep.quantity(d, t_plain("line {line} quantity", line=i + 1), (*p, "quantity"), it.get("quantity"), ln.quantity)
        rep.money(d, t_plain("line {line} amount", line=i + 1), "amount", (*p, "value"), it.get("value"), ln.amount)
        q, v = _dec(it.get("quantity")), _dec(it.get("value"))
        declared_price = (v / q).quantize(Decimal("0.0001")) if q and v is not None else None
        doc_price = ln.unit_price
        if doc_price is None and ln.amount is not None and ln.quantity:
            doc_price = (ln.amount / ln.quantity).quantize(Decimal("0.0001"))
        rep.money(
            d, t_plain("line {line} unit price", line=i + 1), "unit_price", (*p, "value"), declared_price, doc_price
        )
        if ln.tariff_code:
            dc, oc = re.sub(r"\D", "", str(it.get("tariff_code", ""))), re.sub(r"\D", "", ln.tariff_code)
            n = min(6, len(dc), len(oc))
            rep.add(
                d,
                t_plain("line {line} tariff code", line=i + 1),
                "code",
                (*p, "tariff_code"),
                dc,
                oc,
                dc[:n] == oc[:n] if n >= 4 else None,
                t_plain("first 6 digits"),
            )


def _compare_packing(rep: _Report, items: list[Mapping[str, Any]], pl: PackingList) -> None:
    d = PACKING_LIST
    gross = sum(
        (_dec(it.get("gross_mass_kg")) or _dec(it.get("net_mass_kg")) or Decimal(0) for it in items), Decimal(0)
    )
    net = sum((_dec(it.get("net_mass_kg")) or Decimal(0) for it in items), Decimal(0))
    rep.weight(d, t_plain("gross weight"), ("items",), gross, pl.gross_weight_kg)
    rep.weight(d, t_plain("net weight"), ("items",), net, pl.net_weight_kg)
    for i, j in _pair_lines(items, [ln.description for ln in pl.lines]):
        ln, it = pl.lines[i], items[j]
        p: tuple[str | int, ...] = ("items", j)
        rep.quantity(d, t_plain("line {line} quantity", line=i + 1), (*p, "quantity"), it.get("quantity"), ln.quantity)
        rep.weight(
            d,
            t_plain("line {line} net weight", line=i + 1),
            (*p, "net_mass_kg"),
            it.get("net_mass_kg"),
            ln.net_weight_kg,
        )


def _compare_bl(
    rep: _Report, decl: Mapping[str, Any], items: list[Mapping[str, Any]], bl: BillOfLading, pl: PackingList | None
) -> None:
    d = BILL_OF_LADING
    refs = [str(td.get("reference", "")).upper() for td in decl.get("transport_documents") or []]
    number = (bl.number or "").upper()
    rep.add(
        d,
        t_plain("number"),
        "transport_document",
        ("transport_documents",),
        ", ".join(refs) or None,
        bl.number,
        None if not bl.number else number in refs,
        message=""
        if number in refs
        else t_plain(
            "Bill of lading {number} is not among the declared transport documents ({documents})",
            number=bl.number,
            documents=", ".join(refs) or "-",
        ),
    )
    rep.party(d, t_plain("consignee"), ("importer",), decl.get("importer"), bl.consignee)
    rep.party(d, t_plain("shipper"), ("exporter",), decl.get("exporter"), bl.shipper)
    gross = sum(
        (_dec(it.get("gross_mass_kg")) or _dec(it.get("net_mass_kg")) or Decimal(0) for it in items), Decimal(0)
    )
    rep.weight(d, t_plain("gross weight"), ("items",), gross, bl.gross_weight_kg)
    if bl.description:
        joined = " ".join(str(it.get("description", "")) for it in items)
        rep.description(d, t_plain("description"), ("items",), joined, bl.description)
    if pl is not None:
        if pl.packages is not None and bl.packages is not None:
            rep.add(
                d,
                t_plain("packages (vs packing list)"),
                "packages",
                ("items",),
                pl.packages,
                bl.packages,
                pl.packages == bl.packages,
            )
        if pl.containers and bl.containers:
            a, b = sorted(set(pl.containers)), sorted(set(bl.containers))
            rep.add(d, t_plain("containers (vs packing list)"), "containers", ("transport_documents",), a, b, a == b)


def summary(checks: Sequence[Check]) -> dict[str, int]:
    out = {"match": 0, "mismatch": 0, "not_compared": 0}
    for c in checks:
        out[c.result] += 1
    return out


def at_least(severity: str, floor: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)
