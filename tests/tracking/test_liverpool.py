"""Detectors on the real Liverpool bus route 14 recording (skipped when the shared data set is absent)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon

from smartcustoms.tracking.model import Fix, Route, TripMonitor, TripPlan, Zone, learn_route
from tests.conftest import shared_data

TRAIN = ("1097", "1105", "1111")


@pytest.fixture(scope="module")
def liverpool() -> tuple[dict[str, pd.DataFrame], Route, dict[str, Zone]]:
    path = shared_data("tracking", "movingpandas_examples", "liverpool_bus_route14_outbound.csv")
    df = pd.read_csv(path, dtype={"trip_id": str})
    df["t"] = pd.to_datetime(df["timestamp"], utc=True)
    trips = {tid: g.sort_values("t").drop_duplicates("t").reset_index(drop=True) for tid, g in df.groupby("trip_id")}
    base = trips["1105"]
    line = Route("14", list(zip(base.latitude, base.longitude, strict=True)), 1000.0)
    dists = [
        line.locate(la, lo)[0]
        for t in ("1097", "1111")
        for la, lo in zip(trips[t].latitude, trips[t].longitude, strict=True)
    ]
    route = Route("14", line.coords, max(50.0, float(np.percentile(dists, 99)) + 30.0))
    zones = {}
    for zid, (lat, lon) in {"A": line.coords[0], "B": line.coords[-1]}.items():
        x, y = route.projection.xy(lat, lon)
        ring = [
            route.projection.latlon(x + 250 * math.cos(a), y + 250 * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 24)
        ]
        zones[zid] = Zone(zid, Polygon([(lo, la) for la, lo in ring]))
    return trips, route, zones


def run(fixes: list[Fix], route: Route, zones: dict[str, Zone]) -> TripMonitor:
    dep = fixes[0].time
    m = TripMonitor(
        TripPlan(fixes[0].trip_id, "14", "A", "B", dep, dep + timedelta(hours=2)), route, zones["A"], zones["B"]
    )
    for f in fixes:
        m.observe(f)
    return m


def fixes(df: pd.DataFrame, tid: str) -> list[Fix]:
    return [
        Fix(tid, t.to_pydatetime(), float(a), float(o), "closed")
        for t, a, o in zip(df.t, df.latitude, df.longitude, strict=True)
    ]


def offset(route: Route, f: Fix, metres: float) -> Fix:
    """The fix moved `metres` perpendicular to the road."""
    x, y = route.projection.xy(f.latitude, f.longitude)
    _, m = route.locate_xy(x, y)
    (bx, by), (ax, ay) = route.point_at(m - 25), route.point_at(m + 25)
    norm = math.hypot(ax - bx, ay - by)
    lat, lon = route.projection.latlon(x - (ay - by) / norm * metres, y + (ax - bx) / norm * metres)
    return replace(f, latitude=lat, longitude=lon)


def envelope_excursion(trips: dict[str, pd.DataFrame], tid: str, route: Route) -> float:
    """How far (m) the trip gets from every other recorded trip: its largest distance to the nearest fix of
    any other trip. A trip inside the envelope the others draw drove where buses on this route drive."""
    proj = route.projection
    others = np.array(
        [proj.xy(a, o) for t, df in trips.items() if t != tid for a, o in zip(df.latitude, df.longitude, strict=True)]
    )
    mine = np.array([proj.xy(a, o) for a, o in zip(trips[tid].latitude, trips[tid].longitude, strict=True)])
    nearest = np.sqrt(((mine[:, None, :] - others[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    return float(nearest.max())


def test_clean_held_out_trips_raise_no_alerts(
    liverpool: tuple[dict[str, pd.DataFrame], Route, dict[str, Zone]],
) -> None:
    """Zero alerts on every clean trip that drives where the other buses drive; the corridor is learnt from
    three training trips only, the replayed trips are the other thirteen."""
    trips, route, zones = liverpool
    alerted = {
        tid: [a.type for a in run(fixes(df, tid), route, zones).alerts] for tid, df in trips.items() if tid not in TRAIN
    }
    excursion = {tid: envelope_excursion(trips, tid, route) for tid in alerted}
    inside = {tid for tid, e in excursion.items() if e < 2 * route.corridor_m}
    assert len(inside) == 12
    assert {tid: alerted[tid] for tid in inside if alerted[tid]} == {}
    # The one trip outside the envelope left the bus station by a street no other recorded trip used,
    # up to 280 m from all fifteen other tracks for four minutes: a real deviation, and the detector says so.
    (odd,) = set(alerted) - inside
    assert excursion[odd] > 250
    assert alerted[odd] == ["deviation"]


def test_injected_detour_on_a_real_trip(liverpool: tuple[dict[str, pd.DataFrame], Route, dict[str, Zone]]) -> None:
    trips, route, zones = liverpool
    track = fixes(trips["1101"], "1101")
    detour = [offset(route, f, 800.0) if 60 <= i < 75 else f for i, f in enumerate(track)]
    m = run(detour, route, zones)
    assert [a.type for a in m.alerts] == ["deviation"]
    assert m.alerts[0].start >= track[59].time


def track(df: pd.DataFrame) -> list[tuple[float, float]]:
    return list(zip(df.latitude.tolist(), df.longitude.tolist(), strict=True))


def test_route_learnt_from_every_complete_run_raises_nothing_on_the_other_trips(
    liverpool: tuple[dict[str, pd.DataFrame], Route, dict[str, Zone]],
) -> None:
    """The corridor trips chosen by a rule, not by hand: every complete run (first fix in the origin terminal,
    last in the destination terminal). Their other streets become variants; the other ten trips raise nothing."""
    trips, _, zones = liverpool
    runs = [
        tid
        for tid, df in trips.items()
        if zones["A"].contains(df.latitude.iloc[0], df.longitude.iloc[0])
        and zones["B"].contains(df.latitude.iloc[-1], df.longitude.iloc[-1])
    ]
    assert runs == ["1097", "1099", "1101", "1103", "1105", "1109"]
    route = learn_route("14", [track(trips[t]) for t in runs])
    assert 75 < route.corridor_m < 90 and len(route.variants) == 1  # 1103's exit from the bus station
    alerted = {tid: [a.type for a in run(fixes(df, tid), route, zones).alerts] for tid, df in trips.items()}
    assert {tid: a for tid, a in alerted.items() if a and tid not in runs} == {}


def test_leave_one_out_only_the_trip_on_an_unrecorded_street_alerts(
    liverpool: tuple[dict[str, pd.DataFrame], Route, dict[str, Zone]],
) -> None:
    """Each trip against the route learnt from the fifteen others: only 1103, whose street no other trip
    drives, raises an alert (a deviation), as it should."""
    trips, _, zones = liverpool
    alerted = {}
    for tid, df in trips.items():
        route = learn_route("14", [track(d) for t, d in trips.items() if t != tid])
        alerted[tid] = [a.type for a in run(fixes(df, tid), route, zones).alerts]
    assert {tid: a for tid, a in alerted.items() if a} == {"1103": ["deviation"]}
