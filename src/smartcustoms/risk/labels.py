"""Inspection outcomes as training labels: the platform's own declarations in the engine's layout.

An officer's inspection result (found / not found, additional duty) is the label the selectivity model
learns from; `export_labels` reads the clearance core's declarations, items and inspections in one pass
(the training-data export the risk engine owns), `read_platform` reads such an export back from CSV so
`smartcustoms risk train --format platform` trains on it like on the KCS files.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.risk.kcs import RiskInputError, check_labels


def export_labels(session: Session, *, since: date | None = None, until: date | None = None) -> pd.DataFrame:
    """The platform's declarations as canonical rows (one per item) with inspection outcomes as labels.

    `fraud` is 1 when an inspection found something, 0 when every inspection found nothing, empty when
    the declaration was never inspected (it counts in history totals, not in rates). `additional_duty`
    is the duty the inspections recovered (a declaration's, repeated on each of its items).
    Post-clearance audit results count too: a declaration the audit found irregular is a fraud with the
    revenue it recovered; the importer's other declarations of the audited period were found in order.
    `label_source` says where each label came from (inspection, audit, or both).
    """
    from smartcustoms.clearance.store import DeclarationRow, InspectionRow, ItemRow

    stmt = select(DeclarationRow).where(DeclarationRow.declaration_type == "import")
    if since:
        stmt = stmt.where(DeclarationRow.submitted_at >= datetime.combine(since, datetime.min.time(), UTC))
    if until:
        stmt = stmt.where(DeclarationRow.submitted_at <= datetime.combine(until, datetime.max.time(), UTC))
    decls = {d.id: d for d in session.scalars(stmt.order_by(DeclarationRow.submitted_at, DeclarationRow.id))}
    outcomes: dict[int, dict[str, Any]] = {}
    items: dict[int, list[ItemRow]] = {}
    ids = list(decls)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for i in session.scalars(select(InspectionRow).where(InspectionRow.declaration_id.in_(chunk))):
            acc = outcomes.setdefault(i.declaration_id, {"found": 0, "duty": 0.0, "at": i.at})
            acc["found"] = max(acc["found"], 1 if i.result == "found" else 0)
            acc["duty"] += float(i.additional_duty)
            acc["at"] = max(acc["at"], i.at)
        for it in session.scalars(
            select(ItemRow).where(ItemRow.declaration_id.in_(chunk)).order_by(ItemRow.declaration_id, ItemRow.line_no)
        ):
            items.setdefault(it.declaration_id, []).append(it)
    sources = {did: "inspection" for did in outcomes}
    _fold_audits(session, decls, outcomes, sources)
    rows: list[dict[str, Any]] = []
    for did, d in decls.items():
        p = d.payload or {}
        assessed = {x.get("line_no"): x for x in (d.assessment or {}).get("items", [])}
        o = outcomes.get(did)
        seller = (p.get("seller") or {}).get("id") or d.exporter_id
        for it in items.get(did, []):
            line = assessed.get(it.line_no) or {}
            value = float(line.get("customs_value") or it.value)
            rows.append(
                {
                    "declaration_id": d.reference,
                    "date": d.submitted_at.date().isoformat(),
                    "office": d.office,
                    "transport_mode": (p.get("transport") or {}).get("mode"),
                    "departure_country": p.get("country_of_dispatch"),
                    "origin": it.origin,
                    "declarant_id": d.declarant_id,
                    "importer_id": d.importer_id,
                    "seller_id": seller,
                    "hs_code": it.tariff_code,
                    "tax_rate": round(float(it.duty) / value * 100, 4) if value > 0 else 0.0,
                    "net_mass_kg": float(it.net_mass_kg),
                    "value": value,
                    "aeo": False,
                    "fraud": float(o["found"]) if o else np.nan,
                    "additional_duty": o["duty"] if o else np.nan,
                    "inspected_at": o["at"].isoformat() if o else None,
                    "lane": d.lane,
                    "risk_score": d.risk_score,
                    "label_source": sources.get(did),
                }
            )
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def _fold_audits(
    session: Session, decls: dict[int, Any], outcomes: dict[int, dict[str, Any]], sources: dict[int, str]
) -> None:
    """Audit results folded into the inspection outcomes (in place), oldest audit first."""
    from smartcustoms.risk.postclearance import audit_labels

    results = audit_labels(session)
    if not results:
        return
    by_reference = {d.reference: did for did, d in decls.items()}
    by_importer: dict[str, list[int]] = {}
    for did, d in decls.items():
        by_importer.setdefault(d.importer_id, []).append(did)
    for result in results:
        irregular = {
            by_reference[f["reference"]]: float(f["additional_duty"])
            for f in result.findings
            if f["reference"] in by_reference
        }
        for did in by_importer.get(result.importer_id, ()):
            day = decls[did].submitted_at.date()
            if not result.period_from <= day <= result.period_to:
                continue
            acc = outcomes.setdefault(did, {"found": 0, "duty": 0.0, "at": result.recorded_at})
            if did in irregular:
                acc["found"] = 1
                acc["duty"] += irregular[did]
            acc["at"] = max(acc["at"], result.recorded_at)
            sources[did] = "inspection+audit" if sources.get(did, "audit") != "audit" else "audit"


LABEL_COLUMNS = [
    "declaration_id",
    "date",
    "office",
    "transport_mode",
    "departure_country",
    "origin",
    "declarant_id",
    "importer_id",
    "seller_id",
    "hs_code",
    "tax_rate",
    "net_mass_kg",
    "value",
    "aeo",
    "fraud",
    "additional_duty",
    "inspected_at",
    "lane",
    "risk_score",
    "label_source",
]


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Label export (or a CSV of it) -> the engine's canonical frame (missing columns empty)."""
    from smartcustoms.risk.kcs import CANONICAL

    out = frame.copy()
    for col in CANONICAL:
        if col not in out.columns:
            out[col] = None
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
    for col in ("tax_rate", "net_mass_kg", "value", "fraud", "additional_duty"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    out["aeo"] = out["aeo"].fillna(False).astype(bool)
    for col in CANONICAL:
        if col not in ("date", "tax_rate", "net_mass_kg", "value", "aeo"):
            s = out[col]
            out[col] = s.astype(object).where(s.notna(), None)
            out[col] = [None if v is None else str(v) for v in out[col]]
    return out.reset_index(drop=True)


def read_platform(paths: Iterable[str | Path], *, require_labels: bool) -> pd.DataFrame:
    """Label exports (CSV) -> canonical frame; a missing column or a bad value names the column."""
    frames = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise RiskInputError(Problem("not_found", ("data",), t("data file not found: {path}", path=p)))
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
        missing = [c for c in REQUIRED if c not in raw.columns]
        if require_labels and "fraud" not in raw.columns:
            missing.append("fraud")
        if missing:
            raise RiskInputError(
                [
                    Problem("missing_column", (c,), t("{source}: missing column '{column}'", source=p.name, column=c))
                    for c in missing
                ]
            )
        problems = []
        for col in ("tax_rate", "net_mass_kg", "value", "fraud", "additional_duty"):
            if col in raw.columns:
                v = pd.to_numeric(raw[col], errors="coerce")
                bad = v.isna() & raw[col].notna()
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    problems.append(
                        Problem(
                            "wrong_type",
                            (col,),
                            t(
                                "{source}: column '{column}' must be numeric; row {row} has {value}",
                                source=p.name,
                                column=col,
                                row=row + 1,
                                value=repr(raw[col].iloc[row]),
                            ),
                        )
                    )
        dates = pd.to_datetime(raw["date"], errors="coerce", format="%Y-%m-%d")
        if dates.isna().any():
            row = int(np.flatnonzero(dates.isna().to_numpy())[0])
            problems.append(
                Problem(
                    "wrong_type",
                    ("date",),
                    t(
                        "{source}: column 'date' must be YYYY-MM-DD; row {row} has {value}",
                        source=p.name,
                        row=row + 1,
                        value=repr(raw["date"].iloc[row]),
                    ),
                )
            )
        if problems:
            raise RiskInputError(problems)
        frames.append(raw)
    out = canonical(pd.concat(frames, ignore_index=True))
    if require_labels:
        check_labels(out)
    return out


REQUIRED = ("declaration_id", "date", "importer_id", "declarant_id", "hs_code", "origin", "net_mass_kg", "value")
