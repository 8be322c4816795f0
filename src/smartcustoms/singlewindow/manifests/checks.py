"""The manifests part in the clearance pipeline: a declaration check at filing (its manifest lines and
their discrepancies) and a lifecycle hook that indexes declarations so later manifests find them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from smartcustoms.clearance import checks as clearance_checks
from smartcustoms.clearance.checks import CheckContext, Finding, Stored
from smartcustoms.singlewindow.manifests import service
from smartcustoms.singlewindow.manifests.model import (
    SOURCE,
    LineFacts,
    Rules,
    doc_refs_of,
    goods_of,
    match,
    unmatched,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartcustoms.clearance.lanes import DeclarationFacts
    from smartcustoms.clearance.lifecycle import Action, Status
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.store import DeclarationRow
    from smartcustoms.platform.auth import Principal

FILING = "(this filing)"


class ManifestCheck:
    """Matches the declaration being filed to the manifest lines of its transport documents."""

    name = "singlewindow-manifests"

    def check(self, ctx: CheckContext, decl: DeclarationIn, facts: DeclarationFacts) -> Sequence[Finding]:
        rules: Rules = ctx.cache.get("manifests.rules") or service.current_rules(ctx.session)
        ctx.cache["manifests.rules"] = rules
        goods = ctx.derived["manifests.goods"] = goods_of(FILING, decl)
        lines = self._lines(ctx, goods.doc_refs) if goods.doc_refs else []
        if not lines:  # most filings: nothing to match, so only a missing manifest can be said (as `match` would)
            missing = unmatched(goods, rules, ctx.on)
            return [] if missing is None else [service.to_finding(missing, rules)]
        others = []
        for ref, row in service.declarations_for_docs(ctx.session, goods.doc_refs).items():
            if ref != ctx.reference:
                others.append(service.goods_from_facts(ref, row.facts))
        result = match(lines, [goods, *others], rules, on=ctx.on, judge=[FILING])
        return [service.to_finding(d, rules) for d in result.discrepancies if d.reference == FILING]

    def prefetch(self, ctx: CheckContext, decls: Sequence[DeclarationIn]) -> None:
        """A batch's manifest lines in one query, by transport document reference."""
        refs = {ref for d in decls for ref in doc_refs_of(d)}
        by_doc: dict[str, list[LineFacts]] = {ref: [] for ref in refs}
        if refs:
            for line in service.lines_for_docs(ctx.session, refs):
                by_doc.setdefault(line.doc_ref.upper(), []).append(line)
        ctx.cache["manifests.lines"] = by_doc

    @staticmethod
    def _lines(ctx: CheckContext, doc_refs: Sequence[str] | frozenset[str]) -> list[LineFacts]:
        ahead: dict[str, list[LineFacts]] | None = ctx.cache.get("manifests.lines")
        refs = {r.upper() for r in doc_refs}
        if ahead is not None and refs <= ahead.keys():
            return [line for ref in sorted(refs) for line in ahead[ref]]
        return service.lines_for_docs(ctx.session, refs)


class ManifestIndex:
    """Keeps this part's view of declarations current, so a manifest filed later is matched to them."""

    name = "singlewindow-manifests-index"

    def stored(self, session: Session, who: Principal, declarations: Sequence[Stored]) -> None:
        service.index_declarations(
            session,
            [
                (
                    s.reference,
                    s.version,
                    s.derived.get("manifests.goods") or goods_of(s.reference, s.decl),  # the index reads no reference
                    [str(f.detail.get("key")) for f in s.findings if f.source == SOURCE and f.detail.get("key")],
                )
                for s in declarations
            ],
        )

    def moved(self, session: Session, row: DeclarationRow, action: Action, frm: Status, to: Status) -> None:
        if to.value == "rejected":
            service.forget_declaration(session, row.reference)


def register() -> None:
    clearance_checks.register_check(ManifestCheck())
    clearance_checks.register_hook(ManifestIndex())
