"""Post-clearance audit: the ranked list of importers kept between computations, and audit results
recorded as training labels.

The list is computed on request (an analyst's button, `smartcustoms risk audit-refresh` from a
scheduler) and stored with the model version that scored it; reading it is one row. An audit result
names the importer, the period audited and the declarations found irregular with the revenue
recovered on each; `labels.export_labels` turns it into labels (irregular: fraud, with the revenue; the
importer's other declarations of the period: audited and in order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.errors import DomainError, NotFound, Problem
from smartcustoms.platform.i18n import t, t_plain
from smartcustoms.platform.types import iso
from smartcustoms.risk.service import _require, active_model, audit_selection
from smartcustoms.risk.store import AuditListRow, AuditResultRow

AUDITORS = frozenset({Role.ANALYST, Role.ADMIN})
READERS = frozenset({Role.OFFICER, Role.ANALYST, Role.ADMIN})
MAX_FINDINGS = 10_000
MAX_CODE_CHECKS = 400
POOR_FIT = 0.3
"""A declared code scoring under this share of the classifier's first choice, in another chapter, is a mismatch."""


# ---------------------------------------------------------------------------------------------- audit list


def refresh_audit_list(
    session: Session, who: Principal, *, top: int = 50, check_codes: bool = True, max_lines: int = MAX_CODE_CHECKS
) -> dict[str, Any]:
    """Rank importers with the active model now and keep the result (the page and API read it).

    With `check_codes`, the listed importers' declared codes are checked against their goods descriptions
    by the tariff classifier (at most `max_lines` lines, newest first): poorly fitting codes are counted,
    named in the reason, and break ties in the ranking.
    """
    _require(who, AUDITORS, "compute the audit list")
    ranked = audit_selection(session, who, top=top)
    if check_codes and len(ranked):
        ranked = with_code_mismatches(session, ranked, max_lines=max_lines)
    model = active_model()
    from smartcustoms.clearance.service import now

    row = AuditListRow(
        computed_at=now(),
        computed_by=who.username,
        model_version=model.version if model is not None else "",
        declarations=int(ranked["declarations"].sum()) if len(ranked) else 0,
        rows=[_plain(r) for r in ranked.to_dict("records")],
    )
    session.add(row)
    session.flush()
    audit.record(session, who, "risk.audit_list.computed", "risk_audit_list", row.id, detail={"top": top})
    return audit_list_view(row)


def with_code_mismatches(session: Session, ranked: pd.DataFrame, *, max_lines: int = MAX_CODE_CHECKS) -> pd.DataFrame:
    """The audit list with `lines_checked` and `code_mismatches` per importer, reasons extended, re-ranked
    by expected unpaid revenue then mismatches (a mismatch is evidence, not money: it only breaks ties)."""
    from smartcustoms.clearance.store import DeclarationRow, ItemRow
    from smartcustoms.tariff.classifier.service import fit_score
    from smartcustoms.tariff.model import TariffError

    importers = [str(i) for i in ranked["importer_id"]]
    stmt = (
        select(DeclarationRow.importer_id, ItemRow.tariff_code, ItemRow.description)
        .join(ItemRow, ItemRow.declaration_id == DeclarationRow.id)
        .where(DeclarationRow.importer_id.in_(importers))
        .order_by(DeclarationRow.submitted_at.desc(), DeclarationRow.id.desc(), ItemRow.line_no)
        .limit(max_lines)
    )
    checked: dict[str, int] = {}
    poor: dict[str, int] = {}
    fits: dict[tuple[str, str], bool] = {}
    for importer, code, description in session.execute(stmt):
        key = (code, description)
        if key not in fits:
            try:
                f = fit_score(code, description)
            except TariffError:  # a code or text the classifier cannot judge: not counted
                continue
            best = f.better[0].code if f.better else f.code
            fits[key] = f.fit < POOR_FIT and best[:2] != f.code[:2]
        checked[importer] = checked.get(importer, 0) + 1
        poor[importer] = poor.get(importer, 0) + int(fits[key])
    out = ranked.copy()
    out["lines_checked"] = [checked.get(i, 0) for i in importers]
    out["code_mismatches"] = [poor.get(i, 0) for i in importers]
    out["reason"] = [
        t_plain(
            "{reason}; {mismatches} of {checked} lines checked have a code that fits their description poorly",
            reason=r,
            mismatches=m,
            checked=c,
        )
        if c
        else r
        for r, m, c in zip(out["reason"], out["code_mismatches"], out["lines_checked"], strict=True)
    ]
    out = out.sort_values(["expected_unpaid", "code_mismatches"], ascending=False, kind="stable")
    out["rank"] = range(1, len(out) + 1)
    return out.reset_index(drop=True)


def latest_audit_list(session: Session, who: Principal) -> dict[str, Any] | None:
    """The last computed audit list, or None when it was never computed."""
    _require(who, READERS, "read the audit list")
    row = session.scalars(
        select(AuditListRow).order_by(AuditListRow.computed_at.desc(), AuditListRow.id.desc())
    ).first()
    return audit_list_view(row) if row is not None else None


def audit_list_view(row: AuditListRow) -> dict[str, Any]:
    return {
        "computed_at": iso(row.computed_at),
        "computed_by": row.computed_by,
        "model_version": row.model_version,
        "declarations": row.declarations,
        "rows": row.rows,
    }


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A pandas record as JSON-ready values (numpy scalars to Python)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        out[str(key)] = value.item() if hasattr(value, "item") else value
    return out


# ---------------------------------------------------------------------------------------------- audit results


@dataclass(frozen=True)
class AuditFinding:
    reference: str
    additional_duty: Decimal


def record_audit_result(
    session: Session,
    who: Principal,
    *,
    importer_id: str,
    period_from: date,
    period_to: date,
    findings: list[dict[str, Any]],
    note: str | None = None,
    remote_addr: str | None = None,
) -> dict[str, Any]:
    """Store an audit's outcome; every problem (unknown declaration, another importer's, outside the period,
    negative or non-numeric amounts) is reported at once and nothing is stored."""
    from smartcustoms.clearance.store import DeclarationRow

    _require(who, AUDITORS, "record audit results")
    problems: list[Problem] = []
    importer_id = importer_id.strip()
    if not importer_id:
        problems.append(Problem("missing", ("importer_id",), t("Name the importer that was audited")))
    if period_from > period_to:
        problems.append(
            Problem(
                "invalid_period",
                ("period_to",),
                t("The period ends ({end}) before it starts ({start})", end=period_to, start=period_from),
            )
        )
    if len(findings) > MAX_FINDINGS:
        problems.append(
            Problem("too_many", ("findings",), t("At most {limit} findings per audit result", limit=MAX_FINDINGS))
        )
    parsed: list[AuditFinding] = []
    seen: set[str] = set()
    for i, f in enumerate(findings[:MAX_FINDINGS]):
        ref = str(f.get("reference") or "").strip()
        if not ref:
            problems.append(Problem("missing", ("findings", i, "reference"), t("Give the declaration reference")))
            continue
        if ref in seen:
            problems.append(
                Problem(
                    "duplicate", ("findings", i, "reference"), t("Declaration {reference} listed twice", reference=ref)
                )
            )
        seen.add(ref)
        try:
            amount = Decimal(str(f.get("additional_duty", "0")))
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(
                Problem(
                    "invalid_amount",
                    ("findings", i, "additional_duty"),
                    t("Additional duty must be a number of zero or more, got {value}", value=f.get("additional_duty")),
                )
            )
            continue
        parsed.append(AuditFinding(ref, amount))
    if seen:
        rows = {
            r.reference: r
            for r in session.scalars(select(DeclarationRow).where(DeclarationRow.reference.in_(sorted(seen))))
        }
        for i, f in enumerate(findings[:MAX_FINDINGS]):
            ref = str(f.get("reference") or "").strip()
            if not ref:
                continue
            row = rows.get(ref)
            path = ("findings", i, "reference")
            if row is None:
                problems.append(Problem("unknown_declaration", path, t("No declaration {reference}", reference=ref)))
            elif row.importer_id != importer_id:
                problems.append(
                    Problem(
                        "other_importer",
                        path,
                        t(
                            "Declaration {reference} is importer {other}'s, not {importer}'s",
                            reference=ref,
                            other=row.importer_id,
                            importer=importer_id,
                        ),
                    )
                )
            elif not period_from <= row.submitted_at.date() <= period_to:
                problems.append(
                    Problem(
                        "outside_period",
                        path,
                        t(
                            "Declaration {reference} was filed on {day}, outside the audited period",
                            reference=ref,
                            day=row.submitted_at.date(),
                        ),
                    )
                )
    if problems:
        raise DomainError(problems)
    from smartcustoms.clearance.service import now

    recovered = sum((f.additional_duty for f in parsed), Decimal(0))
    result = AuditResultRow(
        importer_id=importer_id,
        period_from=period_from,
        period_to=period_to,
        findings=[{"reference": f.reference, "additional_duty": str(f.additional_duty)} for f in parsed],
        recovered=recovered,
        note=(note or "").strip() or None,
        recorded_at=now(),
        recorded_by=who.username,
    )
    session.add(result)
    session.flush()
    audit.record(
        session,
        who,
        "risk.audit_result.recorded",
        "risk_audit_result",
        result.id,
        detail={"importer_id": importer_id, "findings": len(parsed), "recovered": str(recovered)},
        remote_addr=remote_addr,
    )
    return audit_result_view(result)


def audit_results(session: Session, who: Principal, *, importer_id: str | None = None) -> list[dict[str, Any]]:
    _require(who, READERS, "read audit results")
    stmt = select(AuditResultRow).order_by(AuditResultRow.recorded_at.desc(), AuditResultRow.id.desc())
    if importer_id:
        stmt = stmt.where(AuditResultRow.importer_id == importer_id)
    return [audit_result_view(r) for r in session.scalars(stmt.limit(500))]


def audit_result(session: Session, who: Principal, result_id: int) -> dict[str, Any]:
    _require(who, READERS, "read audit results")
    row = session.get(AuditResultRow, result_id)
    if row is None:
        raise NotFound(Problem("not_found", ("id",), t("No audit result {id}", id=result_id)))
    return audit_result_view(row)


def audit_result_view(row: AuditResultRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "importer_id": row.importer_id,
        "period_from": row.period_from.isoformat(),
        "period_to": row.period_to.isoformat(),
        "findings": row.findings,
        "recovered": str(row.recovered),
        "note": row.note,
        "recorded_at": iso(row.recorded_at),
        "recorded_by": row.recorded_by,
    }


def audit_labels(session: Session) -> list[AuditResultRow]:
    """Every audit result, oldest first (the label export folds them into declarations' labels)."""
    return list(session.scalars(select(AuditResultRow).order_by(AuditResultRow.recorded_at, AuditResultRow.id)))
