"""The declaration's state machine: which action moves a declaration from which state to which."""

from __future__ import annotations

from enum import StrEnum

from smartcustoms.platform.errors import Conflict, Problem
from smartcustoms.platform.i18n import t


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ASSESSED = "assessed"
    UNDER_CHECK = "under_check"
    UNDER_INSPECTION = "under_inspection"
    HELD = "held"
    AMENDMENT_REQUESTED = "amendment_requested"
    AMENDED = "amended"
    RELEASED = "released"
    REJECTED = "rejected"


class Action(StrEnum):
    SUBMIT = "submit"
    ASSESS = "assess"
    ROUTE_C1 = "route_c1"
    ROUTE_C2 = "route_c2"
    ROUTE_C3 = "route_c3"
    ESCALATE = "escalate"
    HOLD = "hold"
    REQUEST_AMENDMENT = "request_amendment"
    AMEND = "amend"
    RELEASE = "release"
    REJECT = "reject"
    RESUME = "resume"
    RECORD_INSPECTION = "record_inspection"
    FLAG = "flag"
    """A finding raised after filing (scan, late manifest, trade document) that changes no status by itself."""


class Lane(StrEnum):
    C1 = "C1"
    C2 = "C2"
    C3 = "C3"


S, A = Status, Action

STATUS_WORDS = {
    S.DRAFT: t("draft"),
    S.SUBMITTED: t("submitted"),
    S.ASSESSED: t("assessed"),
    S.UNDER_CHECK: t("under_check"),
    S.UNDER_INSPECTION: t("under_inspection"),
    S.HELD: t("held"),
    S.AMENDMENT_REQUESTED: t("amendment_requested"),
    S.AMENDED: t("amended"),
    S.RELEASED: t("released"),
    S.REJECTED: t("rejected"),
}
"""A status as a word inside a message: the code in English (messages read as before), a word elsewhere."""
TYPE_WORDS = {"import": t("import"), "export": t("export")}
"""A declaration type (a permit's direction) as a word inside a message: the code in English, a word elsewhere."""
MODE_WORDS = {
    "sea": t("sea"),
    "rail": t("rail"),
    "road": t("road"),
    "air": t("air"),
    "post": t("post"),
    "fixed": t("fixed"),
    "inland_water": t("inland_water"),
}
"""A transport mode (WCO/UNECE Rec. 19) as a word inside a message: the code in English, a word elsewhere."""
ACTION_WORDS = {
    A.SUBMIT: t("submit"),
    A.ASSESS: t("assess"),
    A.ROUTE_C1: t("route_c1"),
    A.ROUTE_C2: t("route_c2"),
    A.ROUTE_C3: t("route_c3"),
    A.ESCALATE: t("escalate"),
    A.HOLD: t("hold"),
    A.REQUEST_AMENDMENT: t("request_amendment"),
    A.AMEND: t("amend"),
    A.RELEASE: t("release"),
    A.REJECT: t("reject"),
    A.RESUME: t("resume"),
    A.RECORD_INSPECTION: t("record_inspection"),
    A.FLAG: t("flag"),
}

TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (S.DRAFT, A.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, A.ASSESS): S.ASSESSED,
    (S.AMENDED, A.ASSESS): S.ASSESSED,
    (S.ASSESSED, A.ROUTE_C1): S.RELEASED,
    (S.ASSESSED, A.ROUTE_C2): S.UNDER_CHECK,
    (S.ASSESSED, A.ROUTE_C3): S.UNDER_INSPECTION,
    (S.UNDER_CHECK, A.ESCALATE): S.UNDER_INSPECTION,
    (S.UNDER_CHECK, A.RELEASE): S.RELEASED,
    (S.UNDER_CHECK, A.HOLD): S.HELD,
    (S.UNDER_CHECK, A.REQUEST_AMENDMENT): S.AMENDMENT_REQUESTED,
    (S.UNDER_CHECK, A.REJECT): S.REJECTED,
    (S.UNDER_INSPECTION, A.RECORD_INSPECTION): S.UNDER_INSPECTION,
    (S.UNDER_INSPECTION, A.RELEASE): S.RELEASED,
    (S.UNDER_INSPECTION, A.HOLD): S.HELD,
    (S.UNDER_INSPECTION, A.REQUEST_AMENDMENT): S.AMENDMENT_REQUESTED,
    (S.UNDER_INSPECTION, A.REJECT): S.REJECTED,
    (S.HELD, A.RESUME): S.UNDER_CHECK,
    (S.HELD, A.ESCALATE): S.UNDER_INSPECTION,
    (S.HELD, A.RELEASE): S.RELEASED,
    (S.HELD, A.REJECT): S.REJECTED,
    (S.HELD, A.REQUEST_AMENDMENT): S.AMENDMENT_REQUESTED,
    (S.AMENDMENT_REQUESTED, A.AMEND): S.AMENDED,
    (S.AMENDMENT_REQUESTED, A.REJECT): S.REJECTED,
    (S.UNDER_CHECK, A.AMEND): S.AMENDED,
    (S.HELD, A.AMEND): S.AMENDED,
}

FINAL = frozenset({S.RELEASED, S.REJECTED})
OFFICER_ACTIONS = frozenset({A.ESCALATE, A.HOLD, A.REQUEST_AMENDMENT, A.RELEASE, A.REJECT, A.RESUME})
"""Decisions an officer records through the decision form."""
REASON_REQUIRED = frozenset({A.HOLD, A.REQUEST_AMENDMENT, A.REJECT})


def next_status(current: Status, action: Action) -> Status:
    """Apply `action` to `current`, refusing transitions the lifecycle does not allow."""
    target = TRANSITIONS.get((current, action))
    if target is None:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == current)
        message = (
            t(
                "Cannot {action_text} a declaration that is {status_text}; allowed now: {allowed}",
                action_text=ACTION_WORDS[action],
                status_text=STATUS_WORDS[current],
                allowed=", ".join(allowed),
            )
            if allowed
            else t(
                "Cannot {action_text} a declaration that is {status_text}; the declaration is final",
                action_text=ACTION_WORDS[action],
                status_text=STATUS_WORDS[current],
            )
        )
        raise Conflict(Problem("illegal_transition", ("status",), message))
    return target


def allowed_actions(current: Status) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s == current]
