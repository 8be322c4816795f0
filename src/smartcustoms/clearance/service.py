"""Clearance use cases: one function per thing a user does, each inside the caller's unit of work."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Table, and_, delete, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartcustoms.clearance import checks, config, risk_plugin
from smartcustoms.clearance.assessment import Assessment, assess
from smartcustoms.clearance.checks import CheckContext, Finding, Stored
from smartcustoms.clearance.lanes import (
    LANE_ORDER,
    CombinedAssessor,
    DeclarationFacts,
    ItemFacts,
    LaneAssessor,
    LaneDecision,
    RuleBasedAssessor,
)
from smartcustoms.clearance.lifecycle import (
    ACTION_WORDS,
    OFFICER_ACTIONS,
    REASON_REQUIRED,
    STATUS_WORDS,
    Action,
    Lane,
    Status,
    next_status,
)
from smartcustoms.clearance.lifecycle import (
    FINAL as FINAL_STATUSES,
)
from smartcustoms.clearance.schema import DecisionIn, DeclarationIn, InspectionIn
from smartcustoms.clearance.store import (
    AeoRow,
    DeclarationRow,
    EventRow,
    FxRateRow,
    InspectionRow,
    ItemRow,
    VersionRow,
)
from smartcustoms.clearance.validation import normalise_code, validate
from smartcustoms.platform import audit
from smartcustoms.platform.auth import SYSTEM, Principal, Role
from smartcustoms.platform.db import Base, bulk_insert
from smartcustoms.platform.errors import Conflict, DomainError, Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.types import iso

FILERS = frozenset({Role.TRADER, Role.BROKER, Role.ADMIN})


_clock: ContextVar[datetime | None] = ContextVar("clearance_clock", default=None)


def now() -> datetime:
    """Current time, or the time set by `backdated` when historical records are loaded."""
    return _clock.get() or datetime.now(UTC)


@contextmanager
def backdated(at: datetime) -> Iterator[None]:
    """Record the enclosed actions at `at` (loading history from a legacy system, demo data)."""
    token = _clock.set(at)
    try:
        yield
    finally:
        _clock.reset(token)


_SORTABLE_BASE32 = "234567ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Base32's 32 characters in ASCII order, so a reference's characters sort as the numbers they encode."""
_MS_DIGITS = 7  # 35 bits: the milliseconds of a leap year (3.16e10) fit in 2**35 (3.44e10)
_RANDOM_DIGITS = 7  # 35 random bits per reference


def _base32(value: int, digits: int) -> str:
    out = []
    for _ in range(digits):
        out.append(_SORTABLE_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_references(at: datetime, count: int, country: str = "TW") -> list[str]:
    """`count` distinct 18-character movement reference numbers (MRN-like): year, country, the millisecond
    of the year and 35 random bits, in base32 characters that sort as they count.

    References ascend with filing time, as customs MRNs do, so each filing's rows go to the end of the
    indexes keyed by reference (declarations, audit, manifests) instead of a random page of each: over 30,000
    filings in groups of 500 they wrote 3.1 pages and read 0.8 per filing, where fully random references wrote
    7.3 and read 4.5, rising as the database grew (bench/clearance_pages.py). Two references collide only
    within one millisecond, with odds of one in 2**35 per pair (about the odds of fully random references
    at a year's volume); the unique index refuses a collision and the filing is stored again.
    """
    year_start = at.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    prefix = f"{at:%y}{country}" + _base32((at - year_start) // timedelta(milliseconds=1), _MS_DIGITS)
    refs: dict[str, None] = {}  # distinct, in the order drawn
    while len(refs) < count:
        noise = secrets.token_bytes(5 * (count - len(refs)))
        refs.update(
            (prefix + _base32(int.from_bytes(noise[i : i + 5]) >> 5, _RANDOM_DIGITS), None)
            for i in range(0, len(noise), 5)
        )
    return list(refs)


_to_json = DeclarationIn.__pydantic_serializer__.to_json


def payload_json(decl: DeclarationIn) -> bytes:
    """The filing as JSON text, its fields in the model's order: stored as the declaration's payload and
    fingerprinted as it is, in one pass of pydantic's serializer (a dump to Python objects, then a sorted
    dump to hash and a third to store cost twice as much on every filing)."""
    return cast(bytes, _to_json(decl))


def payload_hash(decl: DeclarationIn | bytes) -> str:
    """Fingerprint of a filing's content, to tell an idempotent resubmission from a conflicting one.

    The model fixes the order of every field (it has no free-form mappings), so the same content always
    gives the same text."""
    return hashlib.sha256(decl if isinstance(decl, bytes) else payload_json(decl)).hexdigest()


def legacy_payload_hash(decl: DeclarationIn) -> str:
    """The fingerprint stored before 2026-11-23 (of the JSON objects with sorted keys), still matched so a
    resubmission of a declaration filed then is recognised as the same filing."""
    return hashlib.sha256(orjson.dumps(decl.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


# ---------------------------------------------------------------------------------------------- look-ups


_FX_TTL_S = 30.0
_fx_cache: dict[tuple[str, date], tuple[float, Decimal | None]] = {}


def fx_lookup(session: Session) -> Callable[[str, date], Decimal | None]:
    """Exchange rate of the day: the newest rate whose validity starts on or before the date."""

    def lookup(currency: str, on: date) -> Decimal | None:
        key = (currency, on)
        hit = _fx_cache.get(key)
        t = time.monotonic()
        if hit and hit[0] > t:
            return hit[1]
        rate = session.scalar(
            select(FxRateRow.rate)
            .where(FxRateRow.currency == currency, FxRateRow.valid_from <= on)
            .order_by(FxRateRow.valid_from.desc())
            .limit(1)
        )
        _fx_cache[key] = (t + _FX_TTL_S, rate)
        return rate

    return lookup


def load_fx_rates(session: Session, who: Principal, rows: Sequence[tuple[str, date, Decimal]], source: str) -> int:
    """Load exchange rates (national currency per unit); a rate for an existing day replaces it."""
    problems: list[Problem] = []
    from smartcustoms.clearance.refdata import currencies

    for i, (cur, _day, rate) in enumerate(rows):
        if cur not in currencies():
            problems.append(
                Problem("unknown_currency", (i, "currency"), t("'{currency}' is not an ISO 4217 code", currency=cur))
            )
        if rate <= 0:
            problems.append(Problem("not_positive", (i, "rate"), t("An exchange rate must be greater than zero")))
    if problems:
        raise DomainError(problems)
    for cur, day, rate in rows:
        row = session.scalar(select(FxRateRow).where(FxRateRow.currency == cur, FxRateRow.valid_from == day))
        if row is None:
            session.add(FxRateRow(currency=cur, valid_from=day, rate=rate, source=source))
        else:
            row.rate, row.source = rate, source
    audit.record(session, who, "load_fx_rates", "fx_rate", source, detail={"count": len(rows)})
    _fx_cache.clear()
    return len(rows)


_aeo_cache: tuple[float, dict[str, tuple[date, date | None]]] = (0.0, {})


def is_aeo(session: Session, party_id: str, on: date) -> bool:
    """Whether the party holds AEO status on `on` (the small AEO register is cached for a few seconds)."""
    global _aeo_cache
    expires, register = _aeo_cache
    if expires < time.monotonic():
        register = {r.party_id: (r.valid_from, r.valid_to) for r in session.scalars(select(AeoRow))}
        _aeo_cache = (time.monotonic() + 5.0, register)
    span = register.get(party_id)
    return span is not None and span[0] <= on and (span[1] is None or span[1] >= on)


def set_aeo(
    session: Session, who: Principal, party_id: str, level: str, valid_from: date, valid_to: date | None
) -> None:
    row = session.get(AeoRow, party_id)
    if row is None:
        session.add(AeoRow(party_id=party_id, level=level, valid_from=valid_from, valid_to=valid_to))
    else:
        row.level, row.valid_from, row.valid_to = level, valid_from, valid_to
    audit.record(session, who, "set_aeo", "party", party_id, detail={"level": level})
    forget_caches()


def forget_caches() -> None:
    """Drop cached exchange rates and AEO register (after they change, and between tests)."""
    global _aeo_cache
    _aeo_cache = (0.0, {})
    _fx_cache.clear()


def tariff_index(on: date, session: Session | None = None) -> Any:
    """The in-memory index of the configured tariff schedule valid on `on`."""
    from smartcustoms.tariff.service import get_index

    return get_index(None, on, session=session)


def lane_assessor(session: Session) -> LaneAssessor:
    """The shipped rule-based assessor, combined with the risk engine's active model when there is one."""
    assessors: list[LaneAssessor] = [RuleBasedAssessor(config.get(session, "lane_rules"))]
    model = risk_plugin.active_assessor()
    if model is not None:
        assessors.append(model)
    return CombinedAssessor(assessors)


def verified_origin(fta: str, proof_ref: str | None) -> str | None:
    """None when a partner's certificate of origin for `proof_ref` verifies now (integrity, status, issuer
    identity) and names `fta`; otherwise the reason the preference cannot be granted."""
    if not proof_ref:
        return t("no proof-of-origin reference given")
    from smartcustoms.documents.exchange import certificate_for_declaration

    found = certificate_for_declaration(proof_ref)
    if found is None:
        return t("no verified certificate of origin {proof} received from a partner", proof=proof_ref)
    if found.get("fta") and str(found["fta"]).upper() != fta.upper():
        return t("certificate {proof} is for {found}, not {fta}", proof=proof_ref, found=found["fta"], fta=fta)
    return None


# ---------------------------------------------------------------------------------------------- access


def _party_filter(who: Principal) -> Any:
    """SQL condition restricting a non-customs caller to declarations they filed or are party to."""
    party = who.party_id or "\x00"
    return or_(
        DeclarationRow.declarant_id == party,
        DeclarationRow.importer_id == party,
        DeclarationRow.exporter_id == party,
        DeclarationRow.broker_id == party,
    )


def _visible(who: Principal, row: DeclarationRow) -> bool:
    if who.is_customs:
        return True
    if who.role in (Role.TRADER, Role.BROKER) and who.party_id:
        return who.party_id in (row.declarant_id, row.importer_id, row.exporter_id, row.broker_id)
    return False


def get_row(session: Session, who: Principal, reference: str, *, for_update: bool = False) -> DeclarationRow:
    """Fetch a declaration the caller may see; another party's declaration is reported as not found."""
    stmt = select(DeclarationRow).where(DeclarationRow.reference == reference)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None or not _visible(who, row):
        raise NotFound(
            Problem("unknown_declaration", ("reference",), t("No declaration {reference}", reference=reference))
        )
    return row


# ---------------------------------------------------------------------------------------------- submission


@dataclass(slots=True)
class Prepared:
    """A declaration validated, assessed and given its lane, ready to be stored.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    decl: DeclarationIn
    payload_json: bytes
    digest: str
    assessment: Assessment
    decision: LaneDecision
    on: date
    findings: tuple[Finding, ...] = ()
    derived: dict[str, Any] = field(default_factory=dict)
    """What checks derived from the filing, for the lifecycle hooks that store it (`checks.Stored.derived`)."""

    @property
    def hold(self) -> str | None:
        return checks.hold_reason(self.findings)

    @property
    def payload(self) -> dict[str, Any]:
        """The filing as JSON objects (what views and the stored row read)."""
        return cast(dict[str, Any], orjson.loads(self.payload_json))


def check_filer(who: Principal, decl: DeclarationIn) -> None:
    if who.role not in FILERS:
        raise Forbidden(Problem("forbidden_role", (), t("Role {role} may not file declarations", role=who.role.value)))
    if who.role is Role.TRADER and who.party_id not in (decl.declarant.id, decl.importer.id, decl.exporter.id):
        raise Forbidden(
            Problem(
                "not_your_party",
                ("declarant", "id"),
                t("You act for {party}; it must be the declarant, importer or exporter", party=who.party_id),
            )
        )
    if who.role is Role.BROKER and who.party_id not in (decl.declarant.id, decl.broker.id if decl.broker else None):
        raise Forbidden(
            Problem(
                "not_your_party",
                ("declarant", "id"),
                t("You act for {party}; it must be the declarant or broker", party=who.party_id),
            )
        )


class Context:
    """Look-ups one submission or one batch needs, fetched once: schedule index, rules, rates, assessor."""

    def __init__(self, session: Session, on: date, who: Principal = SYSTEM) -> None:
        self.session = session
        self.on = on
        self.who = who
        self.cache: dict[str, Any] = {}
        self.index = tariff_index(on, session)
        self.limits = config.get(session, "limits")
        self.tax_rules = config.get(session, "tax_rules")
        self.fx = fx_lookup(session)
        self.assessor = lane_assessor(session)
        self._aeo: dict[str, bool] = {}

    def aeo(self, party_id: str) -> bool:
        if party_id not in self._aeo:
            self._aeo[party_id] = is_aeo(self.session, party_id, self.on)
        return self._aeo[party_id]


def prepare(
    session: Session,
    decl: DeclarationIn,
    on: date,
    key: str,
    ctx: Context | None = None,
    *,
    who: Principal = SYSTEM,
    reference: str | None = None,
    body: bytes | None = None,
    digest: str | None = None,
) -> Prepared:
    """Validate, assess duty and tax, run the other slices' checks, and choose the lane; raises with
    every problem at once.

    `body` and `digest` are the filing's `payload_json` and `payload_hash`, when the caller has them
    (idempotency check).
    """
    ctx = ctx or Context(session, on, who)
    problems, lines = validate(decl, ctx.index, on, limits=ctx.limits)
    if problems:
        raise DomainError(problems)
    assessment = assess(
        decl, lines, ctx.fx, ctx.tax_rules, on, schedule=_schedule_label(ctx.index), origin_check=verified_origin
    )
    facts = DeclarationFacts(
        key=key,
        declaration_type=decl.type.value,
        office=decl.customs_office,
        declarant_id=decl.declarant.id,
        importer_id=decl.importer.id,
        seller_id=decl.seller.id if decl.seller else decl.exporter.id,
        transport_mode=decl.transport.mode.value,
        country_of_dispatch=decl.country_of_dispatch,
        customs_value=assessment.customs_value,
        aeo=ctx.aeo(decl.importer.id),
        items=tuple(
            ItemFacts(
                i.line_no,
                normalise_code(i.tariff_code),
                i.origin_country,
                i.net_mass_kg,
                a.customs_value,
                i.description,
            )
            for i, a in zip(decl.items, assessment.items, strict=True)
        ),
    )
    derived: dict[str, Any] = {}
    findings = checks.run_checks(CheckContext(session, ctx.who, on, ctx.cache, reference, derived), decl, facts)
    if findings:
        facts = replace(facts, extra={**facts.extra, "findings": findings})
    decision = checks.fold(ctx.assessor.assess(facts), findings)
    body = body if body is not None else payload_json(decl)
    digest = digest if digest is not None else payload_hash(body)
    return Prepared(decl, body, digest, assessment, decision, on, findings, derived)


def _schedule_label(index: Any) -> str:
    header = getattr(index, "schedule", None)
    if header is None:
        return ""
    return f"{getattr(header, 'id', getattr(header, 'name', ''))}@{getattr(header, 'version', '')}"


_LANE_ACTIONS = {Lane.C1: Action.ROUTE_C1, Lane.C2: Action.ROUTE_C2, Lane.C3: Action.ROUTE_C3}


def _lane_action(lane: Lane) -> Action:
    return _LANE_ACTIONS[lane]


def _event(
    decl_id: int,
    at: datetime,
    who: Principal,
    action: Action,
    frm: Status | None,
    to: Status,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "declaration_id": decl_id,
        "at": at,
        "actor": who.username,
        "role": who.role.value,
        "action": action.value,
        "from_status": frm.value if frm else None,
        "to_status": to.value,
        "note": note,
        "detail": detail,
    }


def _row_values(who: Principal, p: Prepared, at: datetime, reference: str) -> dict[str, Any]:
    decl, a, d = p.decl, p.assessment, p.decision
    lane_status = next_status(Status.ASSESSED, _lane_action(d.lane))
    status = next_status(lane_status, Action.HOLD) if p.hold else lane_status
    return {
        "reference": reference,
        "lrn": decl.lrn,
        "declarant_id": decl.declarant.id,
        "broker_id": decl.broker.id if decl.broker else None,
        "importer_id": decl.importer.id,
        "exporter_id": decl.exporter.id,
        "declaration_type": decl.type.value,
        "procedure": decl.procedure,
        "office": decl.customs_office,
        "status": status.value,
        "lane": d.lane.value,
        "version": 1,
        "currency": decl.currency,
        "customs_value": a.customs_value,
        "duty": a.duty,
        "vat": a.vat,
        "additional_duty": Decimal(0),
        "total": a.total,
        "risk_score": d.score,
        "submitted_at": at,
        "updated_at": at,
        "released_at": at if status is Status.RELEASED else None,
        "filed_by": who.username,
        "payload_hash": p.digest,
        "payload": orjson.Fragment(p.payload_json),  # stored as it is (the JSON type's serializer passes it on)
        "assessment": a.as_dict(),
        "lane_reasons": list(d.reasons),
        "lane_versions": list(d.versions),
        "findings": [f.as_dict() for f in p.findings],
    }


def _table(model: type[Base]) -> Table:
    """The Core table of a mapped class: bulk inserts skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


@dataclass(slots=True)
class Filing:
    """A prepared filing with who filed it and from where.

    Slots, not frozen: built for every filing, and a frozen dataclass's constructor costs ~4x a plain one's.
    """

    who: Principal
    prepared: Prepared
    remote_addr: str | None = None


@functools.cache
def _ids_by_reference_sql(size: int) -> str:
    return f"SELECT reference, id FROM clearance_declaration WHERE reference IN ({', '.join('?' * size)})"


def _ids_by_reference(connection: Connection, refs: list[str]) -> dict[str, int]:
    """SQLite: a group of filings reads back the ids its rows were given, as plain SQL (SQLAlchemy's expanding
    `IN` cost 7-10 us of Python per filing)."""
    ids: dict[str, int] = {}
    for start in range(0, len(refs), 500):
        part = refs[start : start + 500]
        found = connection.exec_driver_sql(_ids_by_reference_sql(len(part)), tuple(part))
        ids.update((ref, id_) for ref, id_ in found)
    return ids


_NEW_IDS_PG = (
    "SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence('clearance_declaration', 'id')::regclass AS seq) q,"
    " generate_series(1, %s)"
)


def _insert_declarations(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """Write a group's declaration rows; their ids, in order.

    PostgreSQL: the ids are drawn from the table's sequence first and the rows go in with them (reading them
    back by reference cost the ingest workers an array of every reference and the server a probe of the
    reference index per filing, ~2 % of a filing's CPU together). SQLite: written, then read back."""
    table = _table(DeclarationRow)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        ids = [id_ for (id_,) in connection.exec_driver_sql(_NEW_IDS_PG, (len(values),))]
        bulk_insert(session, table, [{"id": id_, **v} for id_, v in zip(ids, values, strict=True)])
        return ids
    bulk_insert(session, table, values)
    by_ref = _ids_by_reference(connection, [v["reference"] for v in values])
    return [by_ref[v["reference"]] for v in values]


def store_filings(session: Session, filings: Sequence[Filing]) -> list[tuple[int, dict[str, Any]]]:
    """Insert declarations with their items, timeline and audit entries: a few bulk statements for all.

    Returns (id, column values) per filing. The caller has checked that none is already stored.
    """
    if not filings:
        return []
    at = now()
    values = [
        _row_values(f.who, f.prepared, at, ref)
        for f, ref in zip(filings, new_references(at, len(filings)), strict=True)
    ]
    ids = _insert_declarations(session, values)
    items: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    for decl_id, v, f in zip(ids, values, filings, strict=True):
        p, who = f.prepared, f.who
        decl, a, d = p.decl, p.assessment, p.decision
        items.extend(_item_values(decl_id, decl, a))
        lane_status = next_status(Status.ASSESSED, _lane_action(d.lane))
        events += [
            _event(decl_id, at, who, Action.SUBMIT, Status.DRAFT, Status.SUBMITTED),
            _event(
                decl_id, at, SYSTEM, Action.ASSESS, Status.SUBMITTED, Status.ASSESSED, detail={"total": str(a.total)}
            ),
            _event(
                decl_id,
                at,
                SYSTEM,
                _lane_action(d.lane),
                Status.ASSESSED,
                lane_status,
                note="; ".join(d.reasons),
                detail={"lane": d.lane.value, "score": d.score, "versions": list(d.versions)},
            ),
        ]
        if p.hold:
            events.append(_event(decl_id, at, SYSTEM, Action.HOLD, lane_status, Status.HELD, note=p.hold))
        audits.append(
            audit.row(
                who,
                "submit_declaration",
                "declaration",
                v["reference"],
                remote_addr=f.remote_addr,
                detail={"lrn": decl.lrn, "lane": d.lane.value},
                at=at,
            )
        )
        rows.append((decl_id, v))
    bulk_insert(session, _table(ItemRow), items)
    bulk_insert(session, _table(EventRow), events)
    audit.record_many(session, audits)
    lifecycle_hooks = checks.hooks()
    if lifecycle_hooks:
        by_filer: dict[Principal, list[Stored]] = {}
        for (decl_id, v), f in zip(rows, filings, strict=True):
            by_filer.setdefault(f.who, []).append(
                Stored(
                    decl_id,
                    str(v["reference"]),
                    f.prepared.decl,
                    Status(v["status"]),
                    f.prepared.findings,
                    1,
                    f.prepared.derived,
                )
            )
        for hook in lifecycle_hooks:
            for filer, stored in by_filer.items():
                hook.stored(session, filer, stored)
    return rows


def stored_values(values: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """A row's column values from `store_filings` as a row read back would hold them (the payload as JSON
    objects rather than the text it was stored as)."""
    return {**values, "payload": prepared.payload}


def _item_values(decl_id: int, decl: DeclarationIn, a: Assessment) -> list[dict[str, Any]]:
    return [
        {
            "declaration_id": decl_id,
            "line_no": i.line_no,
            "tariff_code": code,
            "hs_chapter": code[:2],
            "origin": i.origin_country,
            "description": i.description,
            "value": i.value,
            "net_mass_kg": i.net_mass_kg,
            "duty": ia.duty,
        }
        for i, ia in zip(decl.items, a.items, strict=True)
        for code in (normalise_code(i.tariff_code),)
    ]


def existing_filing(session: Session, declarant: str, lrn: str) -> DeclarationRow | None:
    """The declaration filed with this LRN by this declarant, if any."""
    return known_filings(session, {(declarant, lrn)}).get((declarant, lrn))


def submit(
    session: Session, who: Principal, decl: DeclarationIn, *, remote_addr: str | None = None, on: date | None = None
) -> tuple[DeclarationRow, bool]:
    """File a declaration. Returns the stored declaration and whether it is new.

    The same LRN from the same declarant with the same content returns the first filing (idempotent);
    with different content it is refused as a duplicate.
    """
    check_filer(who, decl)
    body = payload_json(decl)
    digest = payload_hash(body)
    existing = existing_filing(session, decl.declarant.id, decl.lrn)
    if existing is not None:
        return same_or_conflict(existing, digest, decl), False
    day = on or now().date()
    prepared = prepare(session, decl, day, f"{decl.declarant.id}/{decl.lrn}", who=who, body=body, digest=digest)
    for attempt in range(3):
        try:
            with session.begin_nested():
                decl_id, values = store_filings(session, [Filing(who, prepared, remote_addr)])[0]
                return DeclarationRow(id=decl_id, **stored_values(values, prepared)), True
        except IntegrityError:
            existing = existing_filing(session, decl.declarant.id, decl.lrn)
            if existing is not None:
                return same_or_conflict(existing, digest, decl), False
            if attempt == 2:  # not the LRN and not a reference drawn again: a real fault
                raise
            # the savepoint is rolled back; a reference collision (see `new_references`) draws a new one
    raise AssertionError("unreachable")


def duplicate_lrn(lrn: str, reference: str) -> Conflict:
    """The refusal of a filing that reuses an LRN of this declarant with different content."""
    return Conflict(
        Problem(
            "duplicate_lrn",
            ("lrn",),
            t(
                "LRN {lrn} was already used by this declarant for declaration {reference} with different content",
                lrn=lrn,
                reference=reference,
            ),
        )
    )


def same_or_conflict(existing: DeclarationRow, digest: str, decl: DeclarationIn) -> DeclarationRow:
    """The stored filing when `decl` (fingerprinted `digest`) is the same content, else a conflict."""
    if existing.payload_hash != digest and existing.payload_hash != legacy_payload_hash(decl):
        raise duplicate_lrn(existing.lrn, existing.reference)
    return existing


@dataclass(frozen=True)
class BatchResult:
    accepted: list[str]
    duplicates: list[str]
    rejected: list[tuple[int, list[Problem]]]


@dataclass
class BatchPlan:
    """A batch validated, assessed and laned (reading only); `store_batch` writes it.

    Kept apart so that parallel ingest workers prepare outside the short write transaction.
    """

    ready: list[Prepared]
    positions: list[int]
    duplicates: list[str]
    rejected: list[tuple[int, list[Problem]]]


_KEY_BUCKETS = (1, 4, 16, 64, 200)
"""SQLite look-ups are padded to one of these sizes: a handful of statement texts, each prepared once,
instead of one text per group size."""

_FILINGS_BY_KEYS_PG = (
    "SELECT d.id, d.declarant_id, d.lrn"
    " FROM unnest(CAST(%s AS text[]), CAST(%s AS text[])) AS k(declarant_id, lrn)"
    " CROSS JOIN LATERAL (SELECT id, declarant_id, lrn FROM clearance_declaration"
    " WHERE declarant_id = k.declarant_id AND lrn = k.lrn LIMIT 1) AS d"
)
"""PostgreSQL: any number of (declarant, LRN) pairs in one statement of one text (so prepared once per
connection), each an exact probe of the unique index whatever the table's statistics: the `LIMIT 1` keeps the
planner from turning the lateral probe into a join, and the unique index makes it exact. Before, `(declarant_id,
lrn) IN (..)` was planned as a scan of every filing of the declarant while the table had no statistics
(1.5-2.7 ms a group after 1,800 filings), and a `UNION ALL` of one probe per pair cost a planning of every
branch each time (a quarter of the server's CPU in batch ingest)."""


@functools.cache
def _filings_by_key_sql(size: int) -> str:
    """SQLite: `size` (declarant, LRN) pairs; it searches the unique index for each combination of the
    two lists (the caller keeps only the pairs it asked for)."""
    marks = ", ".join("?" * size)
    return (
        f"SELECT id, declarant_id, lrn FROM clearance_declaration WHERE declarant_id IN ({marks}) AND lrn IN ({marks})"
    )


def _sqlite_filing_ids(connection: Connection, pairs: list[tuple[str, str]], keys: set[tuple[str, str]]) -> set[int]:
    hits: set[int] = set()
    top = _KEY_BUCKETS[-1]
    for start in range(0, len(pairs), top):
        chunk = pairs[start : start + top]
        size = next(b for b in _KEY_BUCKETS if b >= len(chunk))
        padded = chunk + [chunk[-1]] * (size - len(chunk))  # repeats change nothing: the result is a set
        sql = _filings_by_key_sql(size)
        for id_, declarant, lrn in connection.exec_driver_sql(
            sql, tuple([k[0] for k in padded] + [k[1] for k in padded])
        ):
            if (declarant, lrn) in keys:  # the lists' cross product may find pairs not asked for
                hits.add(id_)
    return hits


def known_filings(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], DeclarationRow]:
    """Declarations already filed under any of these (declarant, LRN) keys.

    A search of the unique index however many declarations are stored; sent as plain SQL because it runs
    for every filing or group of filings.
    """
    known: dict[tuple[str, str], DeclarationRow] = {}
    if not keys:
        return known
    connection = session.connection()
    pairs = sorted(keys)
    if connection.dialect.name == "postgresql":
        found_ids = connection.exec_driver_sql(_FILINGS_BY_KEYS_PG, ([k[0] for k in pairs], [k[1] for k in pairs]))
        hits = {id_ for id_, _declarant, _lrn in found_ids}
    else:
        hits = _sqlite_filing_ids(connection, pairs, keys)
    found = sorted(hits)
    for start in range(0, len(found), 500):
        for row in session.scalars(select(DeclarationRow).where(DeclarationRow.id.in_(found[start : start + 500]))):
            known[(row.declarant_id, row.lrn)] = row
    return known


def plan_batch(
    session: Session, who: Principal, decls: Sequence[DeclarationIn], *, on: date | None = None, first: int = 0
) -> BatchPlan:
    """Validate, assess and lane many filings; earlier filings and repeats within the batch are idempotent.

    `first` is the position of `decls[0]` in the caller's whole batch, for the positions of problems.
    """
    plan = BatchPlan([], [], [], [])
    day = on or now().date()
    ctx = Context(session, day, who)
    known = known_filings(session, {(d.declarant.id, d.lrn) for d in decls})
    checks.prefetch(
        CheckContext(session, who, day, ctx.cache), [d for d in decls if (d.declarant.id, d.lrn) not in known]
    )
    in_batch: dict[tuple[str, str], str] = {}
    for i, decl in enumerate(decls, first):
        key = (decl.declarant.id, decl.lrn)
        try:
            check_filer(who, decl)
            body = payload_json(decl)
            digest = payload_hash(body)
            if key in known:
                plan.duplicates.append(same_or_conflict(known[key], digest, decl).reference)
                continue
            if key in in_batch:
                if in_batch[key] != digest:
                    raise Conflict(
                        Problem(
                            "duplicate_lrn",
                            ("lrn",),
                            t("LRN {lrn} appears twice in the batch with different content", lrn=decl.lrn),
                        )
                    )
                continue
            in_batch[key] = digest
            plan.ready.append(
                prepare(session, decl, day, f"{decl.declarant.id}/{decl.lrn}", ctx, body=body, digest=digest)
            )
            plan.positions.append(i)
        except DomainError as exc:
            plan.rejected.append((i, exc.problems))
    return plan


def store_batch(session: Session, who: Principal, plan: BatchPlan, *, recheck: bool = True) -> BatchResult:
    """Write a planned batch in one transaction; filings stored by someone else since planning count as
    duplicates (or conflicts), so the plan may be stored in a later transaction than it was made in.

    With `recheck` false the plan is written as it was made, without looking for such filings again: the
    unique index on (declarant, LRN) then refuses the whole transaction if one was stored meanwhile, and
    the caller must store it again with `recheck` (batch ingest does: the look-up was a read of every
    filing's key on every group, for a race that seldom happens).
    """
    duplicates = list(plan.duplicates)
    rejected = list(plan.rejected)
    known = known_filings(session, {(p.decl.declarant.id, p.decl.lrn) for p in plan.ready}) if recheck else {}
    ready: list[Prepared] = []
    for p, i in zip(plan.ready, plan.positions, strict=True):
        row = known.get((p.decl.declarant.id, p.decl.lrn))
        if row is None:
            ready.append(p)
            continue
        try:
            duplicates.append(same_or_conflict(row, p.digest, p.decl).reference)
        except DomainError as exc:
            rejected.append((i, exc.problems))
    accepted = [str(values["reference"]) for _id, values in store_filings(session, [Filing(who, p) for p in ready])]
    return BatchResult(accepted, duplicates, sorted(rejected, key=lambda r: r[0]))


def submit_batch(
    session: Session, who: Principal, decls: Sequence[DeclarationIn], *, on: date | None = None
) -> BatchResult:
    """File many declarations in one transaction: valid ones are stored in bulk, each invalid one reported.

    Duplicates (same declarant and LRN, filed before or earlier in the batch) are idempotent as in `submit`.
    """
    return store_batch(session, who, plan_batch(session, who, decls, on=on))


# ---------------------------------------------------------------------------------------------- officer work


def decide(
    session: Session, who: Principal, reference: str, decision: DecisionIn, *, remote_addr: str | None = None
) -> DeclarationRow:
    """An officer's decision: release, hold, request amendment, reject, escalate to inspection, resume."""
    if who.role not in (Role.OFFICER, Role.ADMIN):
        raise Forbidden(Problem("forbidden_role", (), t("Only customs officers record decisions")))
    try:
        action = Action(decision.action)
    except ValueError:
        action = None
    if action is None or action not in OFFICER_ACTIONS:
        raise DomainError(
            Problem(
                "unknown_action",
                ("action",),
                t(
                    "Unknown decision '{action}'; one of {allowed}",
                    action=decision.action,
                    allowed=", ".join(sorted(a.value for a in OFFICER_ACTIONS)),
                ),
            )
        )
    if action in REASON_REQUIRED and not decision.reason:
        raise DomainError(
            Problem(
                "reason_required",
                ("reason",),
                t("A reason is required to {action_text}", action_text=ACTION_WORDS[action]),
            )
        )
    row = get_row(session, who, reference, for_update=True)
    _transition(session, who, row, action, decision.reason, remote_addr=remote_addr)
    return row


def _transition(
    session: Session,
    who: Principal,
    row: DeclarationRow,
    action: Action,
    note: str | None,
    *,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> Status:
    current = Status(row.status)
    target = next_status(current, action)
    at = now()
    row.status = target.value
    row.updated_at = at
    if target is Status.RELEASED:
        row.released_at = at
    if action is Action.ESCALATE:
        row.lane = Lane.C3.value
    bulk_insert(session, _table(EventRow), [_event(row.id, at, who, action, current, target, note, detail)])
    audit.record(
        session, who, action.value, "declaration", row.reference, remote_addr=remote_addr, note=note, detail=detail
    )
    for hook in checks.hooks():
        hook.moved(session, row, action, current, target)
    return target


def record_inspection(
    session: Session, who: Principal, reference: str, result: InspectionIn, *, remote_addr: str | None = None
) -> DeclarationRow:
    """Record a physical/X-ray inspection's outcome; additional duty found is added to the bill."""
    if who.role not in (Role.OFFICER, Role.ADMIN):
        raise Forbidden(Problem("forbidden_role", (), t("Only customs officers record inspections")))
    problems = []
    if result.result not in ("found", "not_found"):
        problems.append(Problem("invalid_result", ("result",), t("Inspection result is 'found' or 'not_found'")))
    if result.additional_duty < 0:
        problems.append(Problem("negative_amount", ("additional_duty",), t("Must not be negative")))
    if result.result == "found" and not result.findings:
        problems.append(Problem("findings_required", ("findings",), t("Say what was found")))
    if result.result == "not_found" and result.additional_duty:
        problems.append(Problem("duty_without_finding", ("additional_duty",), t("Additional duty needs a finding")))
    if problems:
        raise DomainError(problems)
    row = get_row(session, who, reference, for_update=True)
    detail = {"result": result.result, "additional_duty": str(result.additional_duty)}
    _transition(session, who, row, Action.RECORD_INSPECTION, result.findings, detail=detail, remote_addr=remote_addr)
    session.add(
        InspectionRow(
            declaration_id=row.id,
            at=now(),
            officer=who.username,
            result=result.result,
            findings=result.findings,
            additional_duty=result.additional_duty,
        )
    )
    if result.additional_duty:
        row.additional_duty = row.additional_duty + result.additional_duty
        row.total = row.total + result.additional_duty
    return row


def amend(
    session: Session,
    who: Principal,
    reference: str,
    decl: DeclarationIn,
    reason: str | None,
    *,
    remote_addr: str | None = None,
) -> DeclarationRow:
    """The filer amends a declaration: it is re-validated, re-assessed and re-laned; history is kept."""
    row = get_row(session, who, reference, for_update=True)
    if not who.is_customs:
        check_filer(who, decl)
    if decl.lrn != row.lrn or decl.declarant.id != row.declarant_id:
        raise DomainError(
            Problem("identity_changed", ("lrn",), t("An amendment keeps the declarant and LRN of the declaration"))
        )
    next_status(Status(row.status), Action.AMEND)
    if row.version == 1:
        session.add(_original_version(row))
    prepared = prepare(
        session, decl, now().date(), f"{row.declarant_id}/{row.lrn}/v{row.version + 1}", who=who, reference=reference
    )
    _transition(session, who, row, Action.AMEND, reason, remote_addr=remote_addr)
    a, d = prepared.assessment, prepared.decision
    row.version += 1
    row.payload, row.payload_hash, row.assessment = prepared.payload, prepared.digest, a.as_dict()
    row.customs_value, row.duty, row.vat, row.total = a.customs_value, a.duty, a.vat, a.total + row.additional_duty
    row.importer_id, row.exporter_id, row.currency = decl.importer.id, decl.exporter.id, decl.currency
    row.lane, row.lane_reasons, row.lane_versions, row.risk_score = (
        d.lane.value,
        list(d.reasons),
        list(d.versions),
        d.score,
    )
    row.findings = [f.as_dict() for f in prepared.findings]
    session.execute(delete(ItemRow).where(ItemRow.declaration_id == row.id))
    bulk_insert(session, _table(ItemRow), _item_values(row.id, decl, a))
    session.add(
        VersionRow(
            declaration_id=row.id,
            version=row.version,
            at=now(),
            actor=who.username,
            reason=reason,
            payload=row.payload,
            assessment=row.assessment,
        )
    )
    _transition(session, SYSTEM, row, Action.ASSESS, None, detail={"total": str(a.total)})
    _transition(
        session,
        SYSTEM,
        row,
        _lane_action(d.lane),
        "; ".join(d.reasons),
        detail={"lane": d.lane.value, "score": d.score, "versions": list(d.versions)},
    )
    if prepared.hold:
        _transition(session, SYSTEM, row, Action.HOLD, prepared.hold)
    stored = Stored(row.id, row.reference, decl, Status(row.status), prepared.findings, row.version, prepared.derived)
    for hook in checks.hooks():
        hook.stored(session, who, [stored])
    return row


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    lane: str | None = None
    office: str | None = None
    importer: str | None = None
    hs_chapter: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    declarant: str | None = None
    lrn: str | None = None


def _original_version(row: DeclarationRow) -> VersionRow:
    """The filing as first filed. It lives in the declaration row until an amendment supersedes it, and is
    written to the version history then (half the bytes per filing on the hot path)."""
    return VersionRow(
        declaration_id=row.id,
        version=1,
        at=row.submitted_at,
        actor=row.filed_by,
        reason="original filing",
        payload=row.payload,
        assessment=row.assessment,
    )


def _filter_problems(who: Principal, filters: Filters) -> list[Problem]:
    """Filters that cannot mean what was asked: refused with their reasons, not answered with a page."""
    problems = []
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        problems.append(Problem("invalid_date_range", ("query", "date_from"), t("date_from is after date_to")))
    if filters.lrn and not filters.declarant and (who.is_customs or not who.party_id):
        problems.append(
            Problem(
                "declarant_required", ("query", "declarant"), t("An LRN is unique per declarant: name the declarant")
            )
        )
    return problems


def _reference_filters(who: Principal, filters: Filters) -> list[Any]:
    """Declarant and LRN conditions. An LRN is unique per declarant, so it is searched with one: a customs
    user names it, a trader's or broker's own is taken by default (one probe of the unique index)."""
    declarant = filters.declarant or (who.party_id if filters.lrn else None)
    conds: list[Any] = []
    if declarant:
        conds.append(DeclarationRow.declarant_id == declarant)
    if filters.lrn:
        conds.append(DeclarationRow.lrn == filters.lrn)
    return conds


def list_rows(
    session: Session, who: Principal, filters: Filters, *, limit: int = 50, offset: int = 0
) -> tuple[list[DeclarationRow], int]:
    """Declarations the caller may see, newest first, filtered; returns the page and the total count."""
    conds: list[Any] = []
    if not who.is_customs:
        if who.role not in (Role.TRADER, Role.BROKER):
            raise Forbidden(
                Problem("forbidden_role", (), t("Role {role} may not list declarations", role=who.role.value))
            )
        conds.append(_party_filter(who))
    problems = _filter_problems(who, filters)  # after the role check: a role that may not list learns only that
    if problems:
        raise DomainError(problems)
    conds += _reference_filters(who, filters)
    if filters.status:
        conds.append(DeclarationRow.status == filters.status)
    if filters.lane:
        conds.append(DeclarationRow.lane == filters.lane)
    if filters.office:
        conds.append(DeclarationRow.office == filters.office.upper())
    if filters.importer:
        conds.append(DeclarationRow.importer_id == filters.importer)
    if filters.date_from:
        conds.append(DeclarationRow.submitted_at >= datetime.combine(filters.date_from, datetime.min.time(), UTC))
    if filters.date_to:
        conds.append(DeclarationRow.submitted_at < datetime.combine(filters.date_to, datetime.max.time(), UTC))
    if filters.hs_chapter:
        conds.append(
            exists().where(and_(ItemRow.declaration_id == DeclarationRow.id, ItemRow.hs_chapter == filters.hs_chapter))
        )
    where = and_(*conds) if conds else None
    stmt = select(DeclarationRow)
    count = select(func.count()).select_from(DeclarationRow)
    if where is not None:
        stmt, count = stmt.where(where), count.where(where)
    rows = list(
        session.scalars(
            stmt.order_by(DeclarationRow.submitted_at.desc(), DeclarationRow.id.desc()).limit(limit).offset(offset)
        )
    )
    return rows, int(session.scalar(count) or 0)


def officer_queue(session: Session, who: Principal, lane: str | None, *, limit: int = 100) -> list[DeclarationRow]:
    """Declarations waiting for an officer: under check (C2) or inspection (C3) and held, riskiest first."""
    if not who.is_customs:
        raise Forbidden(Problem("forbidden_role", (), t("The queue is for customs officers")))
    waiting = [Status.UNDER_CHECK.value, Status.UNDER_INSPECTION.value, Status.HELD.value]
    stmt = select(DeclarationRow).where(DeclarationRow.status.in_(waiting))
    if lane:
        stmt = stmt.where(DeclarationRow.lane == lane)
    stmt = stmt.order_by(DeclarationRow.risk_score.desc(), DeclarationRow.submitted_at).limit(limit)
    return list(session.scalars(stmt))


def timeline(
    session: Session, who: Principal, reference: str
) -> tuple[DeclarationRow, list[EventRow], list[InspectionRow], list[VersionRow]]:
    row = get_row(session, who, reference)
    events = list(
        session.scalars(select(EventRow).where(EventRow.declaration_id == row.id).order_by(EventRow.at, EventRow.id))
    )
    inspections = list(
        session.scalars(select(InspectionRow).where(InspectionRow.declaration_id == row.id).order_by(InspectionRow.at))
    )
    versions = list(
        session.scalars(select(VersionRow).where(VersionRow.declaration_id == row.id).order_by(VersionRow.version))
    )
    if not versions:
        versions = [_original_version(row)]
    return row, events, inspections, versions


def release_note(session: Session, who: Principal, reference: str) -> dict[str, Any]:
    """The release note of a released declaration: what was released, when, by whom, what is owed."""
    row, events, inspections, _ = timeline(session, who, reference)
    if row.status != Status.RELEASED.value:
        raise Conflict(
            Problem(
                "not_released",
                ("status",),
                t(
                    "Declaration {reference} is {status_text}, not released",
                    reference=reference,
                    status_text=STATUS_WORDS.get(Status(row.status), row.status),
                ),
            )
        )
    release = next(e for e in reversed(events) if e.to_status == Status.RELEASED.value)
    nat = row.assessment.get("national_currency", "")
    return {
        "reference": row.reference,
        "lrn": row.lrn,
        "declarant": row.payload["declarant"],
        "importer": row.payload["importer"],
        "office": row.office,
        "lane": row.lane,
        "released_at": iso(release.at),
        "released_by": release.actor,
        "items": [
            {
                "line_no": i["line_no"],
                "description": i["description"],
                "tariff_code": i["tariff_code"],
                "quantity": i["quantity"],
                "quantity_unit": i["quantity_unit"],
            }
            for i in row.payload["items"]
        ],
        "currency": nat,
        "customs_value": str(row.customs_value),
        "duty": str(row.duty),
        "vat": str(row.vat),
        "additional_duty": str(row.additional_duty),
        "total_due": str(row.total),
        "inspections": [{"result": i.result, "findings": i.findings} for i in inspections],
        "title": t("Customs release note {reference}", reference=row.reference),
        "statement": t(
            "The goods of declaration {reference} were released by customs office {office} on {released_at}.",
            reference=row.reference,
            office=row.office,
            released_at=iso(release.at),
        ),
    }


def release_time_stats(session: Session, who: Principal, since: datetime | None = None) -> dict[str, Any]:
    """Time Release Study: median and 90th percentile seconds per stage and per lane, from the timeline."""
    if not who.is_customs:
        raise Forbidden(Problem("forbidden_role", (), t("Release statistics are for customs staff")))
    stmt = select(EventRow.declaration_id, EventRow.action, EventRow.to_status, EventRow.at, DeclarationRow.lane).join(
        DeclarationRow, DeclarationRow.id == EventRow.declaration_id
    )
    if since is not None:
        stmt = stmt.where(DeclarationRow.submitted_at >= since)
    per_decl: dict[int, dict[str, datetime]] = {}
    lanes: dict[int, str | None] = {}
    for decl_id, action, to_status, at, lane in session.execute(stmt):
        marks = per_decl.setdefault(decl_id, {})
        lanes[decl_id] = lane
        if action == Action.SUBMIT.value:
            marks.setdefault("submitted", at)
        if action in (Action.ROUTE_C1.value, Action.ROUTE_C2.value, Action.ROUTE_C3.value):
            marks.setdefault("routed", at)
        if to_status == Status.RELEASED.value:
            marks["released"] = at
    stages: dict[str, dict[str, list[float]]] = {}
    for decl_id, marks in per_decl.items():
        lane = lanes[decl_id] or "?"
        for name, start, end in (
            ("submission_to_lane", "submitted", "routed"),
            ("lane_to_release", "routed", "released"),
            ("submission_to_release", "submitted", "released"),
        ):
            if start in marks and end in marks:
                secs = (marks[end] - marks[start]).total_seconds()
                stages.setdefault(name, {}).setdefault(lane, []).append(secs)
                stages[name].setdefault("all", []).append(secs)
    return {name: {lane: _summary(values) for lane, values in by_lane.items()} for name, by_lane in stages.items()}


def _summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    n = len(values)

    def q(p: float) -> float:
        return values[min(n - 1, int(p * (n - 1) + 0.5))]

    return {"count": n, "median_s": q(0.5), "p90_s": q(0.9)}


def dashboard_counts(session: Session, who: Principal, day: date) -> dict[str, dict[str, int]]:
    """Declarations submitted on `day` by lane and by status."""
    if not who.is_customs:
        raise Forbidden(Problem("forbidden_role", (), t("The dashboard is for customs staff")))
    start = datetime.combine(day, datetime.min.time(), UTC)
    end = datetime.combine(day, datetime.max.time(), UTC)
    out: dict[str, dict[str, int]] = {"lane": {}, "status": {}}
    base = select(DeclarationRow).where(DeclarationRow.submitted_at.between(start, end)).subquery()
    for col in ("lane", "status"):
        for key, n in session.execute(select(base.c[col], func.count()).group_by(base.c[col])):
            out[col][str(key)] = int(n)
    return out


# ---------------------------------------------------------------------------------------------- late findings


def raise_findings(
    session: Session, reference: str, findings: Sequence[Finding], *, who: Principal = SYSTEM, note: str | None = None
) -> DeclarationRow:
    """Findings that arrive after filing (an X-ray scan, a manifest filed late, trade documents).

    They are kept on the declaration with their reasons and versions, raise its score, and move it:
    a finding that calls for C3 escalates a documentary check to inspection; one that calls for a hold
    holds it. A released or rejected declaration is only flagged, for post-clearance audit.
    """
    if not findings:
        raise DomainError(Problem("no_findings", ("findings",), t("No findings to raise")))
    row = session.scalar(select(DeclarationRow).where(DeclarationRow.reference == reference).with_for_update())
    if row is None:
        raise NotFound(
            Problem("unknown_declaration", ("reference",), t("No declaration {reference}", reference=reference))
        )
    current = Status(row.status)
    before = LaneDecision(
        Lane(row.lane or "C1"), row.risk_score, tuple(row.lane_reasons or ()), tuple(row.lane_versions or ())
    )
    after = checks.fold(before, findings)
    row.findings = [*(row.findings or []), *(f.as_dict() for f in findings)]
    row.lane_reasons, row.lane_versions, row.risk_score = list(after.reasons), list(after.versions), after.score
    text = note or "; ".join(f.message for f in findings)
    detail = {"findings": [f.as_dict() for f in findings]}
    at = now()
    bulk_insert(session, _table(EventRow), [_event(row.id, at, who, Action.FLAG, current, current, text, detail)])
    audit.record(session, who, Action.FLAG.value, "declaration", row.reference, note=text, detail=detail)
    row.updated_at = at
    if current in FINAL_STATUSES:
        return row
    hold = checks.hold_reason(findings)
    wants_c3 = after.lane is Lane.C3 and row.lane != Lane.C3.value
    if wants_c3 and current in (Status.UNDER_CHECK, Status.HELD):
        _transition(session, SYSTEM, row, Action.ESCALATE, text, detail={"lane": "C3"})
    elif wants_c3:
        row.lane = Lane.C3.value
    elif LANE_ORDER[after.lane] > LANE_ORDER[Lane(row.lane or "C1")]:
        row.lane = after.lane.value
    if hold and Status(row.status) in (Status.UNDER_CHECK, Status.UNDER_INSPECTION):
        _transition(session, SYSTEM, row, Action.HOLD, hold)
    return row
