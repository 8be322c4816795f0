"""Plug-in to clearance: an amended declaration is judged again against the scans already attached.

Without it an amendment would drop the X-ray conflict (findings are recomputed on amendment) and a
declaration whose scan shows meat could be re-filed as toys and released. Detections an officer rejected
do not count; a declaration amended to declare what was seen passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from smartcustoms.clearance import checks as clearance_checks
from smartcustoms.clearance.checks import CheckContext, Finding
from smartcustoms.clearance.lanes import DeclarationFacts
from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.xray.model import Box, DeclaredItem, Detection, conflicts
from smartcustoms.xray.store import DetectionRow, ScanRow


class ScansStillMatch:
    name = "xray-declared-vs-seen"

    def check(self, ctx: CheckContext, decl: Any, facts: DeclarationFacts) -> Sequence[Finding]:
        if ctx.reference is None:  # a first filing has no scan yet
            return []
        from smartcustoms.xray.service import alarm_threshold, consistency_rules

        rows = ctx.session.execute(
            select(DetectionRow, ScanRow.id)
            .join(ScanRow, ScanRow.id == DetectionRow.scan_id)
            .where(ScanRow.declaration_ref == ctx.reference, DetectionRow.verdict.is_distinct_from("rejected"))
        ).all()
        if not rows:
            return []
        versions = {d.label: (d.model_version, scan_id) for d, scan_id in rows}
        dets = [Detection(d.label, d.score, Box(d.x1, d.y1, d.x2, d.y2)) for d, _ in rows]
        items = [
            DeclaredItem(i.line_no, i.description, i.tariff_code, tuple(getattr(i, "permits", []) or ()))
            for i in decl.items
        ]
        out = []
        for c in conflicts(dets, items, consistency_rules(), alarm_threshold()):
            version, scan_id = versions[c.detection.label]
            out.append(
                Finding(
                    source="xray",
                    code=c.code,
                    message=c.message,
                    path=("scans", scan_id),
                    lane=Lane.C3,
                    score=round(c.detection.score, 4),
                    version=version,
                    detail={"scan_id": scan_id, **c.detail},
                )
            )
        return out


def register() -> None:
    clearance_checks.register_check(ScansStillMatch())
