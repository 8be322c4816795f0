"""How a declaration is shown to API clients and pages: plain dicts, money as decimal strings."""

from __future__ import annotations

from typing import Any

from smartcustoms.clearance.lifecycle import OFFICER_ACTIONS, Status, allowed_actions
from smartcustoms.clearance.store import DeclarationRow, EventRow, InspectionRow, VersionRow
from smartcustoms.platform import i18n
from smartcustoms.platform.types import iso


def summary(row: DeclarationRow) -> dict[str, Any]:
    return {
        "reference": row.reference,
        "lrn": row.lrn,
        "type": row.declaration_type,
        "status": row.status,
        "lane": row.lane,
        "office": row.office,
        "declarant_id": row.declarant_id,
        "importer_id": row.importer_id,
        "risk_score": row.risk_score,
        "currency": row.assessment.get("national_currency"),
        "customs_value": str(row.customs_value),
        "total_due": str(row.total),
        "submitted_at": iso(row.submitted_at),
        "released_at": iso(row.released_at),
        "version": row.version,
    }


def detail(row: DeclarationRow) -> dict[str, Any]:
    out = summary(row)
    out.update(
        {
            "lane_reasons": row.lane_reasons,
            "lane_versions": row.lane_versions,
            "findings": row.findings or [],
            "assessment": row.assessment,
            "declaration": row.payload,
            "officer_actions": [a.value for a in allowed_actions(Status(row.status)) if a in OFFICER_ACTIONS],
            "links": {
                "self": f"/declarations/{row.reference}",
                "timeline": f"/declarations/{row.reference}/timeline",
                "release_note": f"/declarations/{row.reference}/release-note",
            },
        }
    )
    return out


def event(e: EventRow) -> dict[str, Any]:
    return {
        "at": iso(e.at),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "note": e.note,
        "detail": e.detail,
    }


def inspection(i: InspectionRow) -> dict[str, Any]:
    return {
        "at": iso(i.at),
        "officer": i.officer,
        "result": i.result,
        "findings": i.findings,
        "additional_duty": str(i.additional_duty),
    }


def version(v: VersionRow) -> dict[str, Any]:
    return {
        "version": v.version,
        "at": iso(v.at),
        "actor": v.actor,
        "reason": v.reason,
        "declaration": v.payload,
    }


def localised_view(view: dict[str, Any], lang: str) -> dict[str, Any]:
    """The words of a declaration view in `lang` (lane reasons, findings, assessment steps).

    Stored and returned in English where they always were (API compatibility); this block is added
    beside them, under `localized`, when the caller asks for another language.
    """
    assessment = view.get("assessment") or {}
    return {
        "lang": lang,
        "lane_reasons": i18n.translate_all(view.get("lane_reasons") or (), lang),
        "findings": [i18n.translate(str(f.get("message", "")), lang) for f in view.get("findings") or ()],
        "assessment_steps": i18n.translate_all(assessment.get("steps") or (), lang),
        "item_steps": {
            str(item.get("line_no")): i18n.translate_all(item.get("steps") or (), lang)
            for item in assessment.get("items") or ()
        },
    }
