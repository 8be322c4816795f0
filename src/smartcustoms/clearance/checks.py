"""Checks other slices run on every declaration before its lane is final, and hooks on its lifecycle.

The single window (permits, manifests, trade documents) and X-ray triage plug in here without the
clearance core knowing them: a slice registers a `DeclarationCheck` (run inside the filing's
transaction, may raise the lane or put the filing on hold) and/or a `LifecycleHook` (told when
declarations are stored and when they move, e.g. to draw down a permit's allowance on release).
Findings that arrive after filing (a scan, a late manifest) go through `service.raise_findings`.

Slices register by exposing `smartcustoms.<slice>.checks` with a `register()` function; the
registry imports them once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from smartcustoms.clearance.lanes import LANE_ORDER, PAPERLESS, DeclarationFacts, LaneDecision
from smartcustoms.clearance.lifecycle import Action, Lane, Status
from smartcustoms.platform.i18n import t_plain
from smartcustoms.platform.slices import SLICES, slice_module

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.store import DeclarationRow
    from smartcustoms.platform.auth import Principal


@dataclass(frozen=True)
class Finding:
    """One problem a check found, with where it is, how bad, and the rule version behind it.

    `lane` is the least lane the finding calls for (None: informational); `hold` puts the declaration
    on hold until it is amended or an officer resumes it; `score` (0..1) raises the risk score.
    """

    source: str
    code: str
    message: str
    path: tuple[str | int, ...] = ()
    lane: Lane | None = Lane.C2
    hold: bool = False
    score: float = 0.5
    version: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "code": self.code,
            "message": self.message,
            "path": list(self.path),
            "lane": self.lane.value if self.lane else None,
            "hold": self.hold,
            "score": self.score,
            "version": self.version,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            source=str(data["source"]),
            code=str(data["code"]),
            message=str(data["message"]),
            path=tuple(data.get("path") or ()),
            lane=Lane(data["lane"]) if data.get("lane") else None,
            hold=bool(data.get("hold", False)),
            score=float(data.get("score", 0.0)),
            version=str(data.get("version", "")),
            detail=dict(data.get("detail") or {}),
        )


@dataclass
class CheckContext:
    """What a check sees of one filing. `cache` lives as long as one submission, one batch, or one group of
    filings planned together by the group committer (several filers: key anything filer-specific by filer)."""

    session: Session
    who: Principal
    on: date
    cache: dict[str, Any]
    reference: str | None = None
    """The declaration's reference on amendment; None on first filing."""
    derived: dict[str, Any] = field(default_factory=dict)
    """What a check derives from this filing and its lifecycle hook needs again when the filing is stored
    (`Stored.derived`), so it is not worked out twice."""


class DeclarationCheck(Protocol):
    """A check may also define `prefetch(ctx, decls)`: called once before a batch's filings are checked,
    so it can read what the whole batch needs in one query and keep it in `ctx.cache`."""

    name: str

    def check(self, ctx: CheckContext, decl: DeclarationIn, facts: DeclarationFacts) -> Sequence[Finding]: ...


@dataclass(frozen=True)
class Stored:
    """A declaration just written, as lifecycle hooks see it."""

    declaration_id: int
    reference: str
    decl: DeclarationIn
    status: Status
    findings: tuple[Finding, ...]
    version: int = 1
    derived: dict[str, Any] = field(default_factory=dict)
    """`CheckContext.derived` of the filing's checks (empty where it was not checked in this process)."""


class LifecycleHook(Protocol):
    name: str

    def stored(self, session: Session, who: Principal, declarations: Sequence[Stored]) -> None:
        """After new declarations (or an amendment, as version > 1) are written, same transaction."""

    def moved(self, session: Session, row: DeclarationRow, action: Action, frm: Status, to: Status) -> None:
        """After a declaration changed status, same transaction."""


_checks: list[DeclarationCheck] = []
_hooks: list[LifecycleHook] = []
_loaded = False
_lock = threading.Lock()


def register_check(check: DeclarationCheck) -> None:
    if all(c.name != check.name for c in _checks):
        _checks.append(check)


def register_hook(hook: LifecycleHook) -> None:
    if all(h.name != hook.name for h in _hooks):
        _hooks.append(hook)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for name in SLICES:
            if name == "clearance":
                continue
            module = slice_module(name, "checks")
            if module is not None and hasattr(module, "register"):
                module.register()
        _loaded = True


def checks() -> list[DeclarationCheck]:
    _load()
    return list(_checks)


def hooks() -> list[LifecycleHook]:
    _load()
    return list(_hooks)


def run_checks(ctx: CheckContext, decl: DeclarationIn, facts: DeclarationFacts) -> tuple[Finding, ...]:
    found: list[Finding] = []
    for check in checks():
        found.extend(check.check(ctx, decl, facts))
    return tuple(found)


def prefetch(ctx: CheckContext, decls: Sequence[DeclarationIn]) -> None:
    """Let the checks that can read ahead for a whole batch do so (one query instead of one per filing)."""
    for check in checks():
        ahead = getattr(check, "prefetch", None)
        if ahead is not None:
            ahead(ctx, decls)


def fold(decision: LaneDecision, findings: Sequence[Finding]) -> LaneDecision:
    """The lane decision raised by the findings: strictest lane, highest score, every reason and version."""
    if not findings:
        return decision
    lane, score = decision.lane, decision.score
    reasons = list(decision.reasons)
    versions = list(decision.versions)
    if lane is Lane.C1 and reasons == [PAPERLESS]:
        reasons = []
    for f in findings:
        if f.lane is not None and LANE_ORDER[f.lane] > LANE_ORDER[lane]:
            lane = f.lane
        if f.hold and LANE_ORDER[lane] < LANE_ORDER[Lane.C2]:
            lane = Lane.C2
        score = max(score, f.score)
        reasons.append(t_plain("{message} [{source}: {code}]", message=f.message, source=f.source, code=f.code))
        if f.version and f.version not in versions:
            versions.append(f.version)
    return LaneDecision(lane, score, tuple(reasons), tuple(versions))


def hold_reason(findings: Sequence[Finding]) -> str | None:
    """The note of the automatic hold, or None when no finding calls for one."""
    held = [f.message for f in findings if f.hold]
    return "; ".join(held) if held else None
