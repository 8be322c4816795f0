"""Use cases of the manifests part: file, replace and read manifests, record arrival, match them to
declarations (findings to the risk engine), list undeclared lines for follow-up, tune the rules.

Each function runs inside the caller's unit of work (one transaction per use case).
"""

from __future__ import annotations

import gc
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from smartcustoms.clearance.checks import Finding
from smartcustoms.clearance.lifecycle import MODE_WORDS, Lane
from smartcustoms.platform import audit
from smartcustoms.platform.auth import SYSTEM, Principal, Role
from smartcustoms.platform.db import bulk_insert, database_key
from smartcustoms.platform.errors import Conflict, Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.types import iso
from smartcustoms.singlewindow.manifests import chapters as chapter_index
from smartcustoms.singlewindow.manifests.model import (
    SOURCE,
    DeclaredGoods,
    Discrepancy,
    LineFacts,
    Manifest,
    ManifestError,
    MatchResult,
    PartyRef,
    Rules,
    line_json,
    manifest_json,
    match,
    parse_manifest,
    rules_from,
)
from smartcustoms.singlewindow.manifests.store import (
    DeclaredRefRow,
    DeclaredRow,
    LineRow,
    ManifestRow,
    ManifestVersionRow,
    RulesRow,
)

CHUNK = 500
FILERS = frozenset({Role.CARRIER, Role.ADMIN})


def now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# ---------------------------------------------------------------------------------------------- rules


RULES_TTL_S = 5.0
_rules_cache: dict[str, tuple[float, Rules]] = {}


def current_rules(session: Session, *, fresh: bool = False) -> Rules:
    """The matching rules in force. Every filing reads them, so they are kept for a few seconds per
    database (a change applies to filings from then on, at most `RULES_TTL_S` later in other processes)."""
    key = database_key(session)
    hit = _rules_cache.get(key)
    if hit is not None and not fresh and hit[0] > time.monotonic():
        return hit[1]
    row = session.scalar(select(RulesRow).order_by(RulesRow.version.desc()).limit(1))
    rules = Rules() if row is None else rules_from(row.value, row.version)
    _rules_cache[key] = (time.monotonic() + RULES_TTL_S, rules)
    return rules


def set_rules(session: Session, who: Principal, raw: dict[str, Any]) -> Rules:
    """Replace the matching rules (admin): validated whole, stored as a new version."""
    if who.role is not Role.ADMIN:
        raise Forbidden(Problem("forbidden_role", (), t("Only administrators change the manifest matching rules")))
    latest = session.scalar(select(func.max(RulesRow.version))) or 1  # the built-in defaults are v1
    rules = rules_from(raw, latest + 1)
    session.add(RulesRow(version=rules.version, value=rules.as_dict(), at=now(), actor=who.username))
    _rules_cache.pop(str(session.get_bind().engine.url), None)
    audit.record(session, who, "set_manifest_rules", "manifest_rules", rules.version, detail=rules.as_dict())
    return rules


# ---------------------------------------------------------------------------------------------- access


def _visible(who: Principal, row: ManifestRow) -> bool:
    return who.is_customs or (who.role is Role.CARRIER and who.party_id == row.carrier)


def _check_reader(who: Principal) -> None:
    if not who.is_customs and who.role is not Role.CARRIER:
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not read manifests", role=who.role.value)))


def get_row(session: Session, who: Principal, reference: str, *, for_update: bool = False) -> ManifestRow:
    """A manifest the caller may see; another carrier's manifest is reported as not found."""
    _check_reader(who)
    stmt = select(ManifestRow).where(ManifestRow.reference == reference)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None or not _visible(who, row):
        raise NotFound(Problem("unknown_manifest", ("reference",), t("No manifest {reference}", reference=reference)))
    return row


def _carrier_of(who: Principal, carrier: str | None) -> str:
    if who.role not in FILERS:
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not file manifests", role=who.role.value)))
    if who.role is Role.CARRIER:
        if carrier and carrier != who.party_id:
            raise Forbidden(
                Problem("not_your_party", ("carrier",), t("You file for carrier {carrier}", carrier=who.party_id))
            )
        return str(who.party_id)
    if not carrier:
        raise ManifestError(Problem("missing", ("carrier",), t("An administrator names the carrier filed for")))
    return carrier


# ---------------------------------------------------------------------------------------------- filing


def _new_reference(at: datetime) -> str:
    return f"MF{at:%Y%m%d}{secrets.token_hex(4).upper()}"


def _line_values(manifest_id: int, m: Manifest) -> list[dict[str, Any]]:
    found = chapter_index.chapters_of([line.description for line in m.lines])
    return [
        {
            "manifest_id": manifest_id,
            "line_no": line.line_no,
            "doc_type": line.doc_type,
            "doc_ref": line.doc_ref,
            "shipper_name": line.shipper.name,
            "shipper_id": line.shipper.id,
            "consignee_name": line.consignee.name,
            "consignee_id": line.consignee.id,
            "description": line.description,
            "packages": line.packages,
            "package_type": line.package_type,
            "gross_weight_kg": line.gross_weight_kg,
            "containers": [{"number": c.number, "seals": list(c.seals)} for c in line.containers],
            "chapters": [list(c) for c in chs],
            "declared": False,
            "declarations": [],
        }
        for line, chs in zip(m.lines, found, strict=True)
    ]


def _same_voyage(session: Session, carrier: str, m: Manifest, other_than: int | None = None) -> ManifestRow | None:
    stmt = select(ManifestRow).where(
        ManifestRow.carrier == carrier, ManifestRow.voyage == m.voyage, ManifestRow.port == m.port
    )
    row = session.scalar(stmt)
    return None if row is None or row.id == other_than else row


def file_manifest(
    session: Session, who: Principal, raw: Any, *, carrier: str | None = None, remote_addr: str | None = None
) -> tuple[ManifestRow, MatchSummary]:
    """File advance cargo information; lines are matched to the declarations already filed."""
    carrier_code = _carrier_of(who, carrier)
    m = parse_manifest(raw)
    if (existing := _same_voyage(session, carrier_code, m)) is not None:
        raise Conflict(
            Problem(
                "duplicate_manifest",
                ("voyage",),
                t(
                    "Carrier {carrier} already filed manifest {reference} for voyage {voyage} at {port}; "
                    "replace it instead (PUT /manifests/{reference})",
                    carrier=carrier_code,
                    reference=existing.reference,
                    voyage=m.voyage,
                    port=m.port,
                ),
            )
        )
    at = now()
    row = ManifestRow(
        reference=_new_reference(at),
        carrier=carrier_code,
        voyage=m.voyage,
        mode=m.mode,
        means_id=m.means_id,
        port=m.port,
        expected_arrival=m.expected_arrival,
        arrived_at=None,
        version=1,
        line_count=len(m.lines),
        filed_by=who.username,
        filed_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    session.execute(insert(_table(LineRow)), _line_values(row.id, m))
    session.add(
        ManifestVersionRow(
            manifest_id=row.id, version=1, at=at, actor=who.username, reason="original filing", payload=manifest_json(m)
        )
    )
    audit.record(
        session,
        who,
        "file_manifest",
        "manifest",
        row.reference,
        remote_addr=remote_addr,
        detail={"voyage": m.voyage, "port": m.port, "lines": len(m.lines)},
    )
    return row, rematch(session, row)


def replace_manifest(
    session: Session,
    who: Principal,
    reference: str,
    raw: Any,
    *,
    reason: str | None = None,
    remote_addr: str | None = None,
) -> tuple[ManifestRow, MatchSummary]:
    """Replace a manifest before arrival (the carrier's amendment); the previous version is kept."""
    if who.role not in FILERS:
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not amend manifests", role=who.role.value)))
    row = get_row(session, who, reference, for_update=True)
    if row.arrived_at is not None or _aware(row.expected_arrival) <= now():
        raise Conflict(
            Problem(
                "arrived",
                ("reference",),
                t(
                    "Manifest {reference} can no longer be replaced: the {mode_text} arrival at {port} is past",
                    reference=reference,
                    mode_text=MODE_WORDS.get(row.mode, row.mode),
                    port=row.port,
                ),
            )
        )
    m = parse_manifest(raw)
    if (clash := _same_voyage(session, row.carrier, m, other_than=row.id)) is not None:
        raise Conflict(
            Problem(
                "duplicate_manifest",
                ("voyage",),
                t(
                    "Voyage {voyage} at {port} is manifest {reference}",
                    voyage=m.voyage,
                    port=m.port,
                    reference=clash.reference,
                ),
            )
        )
    at = now()
    old_docs = set(session.scalars(select(LineRow.doc_ref).where(LineRow.manifest_id == row.id)))
    session.execute(delete(LineRow).where(LineRow.manifest_id == row.id))
    session.execute(insert(_table(LineRow)), _line_values(row.id, m))
    row.version += 1
    row.voyage, row.mode, row.means_id, row.port = m.voyage, m.mode, m.means_id, m.port
    row.expected_arrival, row.line_count, row.updated_at = m.expected_arrival, len(m.lines), at
    session.add(
        ManifestVersionRow(
            manifest_id=row.id, version=row.version, at=at, actor=who.username, reason=reason, payload=manifest_json(m)
        )
    )
    audit.record(
        session,
        who,
        "replace_manifest",
        "manifest",
        row.reference,
        remote_addr=remote_addr,
        note=reason,
        detail={"version": row.version, "lines": len(m.lines)},
    )
    summary = rematch(session, row)
    _refresh_matched(session, old_docs - {line.doc_ref for line in m.lines})
    return row, summary


def _refresh_matched(session: Session, dropped_docs: set[str]) -> None:
    """Declarations whose transport documents left a replaced manifest: still matched elsewhere?"""
    if not dropped_docs:
        return
    declared = declarations_for_docs(session, dropped_docs)
    if not declared:
        return
    docs_of = {ref: goods_from_facts(ref, d.facts).doc_refs for ref, d in declared.items()}
    present = {ln.doc_ref for ln in lines_for_docs(session, {x for docs in docs_of.values() for x in docs})}
    changes = [
        {"id": d.id, "matched": any(x in present for x in docs_of[ref])}
        for ref, d in declared.items()
        if d.matched != any(x in present for x in docs_of[ref])
    ]
    if changes:
        session.execute(update(DeclaredRow), changes)


def record_arrival(session: Session, who: Principal, reference: str, at: datetime | None = None) -> ManifestRow:
    """The means of transport arrived (carrier or officer): the manifest is closed to replacement."""
    if who.role not in (Role.CARRIER, Role.OFFICER, Role.ADMIN):
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not record arrivals", role=who.role.value)))
    row = get_row(session, who, reference, for_update=True)
    if row.arrived_at is not None:
        raise Conflict(
            Problem(
                "arrived",
                ("reference",),
                t("Arrival of {reference} was recorded at {at}", reference=reference, at=iso(row.arrived_at)),
            )
        )
    row.arrived_at = _aware(at) if at else now()
    row.updated_at = now()
    audit.record(session, who, "record_arrival", "manifest", row.reference, detail={"at": iso(row.arrived_at)})
    return row


# ---------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class MatchSummary:
    lines: int
    matched_lines: int
    declarations: int
    discrepancies: list[Discrepancy]
    raised: dict[str, int]
    """Declaration reference -> number of new findings raised on it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "matched_lines": self.matched_lines,
            "unmatched_lines": self.lines - self.matched_lines,
            "declarations": self.declarations,
            "discrepancies": [
                {"declaration": d.reference, "code": d.code, "message": d.message} for d in self.discrepancies
            ],
            "findings_raised": self.raised,
        }


_LINE_COLUMNS = (
    LineRow.id,
    LineRow.doc_ref,
    LineRow.consignee_name,
    LineRow.consignee_id,
    LineRow.description,
    LineRow.packages,
    LineRow.gross_weight_kg,
    LineRow.chapters,
)


def _line_facts(row: Any, manifest: str, voyage: str) -> LineFacts:
    """A line as the matcher sees it, from a Core row of `_LINE_COLUMNS` (no ORM bookkeeping: 10,000s of them)."""
    return LineFacts(
        key=row.id,
        manifest=manifest,
        voyage=voyage,
        doc_ref=row.doc_ref,
        consignee=PartyRef(row.consignee_name, row.consignee_id),
        description=row.description,
        packages=row.packages,
        gross_weight_kg=Decimal(row.gross_weight_kg),
        chapters=tuple((str(c), float(v)) for c, v in (row.chapters or [])),
    )


@dataclass(frozen=True)
class Indexed:
    """A declaration as indexed by this part (a plain record, read in bulk)."""

    id: int
    reference: str
    facts: dict[str, Any]
    raised: list[str]
    matched: bool


def goods_from_facts(reference: str, facts: dict[str, Any]) -> DeclaredGoods:
    return DeclaredGoods(
        reference=reference,
        doc_refs=tuple(facts["doc_refs"]),
        declaration_type=facts["declaration_type"],
        mode=facts["mode"],
        consignee=PartyRef(facts["consignee_name"], facts.get("consignee_id")),
        gross_weight_kg=Decimal(facts["gross_weight_kg"]),
        packages=facts.get("packages"),
        chapters=frozenset(facts.get("chapters") or ()),
        manifest_ref=facts.get("manifest_ref"),
        arrival_date=date.fromisoformat(facts["arrival_date"]) if facts.get("arrival_date") else None,
    )


def facts_of(g: DeclaredGoods) -> dict[str, Any]:
    return {
        "doc_refs": list(g.doc_refs),
        "declaration_type": g.declaration_type,
        "mode": g.mode,
        "consignee_name": g.consignee.name,
        "consignee_id": g.consignee.id,
        "gross_weight_kg": str(g.gross_weight_kg),
        "packages": g.packages,
        "chapters": sorted(g.chapters),
        "manifest_ref": g.manifest_ref,
        "arrival_date": g.arrival_date.isoformat() if g.arrival_date else None,
    }


def lines_for_docs(session: Session, doc_refs: Iterable[str]) -> list[LineFacts]:
    """Stored manifest lines carrying any of these transport document references."""
    refs = sorted({r.upper() for r in doc_refs})
    out: list[LineFacts] = []
    if len(refs) == 1:  # most filings name one transport document: a plain bound statement, no IN-list expansion
        for row in session.connection().execute(_LINES_BY_ONE_DOC, {"doc": refs[0]}):
            out.append(_line_facts(row, row.reference, row.voyage))
        return out
    for chunk in _chunks(refs):
        for row in session.connection().execute(_LINES_BY_DOC, {"docs": list(chunk)}):
            out.append(_line_facts(row, row.reference, row.voyage))
    return out


_LINES_BY_DOC = (
    select(*_LINE_COLUMNS, ManifestRow.reference, ManifestRow.voyage)
    .join(ManifestRow, LineRow.manifest_id == ManifestRow.id)
    .where(LineRow.doc_ref.in_(bindparam("docs", expanding=True)))
)
"""Built once: this runs on every declaration filed (statement construction was most of its cost)."""

_LINES_BY_ONE_DOC = (
    select(*_LINE_COLUMNS, ManifestRow.reference, ManifestRow.voyage)
    .join(ManifestRow, LineRow.manifest_id == ManifestRow.id)
    .where(LineRow.doc_ref == bindparam("doc"))
)


def declarations_for_docs(session: Session, doc_refs: Iterable[str]) -> dict[str, Indexed]:
    """The indexed declarations that name any of these transport documents."""
    refs = sorted({r.upper() for r in doc_refs})
    out: dict[str, Indexed] = {}
    columns = (DeclaredRow.id, DeclaredRow.reference, DeclaredRow.facts, DeclaredRow.raised, DeclaredRow.matched)
    for chunk in _chunks(refs):
        named = select(DeclaredRefRow.reference).where(DeclaredRefRow.doc_ref.in_(chunk))
        for row in session.execute(select(*columns).where(DeclaredRow.reference.in_(named))):
            out[row.reference] = Indexed(row.id, row.reference, row.facts, list(row.raised or []), bool(row.matched))
    return out


def _declarations_on(session: Session, manifest_id: int) -> dict[str, Indexed]:
    """The indexed declarations naming any transport document of this manifest (one query)."""
    named = (
        select(DeclaredRefRow.reference)
        .join(LineRow, LineRow.doc_ref == DeclaredRefRow.doc_ref)
        .where(LineRow.manifest_id == manifest_id)
    )
    stmt = select(
        DeclaredRow.id, DeclaredRow.reference, DeclaredRow.facts, DeclaredRow.raised, DeclaredRow.matched
    ).where(DeclaredRow.reference.in_(named))
    return {
        row.reference: Indexed(row.id, row.reference, row.facts, list(row.raised or []), bool(row.matched))
        for row in session.execute(stmt)
    }


@contextmanager
def paused_gc() -> Iterator[None]:
    """Matching builds tens of thousands of small objects at once; the cyclic collector's passes over the
    growing heap cost ~40 % of a 10,000-line match and free nothing (no cycles are made), so it waits."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def to_finding(d: Discrepancy, rules: Rules) -> Finding:
    lane = rules.lanes.get(d.code)
    return Finding(
        source=SOURCE,
        code=d.code,
        message=d.message,
        path=d.path,
        lane=Lane(lane) if lane else None,
        hold=d.code in rules.hold,
        score=float(rules.scores.get(d.code, 0.5)),
        version=rules.label,
        detail={**dict(d.detail), "key": d.key},
    )


def rematch(session: Session, manifest: ManifestRow, *, who: Principal = SYSTEM) -> MatchSummary:
    """Match a manifest's lines to the declarations filed so far and raise new discrepancies as findings.

    Declarations filed before the manifest were checked without it; what the manifest now shows about them
    reaches the risk engine through `clearance.service.raise_findings` (each discrepancy once).
    """
    rules = current_rules(session)
    own_stmt = select(*_LINE_COLUMNS, LineRow.declared, LineRow.declarations).where(LineRow.manifest_id == manifest.id)
    with paused_gc():
        own = list(session.execute(own_stmt))
        own_docs = {ln.doc_ref for ln in own}
        declared = _declarations_on(session, manifest.id)
        goods = [goods_from_facts(ref, d.facts) for ref, d in declared.items()]
        lines = [_line_facts(ln, manifest.reference, manifest.voyage) for ln in own]
        other_docs = {r for g in goods for r in g.doc_refs} - own_docs
        if other_docs:
            lines += [ln for ln in lines_for_docs(session, other_docs) if ln.manifest != manifest.reference]
        result = match(lines, goods, rules)
    return _store_match(session, manifest, rules, own, declared, result, who)


def _store_match(
    session: Session,
    manifest: ManifestRow,
    rules: Rules,
    own: list[Any],
    declared: dict[str, Indexed],
    result: MatchResult,
    who: Principal,
) -> MatchSummary:
    from smartcustoms.clearance.service import raise_findings

    values = []
    for ln in own:
        covering = result.declarations_of.get(ln.id, [])
        if ln.declared != bool(covering) or (ln.declarations or []) != covering:
            values.append({"id": ln.id, "declared": bool(covering), "declarations": covering})
    if values:
        session.execute(update(LineRow), values)
    raised: dict[str, int] = {}
    by_decl: dict[str, list[Discrepancy]] = {}
    for disc in result.discrepancies:
        by_decl.setdefault(disc.reference, []).append(disc)
    changes: list[dict[str, Any]] = []
    for ref, d in declared.items():
        matched = bool(result.lines_of.get(ref))
        done = set(d.raised)
        new = [x for x in by_decl.get(ref, []) if x.key not in done]
        if new:
            raise_findings(
                session,
                ref,
                [to_finding(x, rules) for x in new],
                who=who,
                note=t(
                    "Manifest {reference} (voyage {voyage}): {messages}",
                    reference=manifest.reference,
                    voyage=manifest.voyage,
                    messages="; ".join(x.message for x in new),
                ),
            )
            raised[ref] = len(new)
        if new or matched != d.matched:
            changes.append({"id": d.id, "matched": matched, "raised": [*d.raised, *(x.key for x in new)]})
    if changes:
        session.execute(update(DeclaredRow), changes)
    matched_lines = sum(1 for ln in own if result.declarations_of.get(ln.id))
    return MatchSummary(len(own), matched_lines, len(declared), result.discrepancies, raised)


def flag_missing(session: Session, who: Principal = SYSTEM, on: date | None = None) -> list[str]:
    """Sea and air imports filed before arrival whose arrival is now past without a manifest line."""
    from smartcustoms.clearance.service import raise_findings

    if who is not SYSTEM and who.role not in (Role.OFFICER, Role.ADMIN):
        raise Forbidden(Problem("forbidden_role", (), t("Only customs officers run the missing-manifest sweep")))
    rules = current_rules(session)
    day = on or now().date()
    cutoff = day - timedelta(days=rules.missing_grace_days)
    stmt = select(DeclaredRow).where(
        DeclaredRow.needs_manifest.is_(True),
        DeclaredRow.matched.is_(False),
        DeclaredRow.arrival_date.is_not(None),
        DeclaredRow.arrival_date <= cutoff,
    )
    flagged: list[str] = []
    for row in session.scalars(stmt):
        g = goods_from_facts(row.reference, row.facts)
        if lines_for_docs(session, g.doc_refs):
            row.matched = True
            continue
        result = match([], [g], rules, on=day)
        new = [d for d in result.discrepancies if d.key not in set(row.raised or [])]
        if new:
            raise_findings(session, row.reference, [to_finding(d, rules) for d in new], who=who)
            row.raised = [*(row.raised or []), *(d.key for d in new)]
            flagged.append(row.reference)
    return flagged


# ---------------------------------------------------------------------------------------------- lifecycle


def index_declarations(session: Session, stored: Sequence[tuple[str, int, DeclaredGoods, list[str]]]) -> None:
    """Record (reference, version, matcher's view, already-raised keys) of new or amended declarations
    and mark the manifest lines they cover."""
    if not stored:
        return
    old_docs: dict[str, set[str]] = {}
    old_raised: dict[str, list[str]] = {}
    amended = [s[0] for s in stored if s[1] > 1]  # a first version has nothing indexed yet
    for chunk in _chunks(amended):
        for ref, keys in session.execute(
            select(DeclaredRow.reference, DeclaredRow.raised).where(DeclaredRow.reference.in_(chunk))
        ):
            old_raised[ref] = list(keys or [])
        for ref, doc in session.execute(
            select(DeclaredRefRow.reference, DeclaredRefRow.doc_ref).where(DeclaredRefRow.reference.in_(chunk))
        ):
            old_docs.setdefault(ref, set()).add(doc)
        session.execute(delete(DeclaredRefRow).where(DeclaredRefRow.reference.in_(chunk)))
        session.execute(delete(DeclaredRow).where(DeclaredRow.reference.in_(chunk)))
    rows: list[dict[str, Any]] = []
    ref_rows: list[dict[str, Any]] = []
    docs_of: dict[str, set[str]] = {}
    today = now().date()  # no declared arrival: judged from the filing day
    for reference, version, g, raised in stored:
        docs_of[reference] = set(g.doc_refs)
        rows.append(
            {
                "reference": reference,
                "version": version,
                "needs_manifest": g.needs_manifest,
                "arrival_date": g.arrival_date or today,
                "facts": facts_of(g),
                "matched": False,
                "raised": list(dict.fromkeys([*old_raised.get(reference, []), *raised])),
            }
        )
        ref_rows.extend({"reference": reference, "doc_ref": d} for d in g.doc_refs)
    bulk_insert(session, _table(DeclaredRow), rows)
    if ref_rows:
        bulk_insert(session, _table(DeclaredRefRow), ref_rows)
    touched = {d for s in docs_of.values() for d in s} | {d for s in old_docs.values() for d in s}
    lines: list[Any] = []
    for chunk in _chunks(sorted(touched)):
        lines.extend(session.connection().execute(_LINE_COVER, {"docs": list(chunk)}))
    refs_by_doc: dict[str, list[str]] = {}  # inverted once: a group of 1,000 filings may meet ~1,000 lines
    for r, docs in docs_of.items():
        for d in docs:
            refs_by_doc.setdefault(d, []).append(r)
    matched_refs: set[str] = set()
    changes = []
    for line in lines:
        covering = [r for r in line.declarations or [] if r not in docs_of]
        covering += refs_by_doc.get(line.doc_ref, [])
        if covering != (line.declarations or []):
            changes.append({"id": line.id, "declarations": covering, "declared": bool(covering)})
        matched_refs.update(r for r in covering if r in docs_of)
    if changes:
        session.execute(update(LineRow), changes)
    if matched_refs:
        for chunk in _chunks(sorted(matched_refs)):
            session.execute(update(DeclaredRow).where(DeclaredRow.reference.in_(chunk)).values(matched=True))


_LINE_COVER = select(LineRow.id, LineRow.doc_ref, LineRow.declarations).where(
    LineRow.doc_ref.in_(bindparam("docs", expanding=True))
)


def forget_declaration(session: Session, reference: str) -> None:
    """A rejected declaration no longer covers its manifest lines: they go back to the follow-up list."""
    docs = list(session.scalars(select(DeclaredRefRow.doc_ref).where(DeclaredRefRow.reference == reference)))
    session.execute(delete(DeclaredRefRow).where(DeclaredRefRow.reference == reference))
    session.execute(delete(DeclaredRow).where(DeclaredRow.reference == reference))
    if not docs:
        return
    changes = []
    for line in session.execute(select(LineRow.id, LineRow.declarations).where(LineRow.doc_ref.in_(docs))):
        covering = [r for r in line.declarations or [] if r != reference]
        if covering != (line.declarations or []):
            changes.append({"id": line.id, "declarations": covering, "declared": bool(covering)})
    if changes:
        session.execute(update(LineRow), changes)


def containers_for_docs(session: Session, doc_refs: Iterable[str]) -> list[str]:
    """Container numbers the manifests carry for these transport documents (for the document cross-check)."""
    refs = sorted({r.upper() for r in doc_refs})
    found: set[str] = set()
    for chunk in _chunks(refs):
        for containers in session.scalars(select(LineRow.containers).where(LineRow.doc_ref.in_(chunk))):
            found.update(str(c["number"]) for c in containers or [])
    return sorted(found)


# ---------------------------------------------------------------------------------------------- reading


def manifest_view(row: ManifestRow, *, lines: Sequence[LineRow] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reference": row.reference,
        "carrier": row.carrier,
        "voyage": row.voyage,
        "mode": row.mode,
        "means_id": row.means_id,
        "port": row.port,
        "expected_arrival": iso(row.expected_arrival),
        "arrived_at": iso(row.arrived_at),
        "version": row.version,
        "lines_count": row.line_count,
        "filed_by": row.filed_by,
        "filed_at": iso(row.filed_at),
        "late": _aware(row.filed_at) > _aware(row.expected_arrival),
        "links": {"self": f"/manifests/{row.reference}"},
    }
    if lines is not None:
        out["lines"] = [line_view(ln) for ln in lines]
        out["unmatched_lines"] = sum(1 for ln in lines if not ln.declared)
    return out


def line_view(ln: LineRow) -> dict[str, Any]:
    from smartcustoms.singlewindow.manifests.model import Container, ManifestLine

    body = line_json(
        ManifestLine(
            ln.line_no,
            ln.doc_type,
            ln.doc_ref,
            PartyRef(ln.shipper_name, ln.shipper_id),
            PartyRef(ln.consignee_name, ln.consignee_id),
            ln.description,
            ln.packages,
            Decimal(ln.gross_weight_kg),
            ln.package_type,
            tuple(Container(c["number"], tuple(c.get("seals") or ())) for c in ln.containers or []),
        )
    )
    body["declared"] = ln.declared
    body["declarations"] = list(ln.declarations or [])
    body["hs_chapters"] = [c for c, _ in (ln.chapters or [])[:3]]
    return body


def read_manifest(session: Session, who: Principal, reference: str) -> tuple[ManifestRow, list[LineRow]]:
    row = get_row(session, who, reference)
    lines = list(session.scalars(select(LineRow).where(LineRow.manifest_id == row.id).order_by(LineRow.line_no)))
    return row, lines


def versions(session: Session, who: Principal, reference: str) -> list[ManifestVersionRow]:
    row = get_row(session, who, reference)
    stmt = (
        select(ManifestVersionRow).where(ManifestVersionRow.manifest_id == row.id).order_by(ManifestVersionRow.version)
    )
    return list(session.scalars(stmt))


def list_manifests(
    session: Session, who: Principal, *, port: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[tuple[ManifestRow, int]], int]:
    """Manifests the caller may see, newest arrival first, each with its count of undeclared lines."""
    _check_reader(who)
    stmt = select(ManifestRow)
    count = select(func.count()).select_from(ManifestRow)
    if not who.is_customs:
        stmt = stmt.where(ManifestRow.carrier == who.party_id)
        count = count.where(ManifestRow.carrier == who.party_id)
    if port:
        stmt = stmt.where(ManifestRow.port == port.upper())
        count = count.where(ManifestRow.port == port.upper())
    rows = list(
        session.scalars(
            stmt.order_by(ManifestRow.expected_arrival.desc(), ManifestRow.id.desc()).limit(limit).offset(offset)
        )
    )
    unmatched: dict[int, int] = {}
    ids = [r.id for r in rows]
    if ids:
        q = (
            select(LineRow.manifest_id, func.count())
            .where(LineRow.manifest_id.in_(ids), LineRow.declared.is_(False))
            .group_by(LineRow.manifest_id)
        )
        unmatched = {mid: int(n) for mid, n in session.execute(q)}
    return [(r, unmatched.get(r.id, 0)) for r in rows], int(session.scalar(count) or 0)


def follow_up(
    session: Session, who: Principal, *, days: int | None = None, at: datetime | None = None, limit: int = 1000
) -> list[tuple[ManifestRow, LineRow, int]]:
    """Manifest lines still not covered by a declaration `days` (default: the rules' follow-up days) after
    arrival (recorded, else expected), oldest first, with the days since arrival."""
    _check_reader(who)
    if days is not None and not 0 <= days <= 365:
        raise ManifestError(Problem("bad_days", ("days",), t("days must be between 0 and 365")))
    wait = days if days is not None else current_rules(session).follow_up_days
    moment = at or now()
    cutoff = moment - timedelta(days=wait)
    arrival = func.coalesce(ManifestRow.arrived_at, ManifestRow.expected_arrival)
    stmt = (
        select(ManifestRow, LineRow)
        .join(LineRow, LineRow.manifest_id == ManifestRow.id)
        .where(LineRow.declared.is_(False), arrival <= cutoff)
        .order_by(arrival, ManifestRow.id, LineRow.line_no)
        .limit(limit)
    )
    if not who.is_customs:
        stmt = stmt.where(ManifestRow.carrier == who.party_id)
    out = []
    for m, ln in session.execute(stmt):
        arrived = _aware(m.arrived_at or m.expected_arrival)
        out.append((m, ln, (moment - arrived).days))
    return out


def lines_of_declaration(session: Session, reference: str) -> list[tuple[ManifestRow, LineRow]]:
    """Manifest lines that cover a declaration (for its page)."""
    docs = list(session.scalars(select(DeclaredRefRow.doc_ref).where(DeclaredRefRow.reference == reference)))
    if not docs:
        return []
    stmt = (
        select(ManifestRow, LineRow)
        .join(LineRow, LineRow.manifest_id == ManifestRow.id)
        .where(LineRow.doc_ref.in_(docs))
        .order_by(ManifestRow.expected_arrival, LineRow.line_no)
    )
    return [(m, ln) for m, ln in session.execute(stmt)]
