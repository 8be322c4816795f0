"""Plugs the permits check and the allowance hook into the clearance core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from smartcustoms.singlewindow.permits import service

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartcustoms.clearance.checks import CheckContext, Finding, Stored
    from smartcustoms.clearance.lanes import DeclarationFacts
    from smartcustoms.clearance.lifecycle import Action, Status
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.store import DeclarationRow
    from smartcustoms.platform.auth import Principal


class PermitCheck:
    """Every line whose code and direction need a permit is checked against the permits it cites."""

    name = "singlewindow-permits"

    def check(self, ctx: CheckContext, decl: DeclarationIn, facts: DeclarationFacts) -> Sequence[Finding]:
        return service.check_declaration(ctx, decl)


class AllowanceHook:
    """Reserve allowances at filing, make them final on release, give them back on rejection or amendment."""

    name = "singlewindow-permits-allowance"

    def stored(self, session: Session, who: Principal, declarations: Sequence[Stored]) -> None:
        service.reserve(session, who, declarations)

    def moved(self, session: Session, row: DeclarationRow, action: Action, frm: Status, to: Status) -> None:
        service.moved(session, row, action, frm, to)


def register() -> None:
    from smartcustoms.clearance import checks

    checks.register_check(PermitCheck())
    checks.register_hook(AllowanceHook())
