"""The trade-documents part in the clearance pipeline: structured invoices, packing lists and bills of
lading attached to a filing are compared with it at filing (findings for the lane), and kept with the
report once the declaration is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from smartcustoms.clearance import checks as clearance_checks
from smartcustoms.clearance.checks import CheckContext, Finding, Stored
from smartcustoms.singlewindow.trade_documents import service
from smartcustoms.singlewindow.trade_documents.model import compare

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartcustoms.clearance.lanes import DeclarationFacts
    from smartcustoms.clearance.lifecycle import Action, Status
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.store import DeclarationRow
    from smartcustoms.platform.auth import Principal


class DocumentCheck:
    name = "singlewindow-trade-documents"

    def check(self, ctx: CheckContext, decl: DeclarationIn, facts: DeclarationFacts) -> Sequence[Finding]:
        if not decl.documents:
            return ()
        docs, unreadable = service.documents_in_filing(decl)
        if not docs:
            return unreadable
        rules = ctx.cache.get("trade_documents.rules") or service.current_rules(ctx.session)
        ctx.cache["trade_documents.rules"] = rules
        payload = decl.model_dump(mode="json")
        checks = compare(payload, docs, rules, service.manifested_containers(ctx.session, payload))
        return [*unreadable, *service.findings_for(checks, rules)]


class DocumentKeeper:
    name = "singlewindow-trade-documents-keeper"

    def stored(self, session: Session, who: Principal, declarations: Sequence[Stored]) -> None:
        service.store_filed_documents(session, who, [s for s in declarations if s.decl.documents or s.version > 1])

    def moved(self, session: Session, row: DeclarationRow, action: Action, frm: Status, to: Status) -> None:
        return None


def register() -> None:
    clearance_checks.register_check(DocumentCheck())
    clearance_checks.register_hook(DocumentKeeper())
