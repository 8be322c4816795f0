"""HTTP routes of the tariff slice: look a code up, search, list and (admin) import schedules."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.web import principal, require
from smartcustoms.tariff import service
from smartcustoms.tariff.model import DutyRate, Schedule, TariffLine, rate_to_dict

router = APIRouter(prefix="/tariff", tags=["tariff"])


class ScheduleOut(BaseModel):
    id: int | None
    name: str
    version: str
    valid_from: date
    valid_to: date | None
    currency: str
    source: str | None = None

    @classmethod
    def of(cls, s: Schedule) -> ScheduleOut:
        return cls(
            id=s.id,
            name=s.name,
            version=s.version,
            valid_from=s.valid_from,
            valid_to=s.valid_to,
            currency=s.currency,
            source=s.source,
        )


class PathStep(BaseModel):
    code: str
    description_en: str | None
    description_zh: str | None


class LineOut(BaseModel):
    code: str
    digits: int
    is_leaf: bool
    description_en: str | None
    description_zh: str | None
    parent: str | None
    section: str | None
    unit: str | None
    requirements: list[str]
    general_rate: dict[str, Any] | None = Field(description="Parsed rate with its original text")
    preferential: dict[str, dict[str, Any]] = Field(description="Programme code -> parsed rate ('*' = all)")
    column2_rate: dict[str, Any] | None = None
    raw_rates: dict[str, str] = Field(description="Each rate column as the schedule states it")
    path: list[PathStep] = []
    schedule: ScheduleOut | None = None

    @classmethod
    def of(cls, line: TariffLine, path: list[TariffLine] | None = None, schedule: Schedule | None = None) -> LineOut:
        def rate(r: DutyRate | None) -> dict[str, Any] | None:
            return rate_to_dict(r) if r is not None else None

        return cls(
            code=line.code,
            digits=line.digits,
            is_leaf=line.is_leaf,
            description_en=line.description_en,
            description_zh=line.description_zh,
            parent=line.parent,
            section=line.section,
            unit=line.unit,
            requirements=list(line.requirements),
            general_rate=rate(line.general_rate),
            preferential={k: rate_to_dict(v) for k, v in line.preferential.items()},
            column2_rate=rate(line.column2_rate),
            raw_rates=dict(line.raw_rates),
            path=[
                PathStep(code=p.code, description_en=p.description_en, description_zh=p.description_zh)
                for p in path or []
            ],
            schedule=ScheduleOut.of(schedule) if schedule else None,
        )


class SearchOut(BaseModel):
    schedule: ScheduleOut
    lines: list[LineOut]


class ImportIn(BaseModel):
    format: str = Field(description="hs2022, us-hts or tw")
    path: str | None = Field(None, description="File or folder on the server (not needed for hs2022)")
    version: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    name: str | None = None


class ImportOut(BaseModel):
    schedule: ScheduleOut
    lines: int
    leaves: int
    rates_parsed: int
    rates_failed: int
    replaced: bool
    failures: list[dict[str, str]]


@router.get("/lines/{code}", response_model=LineOut)
def get_line(
    code: str,
    date_: date | None = Query(None, alias="date", description="Declaration date (default today)"),
    schedule: str | None = Query(None, description="Schedule name (default the configured one)"),
    _who: Principal = Depends(principal),
) -> LineOut:
    """A tariff line of the schedule version valid on `date`, with its path and rates."""
    with unit_of_work() as session:
        index = service.get_index(schedule, date_, session=session)
    line = index.get(code)
    if line is None:
        raise NotFound(
            Problem(
                "unknown_code",
                ("code",),
                t(
                    "No line {code} in schedule {schedule} {version}",
                    code=code,
                    schedule=index.schedule.name,
                    version=index.schedule.version,
                ),
            )
        )
    return LineOut.of(line, index.path(line.code)[:-1], index.schedule)


@router.get("/search", response_model=SearchOut)
def search_lines(
    q: str = Query(..., min_length=1, max_length=200, description="Code prefix or words (en or zh)"),
    lang: str | None = Query(None, pattern="^(en|zh.*)$"),
    schedule: str | None = None,
    limit: int = Query(20, ge=1, le=200),
    date_: date | None = Query(None, alias="date"),
    _who: Principal = Depends(principal),
) -> SearchOut:
    """Lines whose code starts with `q` or whose text contains every word of `q`."""
    with unit_of_work() as session:
        lines = service.search(session, q, lang, schedule, limit, date_)
        header = service.schedule_on(session, schedule, date_ or date.today())
    return SearchOut(schedule=ScheduleOut.of(header), lines=[LineOut.of(line) for line in lines])


@router.get("/schedules", response_model=list[ScheduleOut])
def get_schedules(_who: Principal = Depends(principal)) -> list[ScheduleOut]:
    with unit_of_work() as session:
        return [ScheduleOut.of(s) for s in service.list_schedules(session)]


@router.post("/schedules/import", response_model=ImportOut)
def post_import(body: ImportIn, who: Principal = Depends(require(Role.ADMIN))) -> ImportOut:
    """Import a schedule version from a file on the server (admin only; the CLI is the usual path)."""
    with unit_of_work() as session:
        report = service.import_schedule(
            session,
            body.format,
            body.path,
            body.version,
            body.valid_from,
            body.valid_to,
            name=body.name,
            principal=who,
        )
    return ImportOut(
        schedule=ScheduleOut.of(report.schedule),
        lines=report.lines,
        leaves=report.leaves,
        rates_parsed=report.rates_parsed,
        rates_failed=len(report.rates_failed),
        replaced=report.replaced,
        failures=[{"code": f.code, "column": f.column, "text": f.text} for f in report.rates_failed[:100]],
    )


# ---------------------------------------------------------------------------------------------------------------
# Classification


class ClassifyIn(BaseModel):
    text: str = Field(description="Goods description, English or Chinese (trader words welcome)")
    top: int = Field(5, ge=1, le=50)
    schedule: str = Field("hs", description="hs (HS 2022 6-digit), us or tw (imported national schedule)")
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Optional: material, use, category path...; their values join the text"
    )


class CandidateOut(BaseModel):
    code: str
    confidence: float = Field(description="Calibrated probability that this is the line")
    score: float = Field(description="Raw retrieval score")
    description: str | None
    path: list[PathStep] = Field(description="Chapter > heading > subheading (> national line)")
    matched: list[str] = Field(description="Query words found in the line's path text")
    terms: list[str] = Field(description="Trader words of the knowledge file that pointed here")
    general_rate: dict[str, Any] | None = None
    requirements: list[str] = []
    unit: str | None = None

    @classmethod
    def of(cls, c: Any, line: TariffLine | None) -> CandidateOut:
        return cls(
            code=c.code,
            confidence=c.confidence,
            score=c.score,
            description=line.description_en or line.description_zh if line else None,
            path=[PathStep(code=code, description_en=desc, description_zh=None) for code, desc in c.path],
            matched=list(c.matched),
            terms=list(c.terms),
            general_rate=rate_to_dict(line.general_rate) if line and line.general_rate else None,
            requirements=list(line.requirements) if line else [],
            unit=line.unit if line else None,
        )


CONFIDENCE_VERSION = Field(
    description="What the confidences come from: the calibrator's version (tariff-confidence/1:<digest>), or the "
    "softmax temperature and why no calibrator applies"
)


class ClassifyOut(BaseModel):
    schedule: str
    model_version: str
    confidence_version: str = CONFIDENCE_VERSION
    candidates: list[CandidateOut]
    requirements: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Single window: permits other agencies require for the candidates' codes (one per code and rule)",
    )


class FitIn(BaseModel):
    code: str
    description: str
    schedule: str = "hs"


class FitOut(BaseModel):
    code: str
    fit: float = Field(description="0..1; 1 = the classifier's own first choice for the description")
    confidence: float
    rank: int
    better: list[CandidateOut]
    model_version: str
    confidence_version: str = CONFIDENCE_VERSION


@router.post("/classify", response_model=ClassifyOut)
def post_classify(body: ClassifyIn, _who: Principal = Depends(principal)) -> ClassifyOut:
    """Ranked tariff lines for a goods description, each with confidence, path, matched words, rate and
    requirements."""
    from smartcustoms.tariff.classifier import service as classifier
    from smartcustoms.tariff.classifier.model import MODEL_VERSION

    text = " ".join([body.text, *(v for v in body.attributes.values() if v)]) if body.text.strip() else body.text
    cands = classifier.classify([text], body.top, body.schedule, explain=True)[0]
    return ClassifyOut(
        schedule=classifier.schedule_name(body.schedule),
        model_version=MODEL_VERSION,
        confidence_version=classifier.get_classifier(body.schedule).confidence_source,
        candidates=[CandidateOut.of(c, classifier.line_of(body.schedule, c.code)) for c in cands],
        requirements=service.permit_requirements([c.code for c in cands]),
    )


@router.post("/fit", response_model=FitOut)
def post_fit(body: FitIn, _who: Principal = Depends(principal)) -> FitOut:
    """How well a declared code fits its goods description, with the codes that fit better."""
    from smartcustoms.tariff.classifier import service as classifier
    from smartcustoms.tariff.classifier.model import MODEL_VERSION

    r = classifier.fit_score(body.code, body.description, body.schedule)
    return FitOut(
        code=r.code,
        fit=r.fit,
        confidence=r.confidence,
        rank=r.rank,
        better=[CandidateOut.of(c, classifier.line_of(body.schedule, c.code)) for c in r.better],
        model_version=MODEL_VERSION,
        confidence_version=classifier.get_classifier(body.schedule).confidence_source,
    )


# ---------------------------------------------------------------------------------------------------------------
# Progressive questions


class SessionIn(BaseModel):
    text: str
    schedule: str = "hs"


class AnswerIn(BaseModel):
    question_id: str
    option: int


class OptionOut(BaseModel):
    index: int
    label: str


class QuestionOut(BaseModel):
    id: str
    prompt: str
    options: list[OptionOut]
    gain_bits: float


class SessionOut(BaseModel):
    id: str
    schedule: str
    description: str
    done: bool
    confirmed_id: int | None = None
    question: QuestionOut | None
    candidates: list[dict[str, Any]] = Field(description="code and probability after the answers so far")
    trail: list[dict[str, str]] = Field(description="questions asked and answers given: the reason for the code")
    requirements: list[dict[str, Any]] = Field(
        default_factory=list, description="Single window: permits required for the top candidates' codes"
    )


def _session_out(st: Any) -> SessionOut:
    q = st.question
    return SessionOut(
        id=st.id,
        schedule=st.schedule,
        description=st.description,
        done=st.done,
        confirmed_id=st.confirmed_id,
        question=QuestionOut(
            id=q.id,
            prompt=q.prompt,
            options=[OptionOut(index=i, label=o.label) for i, o in enumerate(q.options)],
            gain_bits=q.gain,
        )
        if q
        else None,
        candidates=[{"code": c, "probability": round(p, 4)} for c, p in st.ranked],
        trail=[{"question": a, "answer": b} for a, b in st.trail],
        requirements=service.permit_requirements([c for c, _p in st.ranked[:5]]),
    )


@router.post("/sessions", response_model=SessionOut)
def post_session(body: SessionIn, who: Principal = Depends(principal)) -> SessionOut:
    """Start a classification session: candidates and, when they are close, the most informative question.
    Sessions are stored in the database: any worker answers them, and they survive a restart."""
    from smartcustoms.tariff.classifier import service as classifier

    with unit_of_work() as session:
        st = classifier.start_session(session, body.text, body.schedule, owner=who.username)
    return _session_out(st)


@router.post("/sessions/{session_id}/answer", response_model=SessionOut)
def post_answer(session_id: str, body: AnswerIn, who: Principal = Depends(principal)) -> SessionOut:
    from smartcustoms.tariff.classifier import service as classifier

    with unit_of_work() as session:
        st = classifier.answer_session(session, session_id, body.question_id, body.option, owner=who.username)
    return _session_out(st)


@router.get("/sessions/{session_id}", response_model=SessionOut)
def get_session(session_id: str, who: Principal = Depends(principal)) -> SessionOut:
    from smartcustoms.tariff.classifier import service as classifier

    with unit_of_work(read_only=True) as session:
        st = classifier.session_result(session, session_id, owner=who.username)
    return _session_out(st)


class ConfirmIn(BaseModel):
    code: str
    description: str
    schedule: str = "hs"
    reason: str | None = Field(None, description="e.g. the question trail of a session")


@router.post("/confirmations", status_code=201)
def post_confirmation(body: ConfirmIn, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Record that a code is right for a description: training data for `smartcustoms tariff train`."""
    from smartcustoms.tariff.classifier import service as classifier

    with unit_of_work() as session:
        rid = classifier.confirm(session, who, body.description, body.code, body.schedule, body.reason)
    return {"id": rid}


class SessionConfirmIn(BaseModel):
    code: str | None = Field(None, description="Default: the session's top candidate")


@router.post("/sessions/{session_id}/confirm", status_code=201)
def post_session_confirm(
    session_id: str, body: SessionConfirmIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """Confirm the session's final code; the question trail is recorded as the reason."""
    from smartcustoms.tariff.classifier import service as classifier

    with unit_of_work() as session:
        rid = classifier.confirm_session(session, who, session_id, body.code)
    return {"id": rid}
