"""Tracking benchmark: detection quality on the Liverpool bus route 14 trips, and decode+detect throughput.

Quality: a corridor is built from training trips; every other trip is replayed clean and with one
injected incident (detour, long stop, delay, seal opening, signal gap, and a detour seen through sparse
fixes). Per alert type: precision, recall, detection delay. Clean trips must raise nothing.
Throughput: GT06 frames (encoded from the same trips, many concurrent trips) through decode + detectors,
next to a baseline that locates points on the route with shapely instead of the numpy projection.

    PYTHONPATH=src /work/main/.venv/bin/python bench/tracking.py [CSV]
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point

from smartcustoms.tracking.model import Alert, DetectorConfig, Fix, Route, TripMonitor, TripPlan, Zone, learn_route
from smartcustoms.tracking.protocols import gt06, survey

DEFAULT_CSV = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/tracking/movingpandas_examples/liverpool_bus_route14_outbound.csv"
)
OUT = Path(__file__).resolve().parent / "results" / "tracking.json"
TRAIN = ["1097", "1105", "1111"]  # complete runs of the route: the corridor is learnt from these
TYPES = ["deviation", "stop", "overdue", "seal", "signal_lost"]
CONFIG = DetectorConfig()


def load(csv: Path) -> dict[str, pd.DataFrame]:
    df = pd.read_csv(csv, dtype={"trip_id": str, "vehicle_id": str})
    df["t"] = pd.to_datetime(df["timestamp"], utc=True)
    df = df.sort_values(["trip_id", "t"]).drop_duplicates(["trip_id", "t"])
    return {tid: g.reset_index(drop=True) for tid, g in df.groupby("trip_id")}


def build_route(trips: dict[str, pd.DataFrame]) -> tuple[Route, dict[str, Zone], float]:
    """Centre line = the densest training trip; half-width = 99th percentile distance of the others + 30 m."""
    base = max(TRAIN, key=lambda t: len(trips[t]))
    line = Route("14-outbound", list(zip(trips[base].latitude, trips[base].longitude, strict=True)), 1000.0)
    dists = [
        line.locate(lat, lon)[0]
        for t in TRAIN
        if t != base
        for lat, lon in zip(trips[t].latitude, trips[t].longitude, strict=True)
    ]
    corridor = max(50.0, float(np.percentile(dists, 99)) + 30.0)
    route = Route("14-outbound", line.coords, corridor)
    zones = {}
    for zid, (lat, lon) in {"QUEEN-SQ": line.coords[0], "PETHERICK": line.coords[-1]}.items():
        x, y = route.projection.xy(lat, lon)
        ring = [
            route.projection.latlon(x + 250 * math.cos(a), y + 250 * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 24)
        ]
        zones[zid] = Zone(zid, shapely.Polygon([(lo, la) for la, lo in ring]))
    return route, zones, corridor


def complete_runs(trips: dict[str, pd.DataFrame], zones: dict[str, Zone]) -> list[str]:
    """The rule that picks the corridor trips: every recorded trip that is a complete run of the route, i.e.
    its first fix is inside the origin terminal and its last fix inside the destination terminal."""
    return [
        tid
        for tid, df in trips.items()
        if zones["QUEEN-SQ"].contains(df.latitude.iloc[0], df.longitude.iloc[0])
        and zones["PETHERICK"].contains(df.latitude.iloc[-1], df.longitude.iloc[-1])
    ]


def approved_route(trips: dict[str, pd.DataFrame], corridor_ids: list[str]) -> Route:
    """The approved route with variants learnt from `corridor_ids` alone (`model.learn_route`)."""
    tracks = [list(zip(trips[t].latitude.tolist(), trips[t].longitude.tolist(), strict=True)) for t in corridor_ids]
    return learn_route("14-outbound", tracks)


@dataclass
class Scenario:
    name: str
    trip_id: str
    fixes: list[Fix]
    plan: TripPlan
    expected: str | None  # alert type the injection must raise
    onset: datetime | None  # when the incident began (for detection delay)
    late: bool = False  # would the vehicle miss the deadline (extrapolated at the usual pace)?


def fixes_of(df: pd.DataFrame, tid: str) -> list[Fix]:
    return [
        Fix(tid, t.to_pydatetime(), float(la), float(lo), "closed")
        for t, la, lo in zip(df.t, df.latitude, df.longitude, strict=True)
    ]


def plan_for(tid: str, fixes: list[Fix], route: Route, pace_ms: float) -> TripPlan:
    """Deadline as customs would set it: route left from the first fix at the usual pace, x1.5 + 15 min."""
    _, m0 = route.locate(fixes[0].latitude, fixes[0].longitude)
    planned = (route.length_m - m0) / pace_ms
    dep = fixes[0].time
    return TripPlan(tid, route.route_id, "QUEEN-SQ", "PETHERICK", dep, dep + timedelta(seconds=planned * 1.5 + 900))


def offset(route: Route, f: Fix, metres: float) -> Fix:
    """Move a fix `metres` to the left of the road (perpendicular to the route where the fix is)."""
    x, y = route.projection.xy(f.latitude, f.longitude)
    _, m = route.locate_xy(x, y)
    bx, by = route.point_at(m - 25)
    ax, ay = route.point_at(m + 25)
    dx, dy = ax - bx, ay - by
    norm = math.hypot(dx, dy) or 1.0
    lat, lon = route.projection.latlon(x - dy / norm * metres, y + dx / norm * metres)
    return replace(f, latitude=lat, longitude=lon)


def shift(fixes: list[Fix], after: int, by: timedelta) -> list[Fix]:
    return fixes[:after] + [replace(f, time=f.time + by) for f in fixes[after:]]


def scenarios(trips: dict[str, pd.DataFrame], tid: str, route: Route, pace_ms: float) -> list[Scenario]:
    """Trip `tid` replayed clean and with each injected incident (against `route`)."""
    out: list[Scenario] = []
    for df in (trips[tid],):
        base = fixes_of(df, tid)
        plan = plan_for(tid, base, route, pace_ms)
        out.append(Scenario("clean", tid, base, plan, None, None))
        dur = (base[-1].time - base[0].time).total_seconds()
        n = len(base)
        if n < 20 or dur < 15 * 60:
            continue
        mid = n // 2
        # detour: a 700 m bump off the road over ~5 minutes of fixes
        k = max(8, int(300 / max(dur / n, 1)))
        i0 = max(2, mid - k // 2)
        det = list(base)
        for j in range(k):
            f = det[i0 + j]
            off = 700.0 * math.sin(math.pi * (j + 1) / (k + 1))
            det[i0 + j] = offset(route, f, off)
        out.append(Scenario("detour", tid, det, plan, "deviation", det[i0].time))
        sparse = [f for j, f in enumerate(det) if j % 6 == 0 or j == n - 1]
        out.append(Scenario("detour_sparse", tid, sparse, plan, "deviation", det[i0].time))
        # long stop: 20 minutes standing still mid-route
        stop_len = timedelta(minutes=20)
        at = base[mid]
        held = [
            replace(at, time=at.time + timedelta(seconds=25 * s), latitude=at.latitude + ((s % 3) - 1) * 3e-5)
            for s in range(1, 48)
        ]
        stopped = base[: mid + 1] + held + shift(base, mid + 1, stop_len)[mid + 1 :]
        out.append(Scenario("stop", tid, stopped, plan, "stop", at.time))
        # delay: from 30 % of the trip the vehicle crawls at a third of its pace
        d0 = int(n * 0.3)
        t_d0 = base[d0].time
        slow = base[:d0]
        for a, b in zip(base[d0:], base[d0 + 1 :], strict=False):
            ta = t_d0 + (a.time - t_d0) * 3
            gap = (b.time - a.time) * 3
            for s in range(3):  # keep the device's sampling rate: interpolate the stretched segments
                f = s / 3
                slow.append(
                    replace(
                        a,
                        time=ta + gap * f,
                        latitude=a.latitude + f * (b.latitude - a.latitude),
                        longitude=a.longitude + f * (b.longitude - a.longitude),
                    )
                )
        slow.append(replace(base[-1], time=t_d0 + (base[-1].time - t_d0) * 3))
        out.append(mark_lateness(Scenario("delay", tid, slow, plan, "overdue", t_d0), route, pace_ms, 3.0))
        # seal opened for 3 minutes mid-route, then closed again
        s0 = mid
        sealed = [
            replace(f, seal="open") if base[s0].time <= f.time <= base[s0].time + timedelta(minutes=3) else f
            for f in base
        ]
        out.append(Scenario("seal", tid, sealed, plan, "seal", base[s0].time))
        # signal gap: 15 minutes without fixes mid-route
        g0 = base[mid - 5].time
        gapped = [f for f in base if not (g0 < f.time < g0 + timedelta(minutes=15))]
        if len(gapped) < n - 3 and gapped[-1].time > g0 + timedelta(minutes=15):
            out.append(Scenario("signal_gap", tid, gapped, plan, "signal_lost", g0))
    return out


def run_scenario(sc: Scenario, route: Route, zones: dict[str, Zone]) -> list[Alert]:
    m = TripMonitor(sc.plan, route, zones["QUEEN-SQ"], zones["PETHERICK"], config=CONFIG)
    for f in sc.fixes:
        m.observe(f)
    m.tick(sc.fixes[-1].time)
    return m.alerts


def mark_lateness(sc: Scenario, route: Route, pace_ms: float, slowdown: float = 1.0) -> Scenario:
    """Ground truth for overdue: many recorded trips stop mid-route, so extrapolate the rest of the route
    from the last fix at the usual pace (times `slowdown` for the delay injection)."""
    last = sc.fixes[-1]
    _, m = route.locate(last.latitude, last.longitude)
    arrival = last.time + timedelta(seconds=(route.length_m - m) / pace_ms * slowdown)
    sc.late = arrival > sc.plan.deadline
    return sc


def envelope_excursion(trips: dict[str, pd.DataFrame], tid: str, route: Route) -> float:
    """Largest distance (m) from a trip's fixes to the nearest fix of any other recorded trip."""
    proj = route.projection
    others = np.array(
        [proj.xy(a, o) for t, df in trips.items() if t != tid for a, o in zip(df.latitude, df.longitude, strict=True)]
    )
    mine = np.array([proj.xy(a, o) for a, o in zip(trips[tid].latitude, trips[tid].longitude, strict=True)])
    return float(np.sqrt(((mine[:, None, :] - others[None, :, :]) ** 2).sum(axis=2)).min(axis=1).max())


def pace_of(trips: dict[str, pd.DataFrame], ids: list[str], route: Route) -> float:
    """The usual pace (m/s) customs set deadlines from: route length / median duration of the corridor trips."""
    return route.length_m / statistics.median((trips[t].t.iloc[-1] - trips[t].t.iloc[0]).total_seconds() for t in ids)


def quality(
    trips: dict[str, pd.DataFrame],
    held_out: dict[str, tuple[Route, float]],
    zones: dict[str, Zone],
    corridor_trips: object,
) -> dict[str, object]:
    """Replay each held-out trip (clean and injected) against its (route, pace); per-type precision/recall."""
    tp = dict.fromkeys(TYPES, 0)
    fp = dict.fromkeys(TYPES, 0)
    fn = dict.fromkeys(TYPES, 0)
    delays: dict[str, list[float]] = {t: [] for t in TYPES}
    lead: list[float] = []
    clean_alerts = 0
    clean_trips = 0
    per_scenario: dict[str, dict[str, int]] = {}
    false_positives: list[dict[str, str]] = []
    repeats = dict.fromkeys(TYPES, 0)
    all_scenarios = [
        (sc, route, pace_ms)
        for tid, (route, pace_ms) in held_out.items()
        for sc in scenarios(trips, tid, route, pace_ms)
    ]
    for sc, route, pace_ms in all_scenarios:
        if sc.name != "delay":
            mark_lateness(sc, route, pace_ms)
        alerts = run_scenario(sc, route, zones)
        stats = per_scenario.setdefault(sc.name, {"variants": 0, "detected": 0, "other_alerts": 0})
        stats["variants"] += 1
        if sc.name == "clean":
            clean_trips += 1
            clean_alerts += len(alerts)
        expected = set()
        if sc.expected and (sc.expected != "overdue" or sc.late):
            expected.add(sc.expected)
        if sc.late and sc.name != "clean":
            expected.add("overdue")  # a long stop or a delay that really makes the trip late
        matched: set[str] = set()
        for a in alerts:
            # an alert counts for the injection only if it starts after the incident began (2 min slack)
            in_window = sc.onset is not None and a.start >= sc.onset - timedelta(minutes=2)
            if a.type in expected and in_window and a.type not in matched:
                matched.add(a.type)
                tp[a.type] += 1
                assert sc.onset is not None
                delays[a.type].append((a.raised_at - sc.onset).total_seconds())
                if a.type == "overdue":
                    lead.append((sc.plan.deadline - a.raised_at).total_seconds())
            elif a.type in matched:
                repeats[a.type] += 1  # the same condition raised again after it had cleared
            else:
                fp[a.type] += 1
                stats["other_alerts"] += 1
                false_positives.append({"scenario": sc.name, "trip": sc.trip_id, "type": a.type, "reason": a.reason})
        for t in expected - matched:
            fn[t] += 1
        stats["detected"] += sc.expected in matched
    by_type = {}
    for t in TYPES:
        p = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else None
        r = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else None
        d = delays[t]
        by_type[t] = {
            "tp": tp[t],
            "fp": fp[t],
            "fn": fn[t],
            "repeats": repeats[t],
            "precision": None if p is None else round(p, 3),
            "recall": None if r is None else round(r, 3),
            "delay_s_median": round(statistics.median(d), 1) if d else None,
            "delay_s_max": round(max(d), 1) if d else None,
        }
    routes = {id(r): r for r, _ in held_out.values()}
    widths = sorted({round(r.corridor_m, 1) for r in routes.values()})
    return {
        "corridor_half_width_m": widths[0] if len(widths) == 1 else [widths[0], widths[-1]],
        "variants": sorted({len(r.variants) for r in routes.values()}),
        "route_length_m": round(statistics.median(r.length_m for r in routes.values())),
        "corridor_trips": corridor_trips,
        "test_trips": sorted(held_out),
        "clean_trips": clean_trips,
        "alerts_on_clean_trips": clean_alerts,
        "by_type": by_type,
        "overdue_lead_before_deadline_s_median": round(statistics.median(lead), 1) if lead else None,
        "scenarios": per_scenario,
        "false_positives": false_positives[:20],
        "clean_trips_outside_recorded_envelope": {
            tid: round(e)
            for tid, (r, _) in sorted(held_out.items())
            if (e := envelope_excursion(trips, tid, r)) >= 2 * r.corridor_m
        },
    }


def evaluations(trips: dict[str, pd.DataFrame], zones: dict[str, Zone]) -> dict[str, dict[str, object]]:
    """Three evaluations of detection quality, side by side:

    * `complete_runs` (the headline): the approved route with variants learnt from every complete run
      (`complete_runs`), the other trips replayed.
    * `leave_one_out`: every trip replayed against the route learnt by the same rule from all 15 other trips.
    * `three_trips_baseline`: the earlier single-line corridor from trips 1097/1105/1111, no variants.
    """
    runs = complete_runs(trips, zones)
    route = approved_route(trips, runs)
    pace = pace_of(trips, runs, route)
    out: dict[str, dict[str, object]] = {
        "complete_runs": quality(trips, {t: (route, pace) for t in trips if t not in runs}, zones, runs)
    }
    loo: dict[str, tuple[Route, float]] = {}
    for tid in trips:
        rest = [t for t in trips if t != tid]
        r = approved_route(trips, rest)
        loo[tid] = (r, pace_of(trips, [t for t in runs if t != tid], r))
    out["leave_one_out"] = quality(trips, loo, zones, "all other trips")
    base, _, _ = build_route(trips)
    base_pace = pace_of(trips, TRAIN, base)
    out["three_trips_baseline"] = quality(trips, {t: (base, base_pace) for t in trips if t not in TRAIN}, zones, TRAIN)
    return out


class ShapelyRoute(Route):
    """Baseline: the same route, located with shapely's distance/project per point."""

    def __init__(self, route: Route):
        super().__init__(route.route_id, route.coords, route.corridor_m)
        xs = np.concatenate([self._ax, [self._ax[-1] + self._dx[-1]]])
        ys = np.concatenate([self._ay, [self._ay[-1] + self._dy[-1]]])
        self._line = LineString(np.column_stack([xs, ys]))
        shapely.prepare(self._line)

    def locate_xy(self, x: float, y: float) -> tuple[float, float]:
        pt = Point(x, y)
        return float(self._line.distance(pt)), float(self._line.project(pt))


def throughput(
    trips: dict[str, pd.DataFrame], route: Route, zones: dict[str, Zone], pace_ms: float, copies: int, baseline: bool
) -> dict[str, float]:
    """GT06 frames from `copies` concurrent trips per recorded trip, interleaved by time, decoded and detected."""
    r = ShapelyRoute(route) if baseline else route
    frames: list[tuple[str, bytes]] = []
    plans = {}
    for tid, df in trips.items():
        base = fixes_of(df, tid)
        for c in range(copies):
            key = f"{tid}-{c}"
            plans[key] = plan_for(key, base, route, pace_ms)
            for s, f in enumerate(base):
                frames.append((key, gt06.encode_position(f.latitude, f.longitude, f.time, speed_kmh=30, serial=s)))
    order = sorted(range(len(frames)), key=lambda i: frames[i][1][4:10])  # interleave by device time
    frames = [frames[i] for i in order]
    monitors = {k: TripMonitor(p, r, zones["QUEEN-SQ"], zones["PETHERICK"], config=CONFIG) for k, p in plans.items()}
    latencies = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    for key, raw in frames:
        s = time.perf_counter()
        frame = gt06.decode(raw, key)
        for p in frame.positions:
            monitors[key].observe(Fix(key, p.time, p.latitude, p.longitude))
        latencies.append(time.perf_counter() - s)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    lat = sorted(latencies)
    return {
        "messages": len(frames),
        "seconds": elapsed,
        "per_s": len(frames) / elapsed,
        "per_cpu_s": len(frames) / cpu,
        "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1000,
    }


def memory_per_trip(route: Route, zones: dict[str, Zone], trips: dict[str, pd.DataFrame], pace_ms: float) -> float:
    base = fixes_of(trips["1105"], "x")
    plan = plan_for("x", base, route, pace_ms)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    monitors = []
    for i in range(500):
        m = TripMonitor(replace(plan, trip_id=str(i)), route, zones["QUEEN-SQ"], zones["PETHERICK"], config=CONFIG)
        for f in base[:60]:
            m.observe(f)
        monitors.append(m)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(monitors)


def _use_database(url: str, route: Route, zones: dict[str, Zone]) -> None:
    """Point the platform at a fresh database, migrate it and load the route and zones."""
    from smartcustoms.platform import db as platform_db
    from smartcustoms.platform import settings as platform_settings
    from smartcustoms.platform.auth import SYSTEM
    from smartcustoms.platform.migrate import upgrade
    from smartcustoms.tracking import service

    os.environ["SMARTCUSTOMS_DATABASE_URL"] = url
    platform_settings.get_settings.cache_clear()
    platform_db.reset_engines()
    upgrade(url)
    service.reset_state()
    service.LIMITER.rate = service.LIMITER.burst = 1e9
    features = [
        {
            "type": "Feature",
            "properties": {"route_id": route.route_id, "corridor_m": route.corridor_m},
            "geometry": {"type": "LineString", "coordinates": [[lo, la] for la, lo in route.coords]},
        }
    ] + [
        {"type": "Feature", "properties": {"zone_id": z.zone_id}, "geometry": shapely.geometry.mapping(z.polygon)}
        for z in zones.values()
    ]
    service.import_routes(SYSTEM, {"type": "FeatureCollection", "features": features})


def _register(tid: str, imei: str, plan: TripPlan, route: Route) -> None:
    from smartcustoms.platform.auth import SYSTEM
    from smartcustoms.tracking import service

    service.create_trip(
        SYSTEM,
        {
            "trip_id": tid,
            "route_id": route.route_id,
            "origin_zone": "QUEEN-SQ",
            "destination_zone": "PETHERICK",
            "departure": plan.departure,
            "deadline": plan.deadline,
            "device_id": imei,
        },
    )


def throughput_stored(
    url: str,
    trips: dict[str, pd.DataFrame],
    route: Route,
    zones: dict[str, Zone],
    pace_ms: float,
    copies: int,
    batch: int,
    limit: int | None = None,
) -> dict[str, float]:
    """GT06 frames decoded, evaluated by the detectors AND stored: `service.ingest` per batch of `batch`
    messages (one transaction, one multi-row insert: what the listener's pump does every 20 ms).
    Monitors are warm (one fix per trip first), as in a process that has been running."""
    from smartcustoms.tracking import service

    _use_database(url, route, zones)
    frames: list[tuple[datetime, str, bytes]] = []
    for tid, df in trips.items():
        base = fixes_of(df, tid)
        for c in range(copies):
            key, imei = f"{tid}-{c}", f"{int(tid) * 100 + c:015d}"
            _register(key, imei, plan_for(key, base, route, pace_ms), route)
            frames += [
                (f.time, imei, gt06.encode_position(f.latitude, f.longitude, f.time, speed_kmh=30, serial=s))
                for s, f in enumerate(base)
            ]
    frames.sort(key=lambda x: x[0])
    seen: set[str] = set()
    warm = []
    for _t, imei, raw in frames:
        if imei not in seen:
            seen.add(imei)
            warm += service.readings_from_frame(gt06.decode(raw, imei), imei)
    service.ingest(warm)
    frames = frames[:limit] if limit else frames
    stored = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(0, len(frames), batch):
        readings = []
        for _t, imei, raw in frames[i : i + batch]:
            readings += service.readings_from_frame(gt06.decode(raw, imei), imei)
        stored += service.ingest(readings).stored
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "messages": len(frames),
        "stored": stored,
        "per_s": len(frames) / elapsed,
        "per_cpu_s": len(frames) / cpu,
        "trips": len(seen),
    }


def memory_per_trip_service(
    route: Route, zones: dict[str, Zone], trips: dict[str, pd.DataFrame], pace_ms: float
) -> float:
    """Process memory per active trip in the running service (monitor + caches), 300 trips, 60 fixes each."""
    from _common import scratch_dir

    from smartcustoms.tracking import service

    _use_database(f"sqlite:///{scratch_dir('tracking-mem-')}/m.db", route, zones)
    base = fixes_of(trips["1105"], "x")
    plan = plan_for("x", base, route, pace_ms)
    n = 300
    for i in range(n):
        _register(f"m{i}", f"{900000000000000 + i}", replace(plan, trip_id=f"m{i}"), route)
    from smartcustoms.tracking.service import Reading

    first = [Reading(f"{900000000000000 + i}", base[0].time, base[0].latitude, base[0].longitude) for i in range(n)]
    service.ingest(first)  # monitors built (route and zone geometry shared through the process)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for f in base[1:60]:
        service.ingest([Reading(f"{900000000000000 + i}", f.time, f.latitude, f.longitude) for i in range(n)])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_monitor = memory_per_trip(route, zones, trips, pace_ms)
    return per_monitor + max(after - before, 0) / n


class _Server:
    """The console's HTTP server (uvicorn, the real app) in a thread of this process: the in-process
    event stream carries alerts from the ingest thread to its SSE endpoint."""

    def __init__(self) -> None:
        import socket
        import threading

        import uvicorn

        from smartcustoms.api import create_app

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def _officer_token() -> str:
    from smartcustoms.platform import auth
    from smartcustoms.platform.auth import Role
    from smartcustoms.platform.db import unit_of_work

    with unit_of_work() as s:
        return auth.issue_token(s, auth.create_user(s, f"bench-{time.time_ns()}", Role.OFFICER))


def end_to_end(
    trips: dict[str, pd.DataFrame], route: Route, zones: dict[str, Zone], pace_ms: float, rate: float = 2000.0
) -> dict[str, object]:
    """Device → TCP listener (GT06) → decode → store (SQLite file) → detectors → event stream → HTTP
    server's SSE endpoint (`/tracking/alerts/stream`, uvicorn on loopback) → console client.

    Each test trip gets a detour; latency is measured from the send of the frame that raised an
    alert to the moment its `event: alert` line is read from the SSE stream.
    """
    import asyncio

    from _common import scratch_dir

    from smartcustoms.tracking import service
    from smartcustoms.tracking.listener import DeviceListener

    tmp = scratch_dir("tracking-bench-")
    _use_database(f"sqlite:///{tmp}/bench.db", route, zones)
    token = _officer_token()
    streams: list[tuple[str, list[Fix]]] = []
    copies = 4
    for tid, df in trips.items():
        if tid in TRAIN or len(df) < 40:
            continue
        base = fixes_of(df, tid)
        for c in range(copies):
            imei = f"86{int(tid):09d}{c:04d}"
            key = f"{tid}-{c}"
            _register(key, imei, plan_for(key, base, route, pace_ms), route)
            mid = len(base) // 2 + c
            det = [offset(route, f, 700.0) if mid <= j < mid + 12 else f for j, f in enumerate(base)]
            streams.append((key, [replace(f, trip_id=key) for f in det]))
    imeis = {key: f"86{int(key.split('-')[0]):09d}{int(key.split('-')[1]):04d}" for key, _ in streams}
    sent: dict[tuple[str, str], float] = {}
    latencies: list[float] = []
    received = 0
    server = _Server()

    async def run() -> tuple[float, int, dict[str, int]]:
        nonlocal received
        listener = DeviceListener({"gt06": 0}, service.ingest, host="127.0.0.1")
        ports = await listener.start()
        sse_reader, sse_writer = await asyncio.open_connection("127.0.0.1", server.port)
        sse_writer.write(
            (
                f"GET /tracking/alerts/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        await sse_writer.drain()
        await sse_reader.readuntil(b"connected")  # subscribed before the first frame goes out

        async def consume() -> None:
            nonlocal received
            while True:
                line = await sse_reader.readline()
                if not line:
                    return
                if not line.startswith(b"data: "):
                    continue
                now = time.perf_counter()
                event = json.loads(line[6:])
                received += 1
                if event.get("action") == "open":
                    key = (event["trip_id"], event["raised_at"])
                    if key in sent:
                        latencies.append(now - sent[key])

        consumer = asyncio.create_task(consume())
        conns = []
        for key, _ in streams:
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["gt06"])
            writer.write(gt06.build_ack(0x01, 1, content=bytes.fromhex(imeis[key].rjust(16, "0"))))
            conns.append((reader, writer))

        async def drain_acks(reader: asyncio.StreamReader) -> None:
            while await reader.read(65536):
                pass

        ack_tasks = [asyncio.create_task(drain_acks(r)) for r, _ in conns]
        order = sorted((f.time, i, j) for i, (_, fx) in enumerate(streams) for j, f in enumerate(fx))
        t0 = time.perf_counter()
        for n, (_t, i, j) in enumerate(order):
            f = streams[i][1][j]
            sent[(streams[i][0], f.time.isoformat().replace("+00:00", "Z"))] = time.perf_counter()
            conns[i][1].write(gt06.encode_position(f.latitude, f.longitude, f.time, serial=j))
            ahead = t0 + (n + 1) / rate - time.perf_counter()
            if ahead > 0.002:
                await asyncio.sleep(ahead)
        while listener.delivered < len(order) and time.perf_counter() - t0 < 120:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(0.5)
        consumer.cancel()
        sse_writer.close()
        for _, w in conns:
            w.close()
        for task in ack_tasks:
            task.cancel()
        await asyncio.sleep(0.2)
        await listener.close()
        return elapsed, len(order), dict(listener.stats.acks)

    try:
        elapsed, messages, acks = asyncio.run(run())
    finally:
        server.stop()
    lat = sorted(latencies)
    return {
        "messages": messages,
        "trips": len(streams),
        "offered_rate_per_s": rate,
        "achieved_per_s": round(messages / elapsed),
        "acks_after_write": acks,
        "alert_events": received,
        "alert_latency_ms_p50": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
        "alert_latency_ms_p99": round(lat[int(0.99 * (len(lat) - 1))] * 1000, 1) if lat else None,
        "alert_latency_ms_max": round(lat[-1] * 1000, 1) if lat else None,
        "alerts_timed": len(lat),
        "path": "GT06 over TCP -> listener -> SQLite (WAL) batch per 20 ms, ack after commit -> detectors "
        "-> in-process stream -> uvicorn SSE /tracking/alerts/stream -> client",
    }


def stored_runs(
    trips: dict[str, pd.DataFrame], route: Route, zones: dict[str, Zone], pace_ms: float, repeats: int
) -> dict[str, dict[str, object]]:
    """Decode + detect + store, medians of `repeats` runs: SQLite file with the listener's batching
    (200 messages = 20 ms at 10,000/s; 1000), PostgreSQL when a server can be started, and the baseline
    of one transaction per message (what the ingest did before batching; 2,000 messages)."""
    from _common import scratch_dir

    def sqlite() -> str:
        return f"sqlite:///{scratch_dir('tracking-tp-')}/t.db"

    variants: dict[str, tuple[object, int, int | None]] = {
        "sqlite_batch_200": (sqlite, 200, None),
        "sqlite_batch_1000": (sqlite, 1000, None),
        "sqlite_one_transaction_per_message_baseline": (sqlite, 1, 2000),
    }
    pg = None
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests import pg_harness

        if pg_harness.find_bindir() is not None:
            pg = pg_harness.start(durable=True)
            server = pg.url
            counter = iter(range(1000))
            variants["postgresql_batch_1000"] = (
                lambda: pg_harness.create_database(server, f"tracking_tp_{next(counter)}"),
                1000,
                None,
            )
    except Exception as exc:  # PostgreSQL is optional here
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
    out: dict[str, dict[str, object]] = {}
    try:
        for name, (make_url, batch, limit) in variants.items():
            runs = [
                throughput_stored(make_url(), trips, route, zones, pace_ms, 20, batch, limit)  # type: ignore[operator]
                for _ in range(repeats)
            ]
            out[name] = {
                "messages": runs[0]["messages"],
                "trips": runs[0]["trips"],
                "batch": batch,
                "runs": len(runs),
                "per_s_median": round(statistics.median(r["per_s"] for r in runs)),
                "per_cpu_s_median": round(statistics.median(r["per_cpu_s"] for r in runs)),
                "per_s_all": [round(r["per_s"]) for r in runs],
            }
    finally:
        if pg is not None:
            pg.stop()
    return out


def _sender(port: int, payloads: list[tuple[str, bytes]], started: object) -> None:
    """Device simulator (own process): log in every connection, then stream all frames round-robin."""
    import socket

    socks = []
    for imei, data in payloads:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(gt06.build_ack(0x01, 1, content=bytes.fromhex(imei.rjust(16, "0"))))
        socks.append((sock, data))
    started.put(time.time())  # type: ignore[attr-defined]
    step = 37 * 10  # ten frames per connection per round
    off = 0
    while any(off < len(d) for _, d in socks):
        for sock, data in socks:
            if off < len(data):
                sock.sendall(data[off : off + step])
        off += step
    time.sleep(120)


def tcp_throughput(
    trips: dict[str, pd.DataFrame],
    route: Route,
    zones: dict[str, Zone],
    pace_ms: float,
    copies: int = 20,
    nats: bool = False,
    shards: int = 1,
    pg_url: str | None = None,
) -> dict[str, object]:
    """Whole ingest path at full speed: a simulator process streams GT06 frames over TCP (320 devices)
    into the listener, which decodes them and, after each batch is written, acknowledges.

    In-process: the listener's process also stores and evaluates (`service.ingest`). With `nats`, the
    listener publishes each batch to JetStream and a separate detector process (`tracking detect`'s
    loop) stores and evaluates: the work is split across two processes (cores). With `shards` > 1, readings
    are partitioned by trip and one detector process per shard runs (`tracking detect --shard K`). `pg_url`:
    a PostgreSQL database instead of the SQLite file."""
    import asyncio
    import multiprocessing as mp
    import shutil
    import socket
    import subprocess

    from _common import scratch_dir
    from sqlalchemy import func, select

    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.tracking import service, stream
    from smartcustoms.tracking.listener import DeviceListener
    from smartcustoms.tracking.store import PositionRow

    tmp = scratch_dir("tracking-tcp-")
    url = pg_url or f"sqlite:///{tmp}/t.db"
    _use_database(url, route, zones)
    payloads = []
    total = 0
    for tid, df in trips.items():
        base = fixes_of(df, tid)
        for c in range(copies):
            key, imei = f"{tid}-{c}", f"86{int(tid) * 100 + c:013d}"
            _register(key, imei, plan_for(key, base, route, pace_ms), route)
            frames = [
                gt06.encode_position(f.latitude, f.longitude, f.time, speed_kmh=30, serial=s)
                for s, f in enumerate(base)
            ]
            payloads.append((imei, b"".join(frames)))
            total += len(frames)
    server = None
    detectors: list[subprocess.Popen[bytes]] = []
    sink = service.ingest
    events = None
    if nats:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            return {"skipped": "nats-server not installed"}
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        server = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", f"{tmp}/js"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        nats_url = f"nats://127.0.0.1:{port}"
        events = stream.NatsStream(nats_url, prefix="bench", stream="BENCH", shards=shards)
        sink = events.publish_readings  # type: ignore[assignment]
        env = {**os.environ, "SMARTCUSTOMS_DATABASE_URL": url, "PYTHONPATH": os.environ.get("PYTHONPATH", "src")}
        for k in range(shards):
            code = (
                "import os, threading; from smartcustoms.tracking import service, stream; "
                "service.LIMITER.rate = service.LIMITER.burst = 1e9; "
                f"s = stream.NatsStream({nats_url!r}, prefix='bench', stream='BENCH', shards={shards}); "
                f"s.consume_readings(service.ingest, threading.Event(), batch=2000, shards=[{k}])"
            )
            detectors.append(subprocess.Popen([sys.executable, "-c", code], env=env))
        for k in range(shards):
            for _ in range(600):  # a detector is up once its durable consumer exists
                try:
                    events._call(events.js.consumer_info("BENCH", f"{stream.DURABLE}-{k}"))
                    break
                except Exception:
                    time.sleep(0.1)

    def cpu_of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stored() -> int:
        with unit_of_work() as s:
            return int(s.scalar(select(func.count()).select_from(PositionRow)) or 0)

    async def run() -> dict[str, object]:
        listener = DeviceListener({"gt06": 0}, sink, host="127.0.0.1")
        port = (await listener.start())["gt06"]
        started: mp.Queue[float] = mp.Queue()
        proc = mp.Process(target=_sender, args=(port, payloads, started), daemon=True)
        proc.start()
        t0 = await asyncio.to_thread(started.get)
        c0 = time.process_time()
        detector_cpu0 = sum(cpu_of(d.pid) for d in detectors)
        while listener.delivered < total and time.time() - t0 < 300:
            await asyncio.sleep(0.01)
        accepted = time.time() - t0
        while time.time() - t0 < 300:
            n = await asyncio.to_thread(stored)
            if n >= total - 500:  # fixes after arrival at the destination are not stored
                break
            await asyncio.sleep(0.05)
        elapsed = time.time() - t0
        cpu = time.process_time() - c0
        detector_cpu = sum(cpu_of(d.pid) for d in detectors) - detector_cpu0
        proc.kill()
        await listener.close()
        return {
            "messages": total,
            "devices": len(payloads),
            "stored": n,
            "accepted_per_s": round(total / accepted),
            "stored_per_s": round(total / elapsed),
            "listener_process_cpu_s": round(cpu, 2),
            "detector_process_cpu_s": round(detector_cpu, 2),
            "per_cpu_s": round(n / (cpu + detector_cpu)),  # stored and evaluated per CPU-second, all processes
        }

    try:
        out = asyncio.run(run())
    finally:
        for d in detectors:
            d.kill()
        if events is not None:
            events.close()
        if server is not None:
            server.terminate()
    db = "PostgreSQL" if pg_url else "SQLite"
    out["mode"] = (
        f"NATS JetStream: listener process + {shards} detector process(es), {db}"
        if nats
        else f"in-process (one process), {db}"
    )
    return out


def tcp_runs(
    trips: dict[str, pd.DataFrame], route: Route, zones: dict[str, Zone], pace_ms: float, repeats: int
) -> dict[str, dict[str, object]]:
    """Full TCP path, medians of `repeats` runs per variant (TRACKING_BENCH_TCP selects variants by name)."""
    pg = None
    make_pg: Any = None
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests import pg_harness

        if pg_harness.find_bindir() is not None:
            pg = pg_harness.start(durable=True)
            counter = iter(range(1000))
            server_url = pg.url
            make_pg = lambda: pg_harness.create_database(server_url, f"tracking_tcp_{next(counter)}")  # noqa: E731
    except Exception as exc:  # PostgreSQL is optional here
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
    variants: dict[str, tuple[bool, int, bool]] = {
        "in_process": (False, 1, False),
        "jetstream_two_processes": (True, 1, False),
        "jetstream_two_detector_shards": (True, 2, False),
        "in_process_postgresql": (False, 1, True),
        "jetstream_two_processes_postgresql": (True, 1, True),
        "jetstream_two_detector_shards_postgresql": (True, 2, True),
    }
    chosen = [v for v in os.environ.get("TRACKING_BENCH_TCP", "").split(",") if v] or list(variants)
    out: dict[str, dict[str, object]] = {}
    try:
        for name in chosen:
            nats, shards, on_pg = variants[name]
            if on_pg and make_pg is None:
                out[name] = {"skipped": "no PostgreSQL server"}
                continue
            runs = [
                tcp_throughput(
                    trips, route, zones, pace_ms, nats=nats, shards=shards, pg_url=make_pg() if on_pg else None
                )
                for _ in range(repeats)
            ]
            _summarise(out, name, runs)
    finally:
        if pg is not None:
            pg.stop()
    return out


def _summarise(out: dict[str, dict[str, object]], name: str, runs: list[dict[str, object]]) -> None:
    if "skipped" in runs[0]:
        out[name] = runs[0]
        return
    out[name] = {
        "mode": runs[0]["mode"],
        "messages": runs[0]["messages"],
        "devices": runs[0]["devices"],
        "runs": len(runs),
        "accepted_per_s_median": statistics.median(r["accepted_per_s"] for r in runs),  # type: ignore[misc]
        "stored_per_s_median": statistics.median(r["stored_per_s"] for r in runs),  # type: ignore[misc]
        "listener_cpu_s_median": statistics.median(r["listener_process_cpu_s"] for r in runs),  # type: ignore[misc]
        "per_cpu_s_median": statistics.median(r["per_cpu_s"] for r in runs),  # type: ignore[misc]
        "all": runs,
    }


def print_quality(evals: dict[str, dict[str, object]]) -> None:
    for name, q in evals.items():
        print(f"\n{name}: corridor trips {q['corridor_trips']}, half-width {q['corridor_half_width_m']} m")
        print(f"{'type':<12}{'prec':>7}{'recall':>8}{'tp':>4}{'fp':>4}{'fn':>4}{'rep':>4}{'delay med s':>13}")
        for t, row in q["by_type"].items():  # type: ignore[attr-defined]
            print(
                f"{t:<12}{row['precision']!s:>7}{row['recall']!s:>8}{row['tp']:>4}{row['fp']:>4}{row['fn']:>4}"
                f"{row['repeats']:>4}{row['delay_s_median']!s:>13}"
            )
        print(f"clean trips: {q['clean_trips']}, alerts on clean trips: {q['alerts_on_clean_trips']}")


def main() -> None:
    csv = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    trips = load(csv)
    route, zones, _ = build_route(trips)
    durations = [(trips[t].t.iloc[-1] - trips[t].t.iloc[0]).total_seconds() for t in TRAIN]
    pace_ms = route.length_m / statistics.median(durations)
    evals = evaluations(trips, zones)
    q = evals["complete_runs"]
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    repeats = int(os.environ.get("TRACKING_BENCH_RUNS", "3"))
    runs = {"numpy": [], "shapely_baseline": []}  # type: dict[str, list[dict[str, float]]]
    for _ in range(repeats):
        runs["numpy"].append(throughput(trips, route, zones, pace_ms, copies=20, baseline=False))
        runs["shapely_baseline"].append(throughput(trips, route, zones, pace_ms, copies=20, baseline=True))
    tp = {
        k: {
            "messages": v[0]["messages"],
            "runs": len(v),
            "per_s_median": round(statistics.median(x["per_s"] for x in v)),
            "per_cpu_s_median": round(statistics.median(x["per_cpu_s"] for x in v)),
            "p99_ms_median": round(statistics.median(x["p99_ms"] for x in v), 3),
        }
        for k, v in runs.items()
    }
    stored = stored_runs(trips, route, zones, pace_ms, repeats)
    result = {
        "bench": "tracking",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": load_at_start,
            "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
            "note": "2 cores shared by 5 agents: wall figures move with the load; per-CPU-second figures less",
        },
        "data": str(csv.name),
        "quality": q,
        "quality_leave_one_out": evals["leave_one_out"],
        "quality_three_trips_baseline": evals["three_trips_baseline"],
        "throughput_decode_detect": tp,
        "throughput_decode_detect_store": stored,
        "throughput_target_per_s": 10_000,
        "memory_per_active_trip_bytes": round(memory_per_trip(route, zones, trips, pace_ms)),
        "memory_per_active_trip_in_service_bytes": round(memory_per_trip_service(route, zones, trips, pace_ms)),
        "end_to_end_tcp_store_sse": [end_to_end(trips, route, zones, pace_ms, rate) for rate in (1000.0, 2000.0)],
        "tcp_full_speed": tcp_runs(trips, route, zones, pace_ms, repeats),
        "protocol_samples": [r.as_dict() for r in survey(csv.parents[1] / "traccar_protocol_samples")],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    print_quality(evals)
    for k, v in tp.items():
        print(
            f"throughput {k:<18}{v['per_s_median']:>8} msg/s wall {v['per_cpu_s_median']:>8} msg/s per CPU second"
            f"  p99 {v['p99_ms_median']} ms  ({v['messages']} msgs)"
        )
    print(f"memory per active trip: {result['memory_per_active_trip_bytes']} bytes")
    for k, v in stored.items():
        print(
            f"decode+detect+store {k:<34}{v['per_s_median']:>8} msg/s wall {v['per_cpu_s_median']:>8} msg/s per CPU second"
            f"  ({v['messages']} msgs, {v['runs']} runs)"
        )
    print(f"memory per active trip in the service: {result['memory_per_active_trip_in_service_bytes']} bytes")
    for e2e in result["end_to_end_tcp_store_sse"]:  # type: ignore[attr-defined]
        print(
            f"end to end TCP -> store -> SSE at {e2e['offered_rate_per_s']:.0f}/s offered: {e2e['achieved_per_s']}/s,"
            f" alert latency p50 {e2e['alert_latency_ms_p50']} ms p99 {e2e['alert_latency_ms_p99']} ms"
            f" ({e2e['alerts_timed']} alerts)"
        )
    for name, v in result["tcp_full_speed"].items():  # type: ignore[attr-defined]
        print(
            f"TCP full speed {name}: {v}"
            if "skipped" in v
            else (
                f"TCP full speed {name:<24} accepted {v['accepted_per_s_median']:>7}/s  stored+evaluated"
                f" {v['stored_per_s_median']:>7}/s wall, {v['per_cpu_s_median']:>7}/CPU-second ({v['messages']} msgs, {v['runs']} runs)"
            )
        )
    for row in result["protocol_samples"]:  # type: ignore[attr-defined]
        print(
            f"samples {row['protocol']:<10} {row['messages']:>4} payloads: {row['position_or_event']:>3} position/event,"
            f" {row['recognised_non_position']:>3} other frames, {row['failed']:>3} failed {row['failure_reasons']}"
        )


if __name__ == "__main__":
    main()
