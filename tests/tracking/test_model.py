"""Detectors on a synthetic corridor: clean, detour, sparse fixes, stop, delay, seal, signal, bad clocks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.tracking.model import (
    DetectorConfig,
    Fix,
    LocalProjection,
    Route,
    TripMonitor,
    learn_route,
    monitor_trip,
    replay,
)
from tests.tracking import scenario as sc


def run(fixes: list[Fix], config: DetectorConfig | None = None, deadline_min: float = 60.0) -> TripMonitor:
    m = monitor_trip(sc.plan(deadline_min), {"R1": sc.route()}, sc.zones(), config)
    for f in fixes:
        m.observe(f)
    return m


def types(m: TripMonitor) -> list[str]:
    return [a.type for a in m.alerts]


def test_projection_is_metric() -> None:
    proj = LocalProjection(25.0, 121.0)
    x, y = proj.xy(25.01, 121.01)
    assert y == pytest.approx(1112, rel=1e-3)
    assert x == pytest.approx(1008, rel=2e-3)
    assert proj.latlon(x, y) == pytest.approx((25.01, 121.01))
    r = sc.route()
    assert r.length_m == pytest.approx(20_160, rel=5e-3)
    d, m = r.locate(25.0 + 500 / sc.M_PER_DEG_LAT, 121.1)
    assert d == pytest.approx(500, rel=1e-3)
    assert m == pytest.approx(r.length_m / 2, rel=1e-3)


def test_clean_trip_raises_nothing_and_closes_sealed() -> None:
    m = run(sc.drive())
    assert m.alerts == []
    assert m.phase == "closed"
    assert m.arrived_sealed is True


def test_detour_raises_one_deviation_with_interpolated_start_and_end() -> None:
    fixes = sc.drive(north_m={i: 1000.0 for i in range(20, 31)})
    m = run(fixes)
    assert types(m) == ["deviation"]
    a = m.alerts[0]
    # exit interpolated between fix 19 (inside) and fix 20 (1 km out): threshold 150 m → 15 % of the way
    assert a.start == sc.T0 + timedelta(seconds=19 * 30 + 0.15 * 30)
    assert a.end is not None and sc.T0 + timedelta(seconds=30 * 30) < a.end < sc.T0 + timedelta(seconds=31 * 30)
    assert "corridor" in a.reason and a.rule_version.startswith("tracking-detectors/")
    assert a.severity == "high"


def test_small_gps_noise_inside_margin_is_not_a_deviation() -> None:
    m = run(sc.drive(north_m={i: (120.0 if i % 2 else -120.0) for i in range(5, 50)}))
    assert m.alerts == []


def test_short_excursion_below_min_time_is_ignored() -> None:
    m = run(sc.drive(north_m={30: 400.0}), DetectorConfig(deviation_min_s=120))
    assert m.alerts == []


def test_sparse_fix_outside_raises_at_once() -> None:
    # one fix every 5 minutes: a single fix 2 km off the road has been outside for minutes already
    fixes = sc.drive(n=7, step_s=300, north_m={3: 2000.0})
    m = run(fixes, DetectorConfig(signal_lost_s=3600))
    assert types(m) == ["deviation"]
    assert m.alerts[0].raised_at == sc.T0 + timedelta(seconds=900)


def test_segment_between_sparse_fixes_checked_on_a_u_shaped_route() -> None:
    lat0, lon0 = 25.0, 121.0
    dlat = 10_000 / sc.M_PER_DEG_LAT
    dlon = 1_000 / (sc.M_PER_DEG_LAT * 0.9063)
    u = Route("U", [(lat0, lon0), (lat0 + dlat, lon0), (lat0 + dlat, lon0 + dlon), (lat0, lon0 + dlon)], 100.0)
    plan = sc.plan()
    west = (lat0 + dlat / 2, lon0)
    east = (lat0 + dlat / 2, lon0 + dlon)

    def monitor() -> TripMonitor:
        return TripMonitor(plan, u, None, None, config=DetectorConfig(signal_lost_s=7200, stop_min_s=7200))

    fast = monitor()
    fast.observe(Fix("T1", sc.T0, *west))
    fast.observe(Fix("T1", sc.T0 + timedelta(seconds=90), *east))  # 11 km of road in 90 s: it cut across
    assert [a.type for a in fast.alerts] == ["deviation"]
    assert "between fixes" in fast.alerts[0].reason
    slow = monitor()
    slow.observe(Fix("T1", sc.T0, *west))
    slow.observe(Fix("T1", sc.T0 + timedelta(minutes=15), *east))  # 44 km/h along the road: plausible
    assert slow.alerts == []


def test_unexpected_stop_and_clear() -> None:
    m = run(sc.drive(hold={30: 30}), deadline_min=120)  # 15 min stationary mid-route
    assert types(m) == ["stop"]
    a = m.alerts[0]
    assert a.start == sc.T0 + timedelta(seconds=30 * 30)
    assert a.end == sc.T0 + timedelta(seconds=60 * 30)
    assert a.raised_at == sc.T0 + timedelta(seconds=50 * 30)


def test_stop_in_authorised_zone_is_fine() -> None:
    m = run(sc.drive(hold={0: 60, 60: 60}), deadline_min=120)  # long waits inside origin and destination
    assert m.alerts == []


def test_overdue_predicted_before_deadline_then_escalated() -> None:
    fixes = sc.drive(n=121, step_s=60)  # 20 km in 2 h, deadline 60 min
    m = run(fixes)
    assert types(m) == ["overdue"]
    a = m.alerts[0]
    assert a.raised_at < sc.plan().deadline
    assert a.severity == "high"  # escalated once the deadline passed
    assert a.end is not None and a.end <= fixes[-1].time  # cleared on entering the destination zone


def test_actual_lateness_without_prediction() -> None:
    fixes = sc.drive(start=sc.T0 + timedelta(minutes=45))  # leaves late, 30 min trip, deadline at 60 min
    m = run(fixes, DetectorConfig(eta_min_elapsed_s=10**9))
    assert types(m) == ["overdue"]
    assert m.alerts[0].start == sc.plan().deadline


def test_seal_opened_and_closed_again() -> None:
    m = run(sc.drive(seal={i: "open" for i in range(25, 29)}))
    assert types(m) == ["seal"]
    a = m.alerts[0]
    assert a.severity == "critical" and a.condition == "seal:open"
    assert a.end == sc.T0 + timedelta(seconds=29 * 30)
    assert m.arrived_sealed is True


def test_leaving_origin_unsealed_and_arriving_tampered() -> None:
    m = run(sc.drive(seal={**{i: "open" for i in range(3)}, 58: "tampered", 59: "tampered", 60: "tampered"}))
    assert [a.condition for a in m.alerts] == ["seal:open", "seal:tampered"]
    assert m.arrived_sealed is False
    assert m.open_alerts  # the tampered seal stays open for an officer


def test_signal_lost_gap() -> None:
    m = run(sc.drive(skip=set(range(20, 45))))  # 12.5 min without fixes
    assert types(m) == ["signal_lost"]
    a = m.alerts[0]
    assert a.start == sc.T0 + timedelta(seconds=19 * 30)
    assert a.end == sc.T0 + timedelta(seconds=45 * 30)


def test_tick_raises_signal_lost_and_lateness_without_fixes() -> None:
    fixes = sc.drive()[:20]
    m = run(fixes)
    assert m.tick(fixes[-1].time + timedelta(minutes=5)) == []
    changes = m.tick(sc.T0 + timedelta(minutes=61))
    assert sorted(c.alert.type for c in changes) == ["overdue", "signal_lost"]
    assert m.tick(sc.T0 + timedelta(minutes=62)) == []  # deduplicated


def test_out_of_order_duplicates_and_future_clock() -> None:
    fixes = sc.drive()
    m = monitor_trip(sc.plan(), {"R1": sc.route()}, sc.zones())
    for f in fixes[:30]:
        m.observe(f)
    m.observe(fixes[29])
    m.observe(fixes[10])
    m.observe(Fix("T1", fixes[30].time + timedelta(hours=2), 25.0, 121.1, received_at=fixes[30].time))
    for f in fixes[30:]:
        m.observe(f)
    assert m.counters == {"fixes": 61, "duplicates": 1, "out_of_order": 1, "future": 1}
    assert "clock skew" in m.flags[0][1]
    assert m.alerts == []


def test_replay_sorts_and_ends_open_trips() -> None:
    fixes = sc.drive()[:40]
    alerts = replay([sc.plan()], {"R1": sc.route()}, sc.zones(), reversed(fixes), end=sc.T0 + timedelta(minutes=70))
    assert [a.type for a in alerts] == ["signal_lost", "overdue"] or sorted(a.type for a in alerts) == [
        "overdue",
        "signal_lost",
    ]
    assert all(a.end is None for a in alerts)


def test_grid_locate_matches_exhaustive_search() -> None:
    import random

    rng = random.Random(7)
    lat0, lon0 = 53.4, -2.9
    pts = [(lat0 + rng.uniform(-0.05, 0.05), lon0 + rng.uniform(-0.08, 0.08)) for _ in range(40)]
    r = Route("zigzag", pts, 80.0)
    for _ in range(2000):
        x, y = rng.uniform(-8000, 8000), rng.uniform(-8000, 8000)
        fast = r.locate_xy(x, y)
        slow = r.locate_xy_all(x, y)
        assert fast[0] == pytest.approx(slow[0], abs=1e-6)


def test_a_long_stop_does_not_make_the_pace_look_late() -> None:
    # 15 min stationary mid-route; deadline has 25 min of slack: a stop alert, no overdue prediction
    m = run(sc.drive(hold={30: 30}), deadline_min=55)
    assert types(m) == ["stop"]


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(-600, 3600),  # seconds after the previous fix (negative: out of order)
            st.floats(-3000, 3000),  # metres north of the road
            st.floats(0, 1),  # fraction along the route
            st.sampled_from([None, "closed", "open", "tampered"]),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_any_fix_sequence_keeps_alerts_well_formed(steps: list[tuple[float, float, float, str | None, bool]]) -> None:
    m = monitor_trip(sc.plan(), {"R1": sc.route()}, sc.zones())
    t = sc.T0
    for dt, north, frac, seal, low in steps:
        t = t + timedelta(seconds=dt)
        lon = sc.LON0 + frac * (sc.LON1 - sc.LON0)
        m.observe(Fix("T1", t, sc.LAT + north / sc.M_PER_DEG_LAT, lon, seal, low))  # type: ignore[arg-type]
    m.tick(t + timedelta(hours=2))
    conditions = [a.condition for a in m.alerts if a.end is None]
    assert len(conditions) == len(set(conditions))  # one open alert per condition
    for a in m.alerts:
        assert a.end is None or a.end >= a.start
        assert a.type in ("deviation", "stop", "overdue", "seal", "signal_lost")
        assert a.reason and a.rule_version


def test_replay_adapts_signal_lost_to_sparse_reporting() -> None:
    sparse = sc.drive(n=5, step_s=900)  # a unit reporting every 15 min
    args = ([sc.plan(120)], {"R1": sc.route()}, sc.zones(), sparse)
    assert [a.type for a in replay(*args)] == ["signal_lost"] * 3
    assert replay(*args, adaptive_signal=True) == []


def test_route_variant_is_inside_the_corridor_with_interpolated_progress() -> None:
    """A variant (another approved street, 600 m north between km 5 and 10) is inside; progress along it is
    interpolated from its ends projected on the centre line, so ETA and shortcuts still work."""
    north = 600 / sc.M_PER_DEG_LAT
    variant = [(sc.LAT, 121.05), (sc.LAT + north, 121.06), (sc.LAT + north, 121.09), (sc.LAT, 121.1)]
    base = sc.route()
    r = Route("R1", base.coords, 100.0, [variant])
    d, m = r.locate(sc.LAT + north, 121.075)
    assert d == pytest.approx(0, abs=1)
    assert m == pytest.approx(base.locate(sc.LAT, 121.075)[1], rel=1e-3)
    assert r.length_m == base.length_m and r.point_at(5000) == base.point_at(5000)
    assert r.corridor_polygon().contains(shapely.Point(121.075, sc.LAT + north))
    on_variant = run(sc.drive(north_m={i: 600.0 for i in range(18, 27)}))
    assert types(on_variant) == ["deviation"]  # the plain route: a deviation
    m2 = monitor_trip(sc.plan(), {"R1": r}, sc.zones())
    for f in sc.drive(north_m={i: 600.0 for i in range(18, 27)}):
        m2.observe(f)
    assert types(m2) == []  # the same drive on the approved variant: nothing


def test_learn_route_turns_another_street_into_a_variant_without_widening() -> None:
    north = 400 / sc.M_PER_DEG_LAT
    straight = [(sc.LAT + (k % 3 - 1) * 20 / sc.M_PER_DEG_LAT, 121.0 + k * 0.002) for k in range(101)]
    other = [(la + (north if 40 <= k <= 50 else 0.0), lo) for k, (la, lo) in enumerate(straight[::2])]
    r = learn_route("R1", [straight, straight[1::2], straight[::3], other])
    assert r.corridor_m < 60  # median of per-track 99th percentiles (+30 m): the other street widens nothing
    assert len(r.variants) == 1
    assert r.locate(sc.LAT + north, 121.18)[0] < 25  # on the variant (its fixes zig-zag by 20 m)
