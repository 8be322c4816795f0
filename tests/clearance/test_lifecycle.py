from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcustoms.clearance.lifecycle import FINAL, TRANSITIONS, Action, Status, allowed_actions, next_status
from smartcustoms.platform.errors import Conflict


def test_happy_path_c3_to_release() -> None:
    s = Status.DRAFT
    for action in (Action.SUBMIT, Action.ASSESS, Action.ROUTE_C3, Action.RECORD_INSPECTION, Action.RELEASE):
        s = next_status(s, action)
    assert s is Status.RELEASED


def test_amendment_cycle_returns_to_assessment() -> None:
    s = next_status(Status.UNDER_CHECK, Action.REQUEST_AMENDMENT)
    s = next_status(s, Action.AMEND)
    assert next_status(s, Action.ASSESS) is Status.ASSESSED


@pytest.mark.parametrize("final", sorted(FINAL))
def test_final_states_refuse_everything(final: Status) -> None:
    assert allowed_actions(final) == []
    with pytest.raises(Conflict) as err:
        next_status(final, Action.RELEASE)
    assert "final" in err.value.problems[0].message


def test_illegal_transition_names_allowed_actions() -> None:
    with pytest.raises(Conflict) as err:
        next_status(Status.UNDER_CHECK, Action.RECORD_INSPECTION)
    assert err.value.problems[0].code == "illegal_transition"
    assert "release" in err.value.problems[0].message


@given(st.sampled_from(list(Status)), st.sampled_from(list(Action)))
def test_next_status_is_total_and_consistent(status: Status, action: Action) -> None:
    if (status, action) in TRANSITIONS:
        assert next_status(status, action) is TRANSITIONS[(status, action)]
    else:
        with pytest.raises(Conflict):
            next_status(status, action)


def test_every_state_but_draft_is_reachable() -> None:
    reachable = {Status.DRAFT}
    frontier = [Status.DRAFT]
    while frontier:
        s = frontier.pop()
        for (src, _a), dst in TRANSITIONS.items():
            if src is s and dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == set(Status)
