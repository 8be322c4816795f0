"""The lifecycle through the API against its table: any sequence of officer decisions, inspections and
amendments moves a declaration exactly as `lifecycle.TRANSITIONS` says, refuses the rest with
`illegal_transition` and changes nothing then, and the timeline holds one event per transition."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcustoms.clearance.lifecycle import OFFICER_ACTIONS, TRANSITIONS, Action, Status
from tests.clearance.conftest import Env, declaration, watch_phones

INSPECT = "inspect"
AMEND = "amend"
STEPS = [*sorted(a.value for a in OFFICER_ACTIONS), INSPECT, AMEND]
WAITING = {Status.UNDER_CHECK, Status.UNDER_INSPECTION, Status.HELD}

_lrns = itertools.count()


def _take(env: Env, ref: str, step: str, lrn: str) -> Any:
    if step == INSPECT:
        body = {"result": "not_found"}
        return env.client.post(f"/declarations/{ref}/inspection", json=body, headers=env.h("officer"))
    if step == AMEND:
        body = {"declaration": declaration(lrn=lrn, freight="401.00"), "reason": "Freight corrected"}
        return env.client.put(f"/declarations/{ref}", json=body, headers=env.h("trader"))
    body = {"action": step, "reason": "Checked by the test"}
    return env.client.post(f"/declarations/{ref}/decisions", json=body, headers=env.h("officer"))


def _expected(status: Status, step: str) -> tuple[Status, int] | None:
    """The status after `step` and the events it adds, or None when the lifecycle refuses it."""
    if step == INSPECT:
        after = TRANSITIONS.get((status, Action.RECORD_INSPECTION))
        return None if after is None else (after, 1)
    if step == AMEND:  # amended, assessed again, routed again (to C3: the phones are still watched)
        return None if (status, Action.AMEND) not in TRANSITIONS else (Status.UNDER_INSPECTION, 3)
    after = TRANSITIONS.get((status, Action(step)))
    return None if after is None else (after, 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=8))
def test_any_sequence_of_steps_follows_the_lifecycle_table(env: Env, steps: list[str]) -> None:
    watch_phones(env)
    lrn = f"LIFE-{next(_lrns)}"
    filed = env.client.post("/declarations", json=declaration(lrn=lrn), headers=env.h("trader"))
    assert filed.status_code == 201, filed.text
    ref, status = filed.json()["reference"], Status(filed.json()["status"])
    assert status is Status.UNDER_INSPECTION
    events = 3  # submit, assess, route_c3
    for step in steps:
        expected = _expected(status, step)
        r = _take(env, ref, step, lrn)
        if expected is None:
            assert r.status_code == 409, (status, step, r.status_code, r.text)
            assert r.json()["problems"][0]["code"] == "illegal_transition"
        else:
            assert r.status_code == 200, (status, step, r.text)
            status, added = expected
            events += added
        now = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
        assert Status(now["status"]) is status, (step, now["status"])
        timeline = env.client.get(f"/declarations/{ref}/timeline", headers=env.h("officer")).json()
        assert len(timeline["events"]) == events
        assert timeline["events"][-1]["to_status"] == status.value
    # the officers' queue holds it exactly while it waits for them (each example adds at most one)
    queue = env.client.get("/queue?limit=500", headers=env.h("officer")).json()["items"]
    assert (ref in {q["reference"] for q in queue}) == (status in WAITING), status
