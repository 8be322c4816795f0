"""Advance cargo information: manifests as carriers file them, and how declarations are matched to their lines.

Pure domain, no I/O: parsing a filed manifest (every problem at once, with its path), container-number
check digits, the rules (tolerances, lanes) an administration tunes, and the matching of manifest lines
to declarations by transport document reference with the discrepancies that become risk findings.

Split consignments are common (one B/L, several declarations; one declaration, several B/Ls), so
packages and weights are compared per *group*: the connected set of declarations and lines that share a
transport document reference. Consignee and description are compared per (declaration, line) pair.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from smartcustoms.clearance.lifecycle import MODE_WORDS
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t, t_plain

SOURCE = "manifests"
MODES = ("sea", "air", "rail", "road", "post", "fixed", "inland_water")
"""WCO/UNECE Rec. 19 modes, as the declaration names them."""
DOC_TYPES = ("BL", "AWB", "CMR", "CIM", "POST")
MANIFESTED_MODES = frozenset({"sea", "air"})
"""Modes where every import must appear on a manifest filed before arrival."""
PACKAGE_UNITS = frozenset(
    {"pk", "pkg", "pkgs", "pack", "ctn", "carton", "cartons", "box", "bx", "pal", "plt", "pallet", "cs", "case"}
    | {"bag", "bg", "drm", "drum", "crt", "crate", "bdl", "bundle", "roll", "rl", "cask", "ct"}
)
"""Declared quantity units that count packages (so a declaration can be compared with manifested packages)."""
MAX_LINES = 20_000


class ManifestError(DomainError):
    """Bad manifest input or a refused manifest operation."""


# ---------------------------------------------------------------------------------------------------- manifest


@dataclass(slots=True)
class PartyRef:
    """A party as a manifest line or a declaration names it.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    name: str
    id: str | None = None


@dataclass(frozen=True)
class Container:
    number: str
    seals: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManifestLine:
    line_no: int
    doc_type: str
    doc_ref: str
    shipper: PartyRef
    consignee: PartyRef
    description: str
    packages: int
    gross_weight_kg: Decimal
    package_type: str | None = None
    containers: tuple[Container, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """Advance cargo information for one voyage or flight arriving at one port."""

    voyage: str
    mode: str
    port: str
    expected_arrival: datetime
    lines: tuple[ManifestLine, ...]
    means_id: str | None = None


def container_check_digit(owner_serial: str) -> int:
    """ISO 6346 check digit of the first ten characters of a container number (e.g. 'CSQU305438')."""
    total = 0
    for i, ch in enumerate(owner_serial):
        if ch.isdigit():
            value = int(ch)
        else:
            value = 10 + ord(ch) - ord("A")
            value += (value - 1) // 10  # 11, 22 and 33 are skipped
        total += value * (1 << i)
    return total % 11 % 10


_CONTAINER = re.compile(r"^[A-Z]{3}[UJZ][0-9]{7}$")


def container_problem(number: str) -> str | None:
    """Why a container number is not a valid ISO 6346 number, or None."""
    if not _CONTAINER.match(number):
        return t(
            "Container number '{number}' is not 3 owner letters, a category letter (U, J, Z) and 7 digits",
            number=number,
        )
    if container_check_digit(number[:10]) != int(number[10]):
        return t(
            "Container number {number} has a wrong check digit (expected {digit})",
            number=number,
            digit=container_check_digit(number[:10]),
        )
    return None


class _Reader:
    """Reads a raw JSON-like mapping field by field, collecting every problem with its path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, code: str, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(code, path, message))

    def text(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: tuple[str | int, ...],
        *,
        required: bool = True,
        max_len: int = 512,
    ) -> str | None:
        value = raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.bad("missing", (*path, key), t("{field} is required", field=key))
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            self.bad("not_text", (*path, key), t("{field} must be text", field=key))
            return None
        out = str(value).strip()
        if len(out) > max_len:
            self.bad("too_long", (*path, key), t("{field} is longer than {limit} characters", field=key, limit=max_len))
            return None
        return out

    def integer(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> int | None:
        value = raw.get(key)
        if value is None or value == "":
            self.bad("missing", (*path, key), t("{field} is required", field=key))
            return None
        try:
            number = Decimal(str(value).strip()) if not isinstance(value, bool) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number != number.to_integral_value():
            self.bad(
                "not_integer", (*path, key), t("{field} must be a whole number, got '{value}'", field=key, value=value)
            )
            return None
        if number < 0:
            self.bad("negative", (*path, key), t("{field} may not be negative ({value})", field=key, value=number))
            return None
        if number > 10**9:
            self.bad("too_large", (*path, key), t("{field} is implausibly large ({value})", field=key, value=number))
            return None
        return int(number)

    def decimal(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> Decimal | None:
        value = raw.get(key)
        if value is None or value == "":
            self.bad("missing", (*path, key), t("{field} is required", field=key))
            return None
        try:
            number = Decimal(str(value).strip()) if not isinstance(value, bool) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.bad("not_number", (*path, key), t("{field} must be a number, got '{value}'", field=key, value=value))
            return None
        if number < 0:
            self.bad("negative", (*path, key), t("{field} may not be negative ({value})", field=key, value=number))
            return None
        if number > Decimal(10) ** 12:
            self.bad("too_large", (*path, key), t("{field} is implausibly large ({value})", field=key, value=number))
            return None
        return number

    def moment(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> datetime | None:
        value = raw.get(key)
        if value is None or value == "":
            self.bad("missing", (*path, key), t("{field} is required", field=key))
            return None
        try:
            if isinstance(value, datetime):
                at = value
            elif isinstance(value, date):
                at = datetime(value.year, value.month, value.day)
            else:
                at = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            self.bad(
                "not_datetime",
                (*path, key),
                t("{field} must be an ISO 8601 date or date-time, got '{value}'", field=key, value=value),
            )
            return None
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    def party(self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...]) -> PartyRef | None:
        value = raw.get(key)
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            self.bad(
                "missing" if value is None else "not_object",
                (*path, key),
                t("{field} needs at least a name", field=key),
            )
            return None
        name = self.text(value, "name", (*path, key))
        ident = self.text(value, "id", (*path, key), required=False, max_len=35)
        return PartyRef(name, ident) if name else None


def parse_manifest(raw: Any) -> Manifest:
    """A manifest from its JSON form; raises `ManifestError` listing every problem (nothing is half-read)."""
    r = _Reader()
    if not isinstance(raw, Mapping):
        raise ManifestError(Problem("not_object", (), t("A manifest is a JSON object")))
    voyage = r.text(raw, "voyage", (), max_len=35)
    mode = r.text(raw, "mode", ())
    if mode is not None and mode.lower() not in MODES:
        r.bad(
            "unknown_mode",
            ("mode",),
            t("Unknown transport mode '{mode}'; one of {allowed}", mode=mode, allowed=", ".join(MODES)),
        )
        mode = None
    port = r.text(raw, "port", (), max_len=5)
    if port is not None and not re.fullmatch(r"[A-Za-z]{2}[A-Za-z0-9]{3}", port):
        r.bad("bad_port", ("port",), t("Port '{port}' is not a UN/LOCODE (e.g. TWKHH)", port=port))
        port = None
    means = r.text(raw, "means_id", (), required=False, max_len=64)
    arrival = r.moment(raw, "expected_arrival", ())
    raw_lines = raw.get("lines")
    lines: list[ManifestLine] = []
    if not isinstance(raw_lines, list) or not raw_lines:
        r.bad("no_lines", ("lines",), t("A manifest needs at least one line"))
    elif len(raw_lines) > MAX_LINES:
        r.bad("too_many_lines", ("lines",), t("At most {limit} lines per manifest; split the voyage", limit=MAX_LINES))
    else:
        seen_docs: dict[str, int] = {}
        seen_nos: dict[int, int] = {}
        for i, item in enumerate(raw_lines):
            line = _parse_line(r, item, i)
            raw_ref = item.get("doc_ref") if isinstance(item, Mapping) else None
            doc_key = str(raw_ref).strip().upper() if isinstance(raw_ref, (str, int)) and str(raw_ref).strip() else None
            if doc_key is not None:
                if doc_key in seen_docs:
                    r.bad(
                        "duplicate_document",
                        ("lines", i, "doc_ref"),
                        t(
                            "Transport document {document} is already on line {line}",
                            document=doc_key,
                            line=seen_docs[doc_key] + 1,
                        ),
                    )
                else:
                    seen_docs[doc_key] = i
            if line is None:
                continue
            if line.line_no in seen_nos:
                r.bad(
                    "duplicate_line_no",
                    ("lines", i, "line_no"),
                    t("Line number {line_no} is used twice", line_no=line.line_no),
                )
            else:
                seen_nos[line.line_no] = i
            lines.append(line)
    extra = sorted(set(raw) - {"voyage", "mode", "port", "means_id", "expected_arrival", "lines"})
    for key in extra:
        r.bad("unknown_field", (key,), t("Unknown field '{field}'", field=key))
    if r.problems:
        raise ManifestError(r.problems)
    assert voyage and mode and port and arrival
    return Manifest(voyage, mode.lower(), port.upper(), arrival, tuple(lines), means)


_LINE_FIELDS = {
    "line_no",
    "doc_type",
    "doc_ref",
    "shipper",
    "consignee",
    "description",
    "packages",
    "package_type",
    "gross_weight_kg",
    "containers",
}


def _parse_line(r: _Reader, item: Any, i: int) -> ManifestLine | None:
    path: tuple[str | int, ...] = ("lines", i)
    if not isinstance(item, Mapping):
        r.bad("not_object", path, "A manifest line is a JSON object")
        return None
    before = len(r.problems)
    line_no = r.integer(item, "line_no", path) if item.get("line_no") is not None else i + 1
    if line_no == 0:
        r.bad("bad_line_no", (*path, "line_no"), t("Line numbers start at 1"))
    doc_type = (r.text(item, "doc_type", path, required=False, max_len=8) or "BL").upper()
    if doc_type not in DOC_TYPES:
        r.bad(
            "unknown_doc_type",
            (*path, "doc_type"),
            t("Unknown transport document type '{doc_type}'", doc_type=doc_type),
        )
    doc_ref = r.text(item, "doc_ref", path, max_len=35)
    shipper = r.party(item, "shipper", path)
    consignee = r.party(item, "consignee", path)
    description = r.text(item, "description", path)
    packages = r.integer(item, "packages", path)
    package_type = r.text(item, "package_type", path, required=False, max_len=16)
    weight = r.decimal(item, "gross_weight_kg", path)
    if packages == 0:
        r.bad("no_packages", (*path, "packages"), "A manifest line carries at least one package")
    containers: list[Container] = []
    raw_containers = item.get("containers") or []
    if not isinstance(raw_containers, list):
        r.bad("not_list", (*path, "containers"), "containers is a list")
        raw_containers = []
    for j, c in enumerate(raw_containers):
        cpath = (*path, "containers", j)
        if isinstance(c, str):
            c = {"number": c}
        if not isinstance(c, Mapping):
            r.bad("not_object", cpath, "A container is an object with a number and seals")
            continue
        number = r.text(c, "number", cpath, max_len=11)
        if number is not None:
            number = number.upper().replace(" ", "")
            why = container_problem(number)
            if why:
                r.bad("bad_container_number", (*cpath, "number"), why)
        seals = c.get("seals") or []
        if isinstance(seals, str):
            seals = [seals]
        if not isinstance(seals, list) or not all(isinstance(s, str) and 0 < len(s.strip()) <= 35 for s in seals):
            r.bad("bad_seals", (*cpath, "seals"), "seals is a list of seal numbers (1-35 characters each)")
            seals = []
        if number:
            containers.append(Container(number, tuple(s.strip().upper() for s in seals)))
    for key in sorted(set(item) - _LINE_FIELDS):
        r.bad("unknown_field", (*path, key), t("Unknown field '{field}'", field=key))
    if len(r.problems) > before:
        return None
    assert doc_ref and shipper and consignee and description and packages is not None and weight is not None
    return ManifestLine(
        int(line_no or i + 1),
        doc_type,
        doc_ref.upper(),
        shipper,
        consignee,
        description,
        packages,
        weight,
        package_type,
        tuple(containers),
    )


def manifest_json(m: Manifest) -> dict[str, Any]:
    """The canonical JSON form (what `parse_manifest` reads back)."""
    return {
        "voyage": m.voyage,
        "mode": m.mode,
        "port": m.port,
        "means_id": m.means_id,
        "expected_arrival": m.expected_arrival.isoformat(),
        "lines": [line_json(line) for line in m.lines],
    }


def line_json(line: ManifestLine) -> dict[str, Any]:
    return {
        "line_no": line.line_no,
        "doc_type": line.doc_type,
        "doc_ref": line.doc_ref,
        "shipper": {"name": line.shipper.name, "id": line.shipper.id},
        "consignee": {"name": line.consignee.name, "id": line.consignee.id},
        "description": line.description,
        "packages": line.packages,
        "package_type": line.package_type,
        "gross_weight_kg": str(line.gross_weight_kg),
        "containers": [{"number": c.number, "seals": list(c.seals)} for c in line.containers],
    }


CSV_COLUMNS = (
    "line_no",
    "doc_type",
    "doc_ref",
    "shipper_name",
    "shipper_id",
    "consignee_name",
    "consignee_id",
    "description",
    "packages",
    "package_type",
    "gross_weight_kg",
    "containers",
)
"""Manifest lines as CSV: `containers` is `NUMBER:SEAL/SEAL;NUMBER:SEAL` (seals optional)."""


def lines_from_csv_rows(rows: Iterable[Mapping[str, str | None]]) -> list[dict[str, Any]]:
    """CSV rows to the JSON form of manifest lines (validation happens in `parse_manifest`)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        get = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        containers = []
        for part in filter(None, (p.strip() for p in get.get("containers", "").split(";"))):
            number, _, seals = part.partition(":")
            containers.append({"number": number.strip(), "seals": [s.strip() for s in seals.split("/") if s.strip()]})
        line: dict[str, Any] = {
            "doc_type": get.get("doc_type") or "BL",
            "doc_ref": get.get("doc_ref"),
            "shipper": {"name": get.get("shipper_name"), "id": get.get("shipper_id") or None},
            "consignee": {"name": get.get("consignee_name"), "id": get.get("consignee_id") or None},
            "description": get.get("description"),
            "packages": get.get("packages"),
            "package_type": get.get("package_type") or None,
            "gross_weight_kg": get.get("gross_weight_kg"),
            "containers": containers,
        }
        if get.get("line_no"):
            line["line_no"] = get["line_no"]
        out.append(line)
    return out


# ---------------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rules:
    """What an administration tunes without code changes (stored as a setting, versioned)."""

    weight_tolerance_pct: Decimal = Decimal("5")
    weight_tolerance_kg: Decimal = Decimal("10")
    """Weights differ when apart by more than the larger of the percentage and this absolute floor."""
    packages_tolerance: int = 0
    description_top_chapters: int = 3
    """The declared chapter must be among this many best chapters of the manifest description."""
    description_min_score: float = 0.35
    """Vague manifest descriptions ('general cargo', 'FAK') score below this and are not judged."""
    consignee_name_similarity: float = 0.8
    missing_grace_days: int = 1
    """A sea/air import without a manifest line is flagged once its arrival (or, when none is declared, its
    filing) is this many days past: at filing when it arrived earlier, else by the sweep. A day's grace
    lets a manifest filed on the arrival day catch up before anyone is flagged."""
    follow_up_days: int = 5
    """Manifest lines still undeclared this many days after arrival are listed for follow-up."""
    lanes: Mapping[str, str | None] = field(
        default_factory=lambda: {
            "manifest_missing": "C2",
            "consignee_differs": "C2",
            "packages_differ": "C2",
            "weight_differs": "C2",
            "description_mismatch": "C3",
        }
    )
    scores: Mapping[str, float] = field(
        default_factory=lambda: {
            "manifest_missing": 0.6,
            "consignee_differs": 0.55,
            "packages_differ": 0.5,
            "weight_differs": 0.5,
            "description_mismatch": 0.75,
        }
    )
    hold: frozenset[str] = frozenset()
    version: int = 1

    @property
    def label(self) -> str:
        return f"manifest-rules-v{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "weight_tolerance_pct": str(self.weight_tolerance_pct),
            "weight_tolerance_kg": str(self.weight_tolerance_kg),
            "packages_tolerance": self.packages_tolerance,
            "description_top_chapters": self.description_top_chapters,
            "description_min_score": self.description_min_score,
            "consignee_name_similarity": self.consignee_name_similarity,
            "missing_grace_days": self.missing_grace_days,
            "follow_up_days": self.follow_up_days,
            "lanes": dict(self.lanes),
            "scores": dict(self.scores),
            "hold": sorted(self.hold),
        }


FINDING_CODES = ("manifest_missing", "consignee_differs", "packages_differ", "weight_differs", "description_mismatch")


def rules_from(raw: Mapping[str, Any], version: int = 1) -> Rules:
    """Rules from their stored form; raises listing every bad setting."""
    problems: list[Problem] = []
    base = Rules()
    values: dict[str, Any] = {}

    def number(key: str, kind: type, lo: float, hi: float) -> None:
        if key not in raw:
            return
        try:
            v = kind(str(raw[key])) if kind is Decimal else kind(raw[key])
        except (TypeError, ValueError, InvalidOperation):
            problems.append(Problem("bad_setting", (key,), t("{field} must be a number", field=key)))
            return
        if not lo <= float(v) <= hi:
            problems.append(
                Problem(
                    "bad_setting", (key,), t("{field} must be between {low} and {high}", field=key, low=lo, high=hi)
                )
            )
            return
        values[key] = v

    number("weight_tolerance_pct", Decimal, 0, 100)
    number("weight_tolerance_kg", Decimal, 0, 100_000)
    number("packages_tolerance", int, 0, 100_000)
    number("description_top_chapters", int, 1, 97)
    number("description_min_score", float, 0, 10)
    number("consignee_name_similarity", float, 0, 1)
    number("missing_grace_days", int, 0, 365)
    number("follow_up_days", int, 0, 365)
    for key, allowed in (("lanes", ("C1", "C2", "C3", None)), ("scores", None)):
        if key not in raw:
            continue
        given = raw[key]
        if not isinstance(given, Mapping):
            problems.append(Problem("bad_setting", (key,), t("{field} maps finding codes to values", field=key)))
            continue
        merged = dict(getattr(base, key))
        for code, v in given.items():
            if code not in FINDING_CODES:
                problems.append(Problem("unknown_code", (key, code), t("Unknown finding code '{code}'", code=code)))
            elif allowed is not None and v not in allowed:
                problems.append(Problem("bad_lane", (key, code), t("Lane is C1, C2, C3 or null")))
            elif allowed is None and (not isinstance(v, (int, float)) or not 0 <= v <= 1):
                problems.append(Problem("bad_score", (key, code), t("Score is a number from 0 to 1")))
            else:
                merged[code] = v
        values[key] = merged
    if "hold" in raw:
        hold = raw["hold"]
        if not isinstance(hold, list) or any(h not in FINDING_CODES for h in hold):
            problems.append(
                Problem(
                    "bad_setting", ("hold",), t("hold lists finding codes: {allowed}", allowed=", ".join(FINDING_CODES))
                )
            )
        else:
            values["hold"] = frozenset(hold)
    for key in sorted(set(raw) - {*Rules().as_dict()}):
        problems.append(Problem("unknown_setting", (key,), t("Unknown setting '{key}'", key=key)))
    if problems:
        raise ManifestError(problems)
    return replace(base, version=version, **values)


def weights_differ(declared: Decimal, manifested: Decimal, rules: Rules) -> bool:
    allowed = max(manifested * rules.weight_tolerance_pct / 100, rules.weight_tolerance_kg)
    return abs(declared - manifested) > allowed


# ---------------------------------------------------------------------------------------------------- matching

_SUFFIXES = frozenset(
    {
        "co",
        "ltd",
        "inc",
        "corp",
        "corporation",
        "company",
        "limited",
        "llc",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "bv",
        "nv",
        "pte",
        "pty",
        "srl",
        "spa",
        "kk",
        "co.,ltd",
        "coltd",
        "trading",
        "international",
        "intl",
        "group",
        "holdings",
        "enterprise",
        "enterprises",
    }
)


@lru_cache(maxsize=65_536)
def party_key(name: str) -> str:
    """A company name folded for comparison: case, accents, punctuation and legal-form words dropped."""
    text = unicodedata.normalize("NFKC", name).casefold()
    words = re.findall(r"\w+", text)
    kept = [w for w in words if w not in _SUFFIXES]
    return " ".join(kept or words)


def same_party(a: PartyRef, b: PartyRef, similarity: float) -> bool:
    """Same by ID when both carry one; otherwise by folded name (close enough for typing variants)."""
    if a.id and b.id:
        return a.id.strip().upper() == b.id.strip().upper()
    ka, kb = party_key(a.name), party_key(b.name)
    if ka == kb:
        return True
    return SequenceMatcher(None, ka, kb).ratio() >= similarity


@dataclass(slots=True)
class DeclaredGoods:
    """What a declaration says about its consignment, as the matcher needs it.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    reference: str
    doc_refs: tuple[str, ...]
    declaration_type: str
    mode: str
    consignee: PartyRef
    gross_weight_kg: Decimal
    packages: int | None
    chapters: frozenset[str]
    manifest_ref: str | None = None
    arrival_date: date | None = None

    @property
    def needs_manifest(self) -> bool:
        return self.declaration_type == "import" and self.mode in MANIFESTED_MODES


@dataclass(frozen=True)
class LineFacts:
    """One stored manifest line as the matcher needs it. `chapters`: best HS chapters of its description
    with their scores (computed once when the manifest is filed)."""

    key: int
    manifest: str
    voyage: str
    doc_ref: str
    consignee: PartyRef
    description: str
    packages: int
    gross_weight_kg: Decimal
    chapters: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Discrepancy:
    reference: str
    code: str
    message: str
    path: tuple[str | int, ...]
    lines: tuple[int, ...]
    detail: Mapping[str, Any]

    @property
    def key(self) -> str:
        """Identity used to raise the same discrepancy once only."""
        docs = self.detail.get("doc_refs") or [self.detail.get("doc_ref", "")]
        return f"{self.code}:{','.join(sorted(map(str, docs)))}:{self.detail.get('manifested', '')}"


@dataclass
class MatchResult:
    lines_of: dict[str, list[int]]
    """Declaration reference -> keys of the lines it matched."""
    declarations_of: dict[int, list[str]]
    """Line key -> references of the declarations that cover it."""
    discrepancies: list[Discrepancy]

    def unmatched_lines(self, lines: Iterable[LineFacts]) -> list[LineFacts]:
        return [line for line in lines if not self.declarations_of.get(line.key)]


def _candidates(decl: DeclaredGoods, by_doc: Mapping[str, list[LineFacts]]) -> list[LineFacts]:
    found = [line for ref in decl.doc_refs for line in by_doc.get(ref.upper(), ())]
    if decl.manifest_ref:
        wanted = decl.manifest_ref.upper()
        narrowed = [ln for ln in found if wanted in (ln.manifest.upper(), ln.voyage.upper())]
        found = narrowed or found
    seen: set[int] = set()
    return [ln for ln in found if not (ln.key in seen or seen.add(ln.key))]  # type: ignore[func-returns-value]


def match(
    lines: Sequence[LineFacts],
    declarations: Sequence[DeclaredGoods],
    rules: Rules,
    *,
    on: date | None = None,
    judge: Iterable[str] | None = None,
) -> MatchResult:
    """Match declarations to manifest lines by transport document and list the discrepancies.

    `judge` names the declarations whose discrepancies are wanted (default: all); the others only
    contribute to group totals. `on` is the day missing manifests are judged on (None: never missing).
    """
    by_doc: dict[str, list[LineFacts]] = defaultdict(list)
    for line in lines:
        by_doc[line.doc_ref.upper()].append(line)
    lines_of: dict[str, list[int]] = {}
    declarations_of: dict[int, list[str]] = defaultdict(list)
    by_ref = {d.reference: d for d in declarations}
    for d in declarations:
        keys = [ln.key for ln in _candidates(d, by_doc)]
        lines_of[d.reference] = keys
        for k in keys:
            declarations_of[k].append(d.reference)
    line_by_key = {ln.key: ln for ln in lines}
    wanted = set(judge) if judge is not None else set(by_ref)
    out: list[Discrepancy] = []
    # groups: connected declarations and lines (union-find over declaration references)
    parent: dict[str, str] = {r: r for r in by_ref}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for refs in declarations_of.values():
        for other in refs[1:]:
            a, b = find(refs[0]), find(other)
            if a != b:
                parent[b] = a
    groups: dict[str, list[str]] = defaultdict(list)
    for r in by_ref:
        groups[find(r)].append(r)
    for members in groups.values():
        if not any(m in wanted for m in members):
            continue
        keys = sorted({k for m in members for k in lines_of[m]})
        if not keys:
            for m in members:
                missing = unmatched(by_ref[m], rules, on) if m in wanted else None
                if missing is not None:
                    out.append(missing)
            continue
        out.extend(_group_checks([by_ref[m] for m in members], [line_by_key[k] for k in keys], rules, wanted))
        for m in members:
            if m in wanted:
                out.extend(_pair_checks(by_ref[m], [line_by_key[k] for k in lines_of[m]], rules))
    return MatchResult(lines_of, dict(declarations_of), out)


def unmatched(d: DeclaredGoods, rules: Rules, on: date | None) -> Discrepancy | None:
    """What `match` says of a declaration no manifest line covers: its manifest is missing once the goods
    should have arrived (past the grace days), else nothing."""
    return _missing(d) if d.needs_manifest and _arrived(d, on, rules) else None


def _arrived(d: DeclaredGoods, on: date | None, rules: Rules) -> bool:
    if on is None:
        return False
    arrived = d.arrival_date or on
    return (on - arrived).days >= rules.missing_grace_days


def _missing(d: DeclaredGoods) -> Discrepancy:
    if d.doc_refs:
        message = t_plain(
            "No manifest line for this {mode_text} import (transport documents: {documents})",
            mode_text=MODE_WORDS.get(d.mode, d.mode),
            documents=", ".join(d.doc_refs),
        )
    else:
        message = t_plain(
            "No manifest line for this {mode_text} import (no transport document given)",
            mode_text=MODE_WORDS.get(d.mode, d.mode),
        )
    return Discrepancy(
        d.reference,
        "manifest_missing",
        message,
        ("transport_documents",),
        (),
        {"doc_refs": list(d.doc_refs), "manifest_ref": d.manifest_ref},
    )


def _group_checks(
    decls: list[DeclaredGoods], lines: list[LineFacts], rules: Rules, wanted: set[str]
) -> list[Discrepancy]:
    out: list[Discrepancy] = []
    manifested_w = sum((ln.gross_weight_kg for ln in lines), Decimal(0))
    declared_w = sum((d.gross_weight_kg for d in decls), Decimal(0))
    heavy = weights_differ(declared_w, manifested_w, rules)
    counted = all(d.packages is not None for d in decls)
    manifested_p = sum(ln.packages for ln in lines) if counted else 0
    declared_p = sum(d.packages or 0 for d in decls) if counted else 0
    if not heavy and abs(declared_p - manifested_p) <= rules.packages_tolerance:
        return out  # the common case: nothing to say, no text to build
    keys = tuple(ln.key for ln in lines)
    docs = sorted({ln.doc_ref for ln in lines})
    refs = [d.reference for d in decls]
    together = ", ".join(refs) if len(decls) > 1 else ""
    if heavy:
        for d in decls:
            if d.reference in wanted:
                out.append(
                    Discrepancy(
                        d.reference,
                        "weight_differs",
                        t_plain(
                            "Declared gross weight {declared} kg (declarations {references} together) differs from "
                            "the manifested {manifested} kg on {documents} beyond the tolerance of {percent} % "
                            "(at least {kg} kg)",
                            declared=declared_w,
                            references=together,
                            manifested=manifested_w,
                            documents=", ".join(docs),
                            percent=rules.weight_tolerance_pct,
                            kg=rules.weight_tolerance_kg,
                        )
                        if together
                        else t_plain(
                            "Declared gross weight {declared} kg differs from the manifested {manifested} kg on "
                            "{documents} beyond the tolerance of {percent} % (at least {kg} kg)",
                            declared=declared_w,
                            manifested=manifested_w,
                            documents=", ".join(docs),
                            percent=rules.weight_tolerance_pct,
                            kg=rules.weight_tolerance_kg,
                        ),
                        ("items",),
                        keys,
                        {"declared": str(declared_w), "manifested": str(manifested_w), "doc_refs": docs},
                    )
                )
    if counted and abs(declared_p - manifested_p) > rules.packages_tolerance:
        for d in decls:
            if d.reference in wanted:
                out.append(
                    Discrepancy(
                        d.reference,
                        "packages_differ",
                        t_plain(
                            "Declared {declared} packages (declarations {references} together) but {manifested} are "
                            "manifested on {documents}",
                            declared=declared_p,
                            references=together,
                            manifested=manifested_p,
                            documents=", ".join(docs),
                        )
                        if together
                        else t_plain(
                            "Declared {declared} packages but {manifested} are manifested on {documents}",
                            declared=declared_p,
                            manifested=manifested_p,
                            documents=", ".join(docs),
                        ),
                        ("items",),
                        keys,
                        {"declared": declared_p, "manifested": manifested_p, "doc_refs": docs},
                    )
                )
    return out


def _pair_checks(d: DeclaredGoods, lines: list[LineFacts], rules: Rules) -> list[Discrepancy]:
    out: list[Discrepancy] = []
    for ln in lines:
        if not same_party(d.consignee, ln.consignee, rules.consignee_name_similarity):
            shown = f"{ln.consignee.name}" + (f" ({ln.consignee.id})" if ln.consignee.id else "")
            out.append(
                Discrepancy(
                    d.reference,
                    "consignee_differs",
                    t_plain(
                        "Manifest line {document} is consigned to {manifested}, the declared importer is {declared}",
                        document=ln.doc_ref,
                        manifested=shown,
                        declared=f"{d.consignee.name}" + (f" ({d.consignee.id})" if d.consignee.id else ""),
                    ),
                    ("importer",),
                    (ln.key,),
                    {"declared": d.consignee.name, "manifested": ln.consignee.name, "doc_ref": ln.doc_ref},
                )
            )
        judged = [(c, s) for c, s in ln.chapters[: rules.description_top_chapters]]
        judged_ok = bool(d.chapters and judged and judged[0][1] >= rules.description_min_score)
        if judged_ok and not d.chapters & {c for c, _ in judged}:
            best = ", ".join(c for c, _ in judged)
            out.append(
                Discrepancy(
                    d.reference,
                    "description_mismatch",
                    t_plain(
                        "Manifest line {document} describes '{description}' (HS chapters {best}); "
                        "the declared codes are in chapters {declared}",
                        document=ln.doc_ref,
                        description=ln.description,
                        best=best,
                        declared=", ".join(sorted(d.chapters)),
                    ),
                    ("items",),
                    (ln.key,),
                    {
                        "declared_chapters": sorted(d.chapters),
                        "manifested": ln.description,
                        "manifest_chapters": [c for c, _ in judged],
                        "doc_ref": ln.doc_ref,
                    },
                )
            )
    return out


def declared_goods(
    reference: str, decl: Mapping[str, Any], *, package_units: frozenset[str] = PACKAGE_UNITS
) -> DeclaredGoods:
    """The matcher's view of a declaration in its JSON form (`DeclarationIn.model_dump(mode='json')`)."""
    items = decl.get("items") or []
    weight = Decimal(0)
    packages: int | None = 0
    chapters: set[str] = set()
    for it in items:
        gross = it.get("gross_mass_kg")
        weight += Decimal(str(gross if gross is not None else it.get("net_mass_kg") or 0))
        code = _NON_DIGITS.sub("", str(it.get("tariff_code") or ""))
        if len(code) >= 2:
            chapters.add(code[:2])
        if packages is not None and str(it.get("quantity_unit") or "").lower() in package_units:
            packages += int(Decimal(str(it.get("quantity") or 0)))
        else:
            packages = None
    importer = decl.get("importer") or {}
    transport = decl.get("transport") or {}
    arrival = transport.get("arrival_date")
    return DeclaredGoods(
        reference=reference,
        doc_refs=tuple(
            dict.fromkeys(str(t.get("reference", "")).strip().upper() for t in decl.get("transport_documents") or [])
        ),
        declaration_type=str(decl.get("type") or ""),
        mode=str(transport.get("mode") or ""),
        consignee=PartyRef(str(importer.get("name") or ""), importer.get("id")),
        gross_weight_kg=weight,
        packages=packages if items else None,
        chapters=frozenset(chapters),
        manifest_ref=decl.get("manifest_ref"),
        arrival_date=date.fromisoformat(arrival) if isinstance(arrival, str) else arrival,
    )


_NON_DIGITS = re.compile(r"\D")


def doc_refs_of(decl: Any) -> tuple[str, ...]:
    """A `clearance.schema.DeclarationIn`'s transport document references as the matcher keys them."""
    return tuple(dict.fromkeys(td.reference.strip().upper() for td in decl.transport_documents))


def goods_of(reference: str, decl: Any, *, package_units: frozenset[str] = PACKAGE_UNITS) -> DeclaredGoods:
    """The matcher's view of a `clearance.schema.DeclarationIn` read from its attributes (no JSON dump:
    this runs on every filing)."""
    weight = Decimal(0)
    packages: int | None = 0
    chapters: set[str] = set()
    for it in decl.items:
        weight += it.gross_mass_kg if it.gross_mass_kg is not None else it.net_mass_kg
        code = _NON_DIGITS.sub("", it.tariff_code)
        if len(code) >= 2:
            chapters.add(code[:2])
        if packages is not None and it.quantity_unit.lower() in package_units:
            packages += int(it.quantity)
        else:
            packages = None
    return DeclaredGoods(
        reference=reference,
        doc_refs=doc_refs_of(decl),
        declaration_type=str(decl.type.value),
        mode=str(decl.transport.mode.value),
        consignee=PartyRef(decl.importer.name, decl.importer.id),
        gross_weight_kg=weight,
        packages=packages if decl.items else None,
        chapters=frozenset(chapters),
        manifest_ref=decl.manifest_ref,
        arrival_date=decl.transport.arrival_date,
    )
