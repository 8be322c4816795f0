"""Plugging the documents slice into clearance: a declaration that claims an FTA preference is linked to
the partner's certificate of origin it cites (now, or when the certificate arrives later).

The preference itself is decided by the clearance core through `exchange.certificate_for_declaration`;
this hook only keeps the link, so officers and the audit trail see which certificate backed which filing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from smartcustoms.documents import store

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartcustoms.clearance.checks import Stored
    from smartcustoms.clearance.store import DeclarationRow
    from smartcustoms.platform.auth import Principal


class PreferenceClaimHook:
    """Link each (declaration, proof of origin reference) to the received certificate, if already here."""

    name = "documents-preference-claims"

    def stored(self, session: Session, who: Principal, declarations: Sequence[Stored]) -> None:
        claims: dict[tuple[str, str], str] = {}
        for d in declarations:
            for item in d.decl.items:
                pref = item.preference
                if pref is not None and pref.proof_of_origin_ref:
                    claims.setdefault((d.reference, pref.proof_of_origin_ref), pref.fta)
        if not claims:
            return
        refs = sorted({ref for _, ref in claims})
        found: dict[str, int] = {}
        for row_id, number, dec_ref, target in session.execute(
            select(
                store.ReceivedRow.id,
                store.ReceivedRow.reference,
                store.ReceivedRow.declaration_ref,
                store.ReceivedRow.target_hash,
            )
            .where(
                or_(
                    store.ReceivedRow.reference.in_(refs),
                    store.ReceivedRow.declaration_ref.in_(refs),
                    store.ReceivedRow.target_hash.in_([r.lower() for r in refs]),
                )
            )
            .order_by(store.ReceivedRow.id)
        ):
            for key in (number, dec_ref, target):
                if key:
                    found[key] = int(row_id)
        existing = {
            (declaration_ref, proof_ref)
            for declaration_ref, proof_ref in session.execute(
                select(store.ClaimRow.declaration_ref, store.ClaimRow.proof_ref).where(
                    store.ClaimRow.declaration_ref.in_(sorted({d for d, _ in claims}))
                )
            )
        }
        now = datetime.now(UTC)
        for (reference, ref), fta in claims.items():
            if (reference, ref) in existing:
                continue  # an amendment citing the same certificate
            session.add(
                store.ClaimRow(
                    declaration_ref=reference,
                    proof_ref=ref,
                    fta=fta,
                    received_id=found.get(ref) or found.get(ref.lower()),
                    linked_at=now,
                )
            )

    def moved(self, session: Session, row: DeclarationRow, action: Any, frm: Any, to: Any) -> None:
        return None


def register() -> None:
    from smartcustoms.clearance import checks

    checks.register_hook(PreferenceClaimHook())
