"""Corridor geometry and the per-trip detectors (pure: no I/O, no clock; time comes with the fixes).

Geometry is computed in a local equirectangular projection centred on each route (metres; error
well under 0.5 % within 100 km of the centre), so corridor widths and stop radii are metres.
`corridor_m` is the half-width: the largest allowed distance from the route's centre line.

A `TripMonitor` is the per-trip state machine: pending inside the origin zone, open once the
vehicle leaves it, closed when it enters the destination zone with the seal intact. Each fix runs
the detectors (deviation, stop, overdue, seal, signal lost); an alert stays open, one per condition,
until the condition clears. Every alert carries the rule version that raised it.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon

from smartcustoms.platform.i18n import t_plain

RULE_VERSION = "tracking-detectors/1.0"
EARTH_RADIUS_M = 6_371_008.8

AlertType = Literal["deviation", "stop", "overdue", "seal", "signal_lost"]
Severity = Literal["low", "medium", "high", "critical"]
SealReading = Literal["closed", "open", "tampered"]
SEAL_READINGS = ("closed", "open", "tampered")


class LocalProjection:
    """Equirectangular projection around (lat0, lon0): x east, y north, in metres."""

    __slots__ = ("kx", "ky", "lat0", "lon0")

    def __init__(self, lat0: float, lon0: float):
        self.lat0 = lat0
        self.lon0 = lon0
        self.ky = math.radians(1.0) * EARTH_RADIUS_M
        self.kx = self.ky * math.cos(math.radians(lat0))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def xy_array(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def latlon(self, x: float, y: float) -> tuple[float, float]:
        return self.lat0 + y / self.ky, self.lon0 + x / self.kx


@dataclass(frozen=True)
class Zone:
    """A polygon (free-trade zone, port, bonded warehouse, rest area) in (lon, lat) order."""

    zone_id: str
    polygon: Polygon | MultiPolygon
    kind: str = "zone"
    authorised_stop: bool = True

    def __post_init__(self) -> None:
        shapely.prepare(self.polygon)
        object.__setattr__(self, "_bounds", self.polygon.bounds)

    def contains(self, latitude: float, longitude: float) -> bool:
        x0, y0, x1, y1 = self._bounds  # type: ignore[attr-defined]
        if not (x0 <= longitude <= x1 and y0 <= latitude <= y1):
            return False  # most fixes are far from every zone: skip shapely
        return bool(shapely.contains_xy(self.polygon, longitude, latitude))


class Route:
    """An approved route: centre line (lat, lon), approved variants and corridor half-width in metres.

    The centre line gives the distance along the route (progress, ETA). `variants` are other polylines the
    operator is approved to drive (another exit from a terminal, a bypass): a fix is inside the corridor
    when it is within `corridor_m` of the centre line or of any variant; a point on a variant is given the
    route distance interpolated from the variant's vertices projected onto the centre line.
    """

    def __init__(
        self,
        route_id: str,
        coords: Sequence[tuple[float, float]],
        corridor_m: float,
        variants: Sequence[Sequence[tuple[float, float]]] = (),
    ):
        if len(coords) < 2 or any(len(v) < 2 for v in variants):
            raise ValueError(f"route {route_id} needs at least two points per line")
        if not corridor_m > 0:
            raise ValueError(f"route {route_id} corridor_m must be positive")
        self.route_id = route_id
        self.corridor_m = float(corridor_m)
        lat = np.array([c[0] for c in coords], dtype=float)
        lon = np.array([c[1] for c in coords], dtype=float)
        self.projection = LocalProjection(float(lat.mean()), float(lon.mean()))
        x, y = self.projection.xy_array(lat, lon)
        self.coords = list(zip(lat.tolist(), lon.tolist(), strict=True))
        self.variants = [[(float(a), float(o)) for a, o in v] for v in variants]
        ax, ay, dx, dy = x[:-1], y[:-1], np.diff(x), np.diff(y)
        seg = np.sqrt(dx**2 + dy**2)
        self._cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.length_m = float(self._cum[-1])
        self._n_main = len(seg)
        # Per segment: the route distance at its start (c0) and its gain over the segment (slope); on the
        # centre line these are the cumulative length and the segment length.
        c0, slope = self._cum[:-1], seg
        xs, ys = [x], [y]
        self._ax, self._ay, self._dx, self._dy = ax, ay, dx, dy  # centre line, for `_locate_main`
        for v in self.variants:
            vx, vy = self.projection.xy_array(np.array([c[0] for c in v]), np.array([c[1] for c in v]))
            vm = np.array([self._locate_main(px, py)[1] for px, py in zip(vx.tolist(), vy.tolist(), strict=True)])
            ax, ay = np.concatenate([ax, vx[:-1]]), np.concatenate([ay, vy[:-1]])
            dx, dy = np.concatenate([dx, np.diff(vx)]), np.concatenate([dy, np.diff(vy)])
            c0, slope = np.concatenate([c0, vm[:-1]]), np.concatenate([slope, np.diff(vm)])
            xs.append(vx)
            ys.append(vy)
        self._ax, self._ay, self._dx, self._dy = ax, ay, dx, dy
        self._c0, self._slope = c0, slope
        self._len2 = dx**2 + dy**2
        self._len2[self._len2 == 0] = 1e-9
        self._lines = [np.column_stack([a, b]) for a, b in zip(xs, ys, strict=True)]
        # Grid index: for each cell, the segments that can be within `_reach` of a point in it, so a
        # fix near the route is located with a handful of scalar operations instead of all segments.
        self._reach = max(2.0 * self.corridor_m, 150.0)
        self._cell = self._reach / 2
        self._minx = np.minimum(ax, ax + dx)
        self._maxx = np.maximum(ax, ax + dx)
        self._miny = np.minimum(ay, ay + dy)
        self._maxy = np.maximum(ay, ay + dy)
        self._segs = list(
            zip(
                ax.tolist(),
                ay.tolist(),
                dx.tolist(),
                dy.tolist(),
                self._len2.tolist(),
                c0.tolist(),
                slope.tolist(),
                strict=True,
            )
        )
        self._grid: dict[tuple[int, int], tuple[int, ...]] = {}

    def _locate_main(self, x: float, y: float) -> tuple[float, float]:
        """(distance, route distance) of a projected point against the centre line only (exhaustive)."""
        n = self._n_main
        ax, ay, dx, dy = self._ax[:n], self._ay[:n], self._dx[:n], self._dy[:n]
        len2 = np.maximum(dx**2 + dy**2, 1e-9)
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / len2, 0.0, 1.0)
        d2 = (ax + t * dx - x) ** 2 + (ay + t * dy - y) ** 2
        i = int(np.argmin(d2))
        return math.sqrt(float(d2[i])), float(self._cum[i] + t[i] * (self._cum[i + 1] - self._cum[i]))

    def _candidates(self, cx: int, cy: int) -> tuple[int, ...]:
        found = self._grid.get((cx, cy))
        if found is None:
            c, r = self._cell, self._reach
            x0, x1, y0, y1 = cx * c - r, (cx + 1) * c + r, cy * c - r, (cy + 1) * c + r
            mask = (self._maxx >= x0) & (self._minx <= x1) & (self._maxy >= y0) & (self._miny <= y1)
            found = tuple(np.nonzero(mask)[0].tolist())
            if len(self._grid) > 200_000:
                self._grid.clear()
            self._grid[(cx, cy)] = found
        return found

    def locate_xy(self, x: float, y: float) -> tuple[float, float]:
        """(distance from the centre line, distance along the route) of a projected point, metres."""
        best = math.inf
        best_i = -1
        best_t = 0.0
        segs = self._segs
        for i in self._candidates(int(x // self._cell), int(y // self._cell)):
            ax, ay, dx, dy, len2, _c0, _sl = segs[i]
            t = ((x - ax) * dx + (y - ay) * dy) / len2
            t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
            ex = ax + t * dx - x
            ey = ay + t * dy - y
            d2 = ex * ex + ey * ey
            if d2 < best:
                best, best_i, best_t = d2, i, t
        if best_i >= 0 and best <= self._reach * self._reach:
            _ax, _ay, _dx, _dy, _l2, c0, sl = segs[best_i]
            return math.sqrt(best), c0 + best_t * sl
        return self.locate_xy_all(x, y)

    def locate_xy_all(self, x: float, y: float) -> tuple[float, float]:
        """Exhaustive (vectorised) version of `locate_xy`, for points far from the route."""
        t = ((x - self._ax) * self._dx + (y - self._ay) * self._dy) / self._len2
        np.clip(t, 0.0, 1.0, out=t)
        px = self._ax + t * self._dx - x
        py = self._ay + t * self._dy - y
        d2 = px * px + py * py
        i = int(np.argmin(d2))
        return math.sqrt(float(d2[i])), float(self._c0[i] + t[i] * self._slope[i])

    def point_at(self, measure: float) -> tuple[float, float]:
        """Projected (x, y) of the point `measure` metres along the route (clamped to its ends)."""
        m = min(max(measure, 0.0), self.length_m)
        i = min(int(np.searchsorted(self._cum, m, side="right")) - 1, self._n_main - 1)
        ax, ay, dx, dy, _l2, c0, sl = self._segs[i]
        f = (m - c0) / sl if sl > 0 else 0.0
        return ax + f * dx, ay + f * dy

    def locate(self, latitude: float, longitude: float) -> tuple[float, float]:
        return self.locate_xy(*self.projection.xy(latitude, longitude))

    def corridor_polygon(self, resolution: int = 4) -> Polygon | MultiPolygon:
        """The corridor (centre line and variants) as a (lon, lat) polygon, for maps and exports."""
        lines = [LineString(line) for line in self._lines]
        area = shapely.union_all([line.buffer(self.corridor_m, quad_segs=resolution) for line in lines])

        def to_lonlat(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(
                [
                    self.projection.lon0 + xy[:, 0] / self.projection.kx,
                    self.projection.lat0 + xy[:, 1] / self.projection.ky,
                ]
            )

        out = shapely.transform(area, to_lonlat)
        assert isinstance(out, Polygon | MultiPolygon)
        return out


def learn_route(
    route_id: str,
    tracks: Sequence[Sequence[tuple[float, float]]],
    margin_m: float = 30.0,
    min_corridor_m: float = 50.0,
) -> Route:
    """An approved route made of the variants an operator drives, learnt from recorded runs (lat, lon).

    Centre line = the densest track. Half-width = median over the other tracks of each one's 99th percentile
    distance to the centre line, + `margin_m` (a median, so one run that takes another street widens nothing:
    its street becomes a variant instead). Variants: every stretch of consecutive fixes of a track farther
    than the half-width from the route built so far, with one fix either side so it joins the route again.
    """
    if not tracks:
        raise ValueError(f"route {route_id} needs at least one recorded track")
    ordered = sorted(tracks, key=len, reverse=True)
    base, others = list(ordered[0]), [list(t) for t in ordered[1:]]
    line = Route(route_id, base, 1000.0)
    p99 = [float(np.percentile([line.locate(a, o)[0] for a, o in t], 99)) for t in others if t]
    corridor = max(min_corridor_m, float(np.median(p99)) + margin_m) if p99 else min_corridor_m
    route = Route(route_id, base, corridor)
    variants: list[list[tuple[float, float]]] = []
    for t in others:
        outside = [route.locate(a, o)[0] > corridor for a, o in t]
        i = 0
        while i < len(t):
            if not outside[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(t) and outside[j + 1]:
                j += 1
            stretch = t[max(i - 1, 0) : j + 2]
            if len(stretch) >= 2:
                variants.append(stretch)
            i = j + 1
        if variants and len(variants) != len(route.variants):
            route = Route(route_id, base, corridor, variants)
    return route


@dataclass(frozen=True)
class TripPlan:
    """A bonded transfer: route, origin and destination zones, departure and deadline (UTC)."""

    trip_id: str
    route_id: str
    origin_zone: str
    destination_zone: str
    departure: datetime
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Fix:
    """One position (and seal reading) of a trip; `received_at` lets the monitor spot skewed clocks."""

    trip_id: str
    time: datetime
    latitude: float
    longitude: float
    seal: SealReading | None = None
    low_battery: bool = False
    received_at: datetime | None = None


@dataclass
class Alert:
    """One alert: open until its condition clears (`end` set) or an officer closes it."""

    trip_id: str
    type: AlertType
    condition: str
    severity: Severity
    start: datetime
    latitude: float
    longitude: float
    reason: str
    raised_at: datetime
    end: datetime | None = None
    rule_version: str = RULE_VERSION

    def as_record(self) -> dict[str, Any]:
        """The command-line contract's JSON line (plus severity and rule version)."""
        return {
            "trip_id": self.trip_id,
            "type": self.type,
            "start": _iso(self.start),
            "end": _iso(self.end) if self.end else None,
            "latitude": round(self.latitude, 6),
            "longitude": round(self.longitude, 6),
            "reason": self.reason,
            "severity": self.severity,
            "condition": self.condition,
            "raised_at": _iso(self.raised_at),
            "rule_version": self.rule_version,
        }


@dataclass(frozen=True)
class AlertChange:
    """What a fix did to an alert: opened it, changed it (escalation), or cleared it."""

    action: Literal["open", "update", "clear"]
    alert: Alert


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds; an administration tunes these without code changes."""

    deviation_margin_m: float = 50.0  # beyond the corridor edge before a fix counts as outside
    deviation_min_s: float = 60.0  # outside this long (from the interpolated exit) raises the alert
    shortcut_max_kmh: float = 130.0  # route distance between two fixes faster than this = left the road
    stop_radius_m: float = 60.0
    stop_min_s: float = 600.0
    signal_lost_s: float = 600.0
    eta_window_s: float = 900.0
    eta_min_elapsed_s: float = 600.0  # no prediction in the first minutes of a trip
    eta_min_moving_s: float = 180.0  # recent pace needs this much moving time in the window
    moving_min_ms: float = 0.5  # route progress slower than this between fixes counts as standing still
    overdue_margin_s: float = 300.0  # predicted lateness below this is noise, not an alert
    overdue_confirm_fixes: int = 3
    overdue_confirm_s: float = 600.0  # a predicted lateness must persist this long (slow city stretches pass)
    future_skew_s: float = 300.0
    duplicate_tolerance_s: float = 0.0


@dataclass(frozen=True)
class _Point:
    t: float
    x: float
    y: float
    lat: float
    lon: float
    dist: float
    measure: float
    outside: bool


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(round(t, 3), tz=UTC)


def _fmt_s(seconds: float) -> str:
    m = round(seconds / 60.0)
    return t_plain("{minutes} min", minutes=m) if m >= 1 else t_plain("{seconds} s", seconds=int(seconds))


@dataclass
class TripMonitor:
    """The per-trip state machine and its detectors; feed fixes in time order with `observe`."""

    _CROSSING_SAMPLES = 8  # points along a segment between fixes checked for the corridor exit/entry

    plan: TripPlan
    route: Route
    origin: Zone | None
    destination: Zone | None
    authorised: Sequence[Zone] = ()
    config: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        self.phase: Literal["pending", "open", "closed"] = "pending"
        self.arrived_sealed: bool | None = None
        self.alerts: list[Alert] = []
        self.open_alerts: dict[str, Alert] = {}
        self.counters: dict[str, int] = {"fixes": 0, "duplicates": 0, "out_of_order": 0, "future": 0}
        self.flags: list[tuple[datetime, str]] = []
        self._last: _Point | None = None
        self._seal: SealReading | None = None
        self._outside_since: float | None = None
        self._anchor: _Point | None = None
        self._progress: deque[tuple[float, float, float]] = deque()
        self._moving_total = 0.0
        self._opened_t: float | None = None
        self._opened_measure = 0.0
        self._late_streak = 0
        self._ok_streak = 0
        self._late_since: float | None = None
        self._ok_since: float | None = None
        self._deadline = self.plan.deadline.timestamp()
        self._threshold = self.route.corridor_m + self.config.deviation_margin_m

    # ---- alert bookkeeping -------------------------------------------------------------
    def _open(
        self, kind: AlertType, condition: str, severity: Severity, start: float, p: _Point, reason: str, now: float
    ) -> list[AlertChange]:
        if condition in self.open_alerts:
            return []
        alert = Alert(self.plan.trip_id, kind, condition, severity, _dt(start), p.lat, p.lon, reason, _dt(now))
        self.open_alerts[condition] = alert
        self.alerts.append(alert)
        return [AlertChange("open", alert)]

    def _clear(self, condition: str, end: float) -> list[AlertChange]:
        alert = self.open_alerts.pop(condition, None)
        if alert is None:
            return []
        alert.end = max(_dt(end), alert.start)
        return [AlertChange("clear", alert)]

    # ---- entry point ---------------------------------------------------------------------
    def observe(self, fix: Fix) -> list[AlertChange]:
        """Run the detectors on one fix; returns the alert changes it caused."""
        cfg = self.config
        t = fix.time.timestamp()
        if fix.received_at is not None and t > fix.received_at.timestamp() + cfg.future_skew_s:
            self.counters["future"] += 1
            self.flags.append(
                (
                    fix.time,
                    t_plain(
                        "timestamp {ahead_text} ahead of receipt: clock skew",
                        ahead_text=_fmt_s(t - fix.received_at.timestamp()),
                    ),
                )
            )
            return []
        last = self._last
        if last is not None:
            if t < last.t:
                self.counters["out_of_order"] += 1
                return []
            if t - last.t <= cfg.duplicate_tolerance_s:
                self.counters["duplicates"] += 1
                return []
        self.counters["fixes"] += 1
        x, y = self.route.projection.xy(fix.latitude, fix.longitude)
        dist, measure = self.route.locate_xy(x, y)
        in_origin = self.origin is not None and self.origin.contains(fix.latitude, fix.longitude)
        in_dest = self.destination is not None and self.destination.contains(fix.latitude, fix.longitude)
        in_zone = in_origin or in_dest or any(z.contains(fix.latitude, fix.longitude) for z in self.authorised)
        p = _Point(t, x, y, fix.latitude, fix.longitude, dist, measure, dist > self._threshold and not in_zone)
        changes: list[AlertChange] = []
        if fix.seal is not None:
            self._seal = fix.seal

        if self.phase == "pending":
            if in_origin:  # still loading / waiting at the origin: the trip has not started
                self._last = p
                return changes
            self.phase = "open"
            self._opened_t = t
            self._opened_measure = measure
            self._anchor = p
            if self._seal in ("open", "tampered"):
                changes += self._seal_alert(p, t)
            self._last = p
            self._progress.append((t, measure, 0.0))
            return changes
        if self.phase == "closed":
            self._last = p
            return changes

        assert last is not None
        changes += self._signal(last, p)
        changes += self._seal_checks(fix, p, t)
        if in_dest:  # arrival closes the trip; a broken seal keeps its alert open for an officer
            return changes + self._arrive(p)
        changes += self._deviation(last, p)
        changes += self._stop(last, p, in_zone)
        changes += self._overdue(last, p)
        self._last = p
        return changes

    # ---- detectors ---------------------------------------------------------------------------
    def _signal(self, last: _Point, p: _Point) -> list[AlertChange]:
        gap = p.t - last.t
        if "signal_lost" in self.open_alerts:
            return self._clear("signal_lost", p.t)
        if gap > self.config.signal_lost_s:
            reason = t_plain(
                "no position for {gap_text} (limit {limit_text})",
                gap_text=_fmt_s(gap),
                limit_text=_fmt_s(self.config.signal_lost_s),
            )
            opened = self._open(
                "signal_lost", "signal_lost", "high", last.t, last, reason, last.t + self.config.signal_lost_s
            )
            return opened + self._clear("signal_lost", p.t)
        return []

    def _seal_alert(self, p: _Point, t: float) -> list[AlertChange]:
        state = self._seal
        severity: Severity = "critical"
        if state == "tampered":
            reason = t_plain("seal reported tampered outside the destination zone")
        else:
            reason = t_plain("seal reported open outside the destination zone")
        return self._open("seal", f"seal:{state}", severity, t, p, reason, t)

    def _seal_checks(self, fix: Fix, p: _Point, t: float) -> list[AlertChange]:
        changes: list[AlertChange] = []
        if self._seal in ("open", "tampered"):
            changes += self._seal_alert(p, t)
            other = "tampered" if self._seal == "open" else "open"
            changes += self._clear(f"seal:{other}", t)
        elif self._seal == "closed":
            changes += self._clear("seal:open", t)
            changes += self._clear("seal:tampered", t)
        if fix.low_battery:
            changes += self._open("seal", "seal:battery", "medium", t, p, "seal battery low", t)
        elif "seal:battery" in self.open_alerts:
            changes += self._clear("seal:battery", t)
        return changes

    def _arrive(self, p: _Point) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for condition in list(self.open_alerts):
            if not condition.startswith("seal:") and condition != "overdue":
                changes += self._clear(condition, p.t)
        if "overdue" in self.open_alerts:
            changes += self._clear("overdue", p.t)
        self.phase = "closed"
        self.arrived_sealed = self._seal != "open" and self._seal != "tampered"
        self._last = p
        return changes

    def _crossing(self, a: _Point, b: _Point) -> float:
        """Time the segment a→b crossed the corridor threshold (one fix inside, the other outside).

        The straight segment is sampled, not only its ends: between sparse fixes the vehicle may have left
        long before the outside fix (a chord from a variant or a bend), so the exit is the first sampled
        point outside (the re-entry the last one), refined by interpolating the distances around it."""
        leaving = b.dist > a.dist
        steps = self._CROSSING_SAMPLES
        prev_f, prev_d = (0.0, a.dist)
        order = range(1, steps) if leaving else range(steps - 1, 0, -1)
        if not leaving:
            prev_f, prev_d = (1.0, b.dist)
        for k in order:
            f = k / steps
            d, _ = self.route.locate_xy(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y))
            if d > self._threshold:
                # between prev_f (inside for a leaving segment) and f: interpolate on the distances
                g = (self._threshold - prev_d) / (d - prev_d) if d != prev_d else 1.0
                cross = prev_f + min(max(g, 0.0), 1.0) * (f - prev_f)
                return a.t + cross * (b.t - a.t)
            prev_f, prev_d = f, d
        end_d = b.dist if leaving else a.dist
        end_f = 1.0 if leaving else 0.0
        g = (self._threshold - prev_d) / (end_d - prev_d) if end_d != prev_d else 1.0
        cross = prev_f + min(max(g, 0.0), 1.0) * (end_f - prev_f)
        return a.t + cross * (b.t - a.t)

    def _deviation(self, last: _Point, p: _Point) -> list[AlertChange]:
        cfg = self.config
        changes: list[AlertChange] = []
        if p.outside:
            if self._outside_since is None:
                self._outside_since = self._crossing(last, p) if not last.outside else last.t
            duration = p.t - self._outside_since
            if duration >= cfg.deviation_min_s and "deviation" not in self.open_alerts:
                reason = t_plain(
                    "{outside} m outside the {corridor} m corridor of route {route} for {duration_text}",
                    outside=f"{p.dist - self.route.corridor_m:.0f}",
                    corridor=f"{self.route.corridor_m:.0f}",
                    route=self.route.route_id,
                    duration_text=_fmt_s(duration),
                )
                changes += self._open("deviation", "deviation", "high", self._outside_since, p, reason, p.t)
            return changes
        if self._outside_since is not None:
            back = self._crossing(last, p) if last.outside else p.t
            self._outside_since = None
            changes += self._clear("deviation", back)
            return changes
        # Both fixes inside: did the straight segment between sparse fixes leave the corridor faster
        # than the road allows? Then the vehicle cut across instead of following the route.
        chord = math.hypot(p.x - last.x, p.y - last.y)
        gap = p.t - last.t
        route_speed = abs(p.measure - last.measure) / gap * 3.6 if gap > 0 else 0.0
        if chord > self.route.corridor_m and route_speed > cfg.shortcut_max_kmh:
            worst = 0.0
            for f in (0.25, 0.5, 0.75):
                d, _ = self.route.locate_xy(last.x + f * (p.x - last.x), last.y + f * (p.y - last.y))
                worst = max(worst, d)
            if worst > self._threshold:
                reason = t_plain(
                    "left the corridor between fixes: {metres} m of route in {gap_text} would need {speed} km/h;"
                    " straight path passes {outside} m outside",
                    metres=f"{abs(p.measure - last.measure):.0f}",
                    gap_text=_fmt_s(gap),
                    speed=f"{route_speed:.0f}",
                    outside=f"{worst - self.route.corridor_m:.0f}",
                )
                changes += self._open("deviation", "deviation", "high", last.t, p, reason, p.t)
                changes += self._clear("deviation", p.t)
        return changes

    def _stop(self, last: _Point, p: _Point, in_zone: bool) -> list[AlertChange]:
        cfg = self.config
        anchor = self._anchor
        if anchor is None or math.hypot(p.x - anchor.x, p.y - anchor.y) > cfg.stop_radius_m:
            self._anchor = p
            return self._clear("stop", last.t)
        still = p.t - anchor.t
        if still >= cfg.stop_min_s and not in_zone and "stop" not in self.open_alerts:
            reason = t_plain(
                "stationary for {duration_text} outside authorised places (limit {limit_text})",
                duration_text=_fmt_s(still),
                limit_text=_fmt_s(cfg.stop_min_s),
            )
            return self._open("stop", "stop", "high", anchor.t, p, reason, p.t)
        return []

    def _overdue(self, last: _Point, p: _Point) -> list[AlertChange]:
        cfg = self.config
        remaining = max(self.route.length_m - p.measure, 0.0)
        if p.t > self._deadline:
            existing = self.open_alerts.get("overdue")
            reason = t_plain(
                "deadline {deadline} passed, {km} km of route remaining",
                deadline=_iso(self.plan.deadline),
                km=f"{remaining / 1000:.1f}",
            )
            if existing is None:
                return self._open("overdue", "overdue", "high", self._deadline, p, reason, p.t)
            if existing.severity != "high":
                existing.severity = "high"
                existing.reason = reason
                return [AlertChange("update", existing)]
            return []
        # Pace = route progress per minute of *moving* time in the recent window: dwell time is the stop
        # detector's business and an on-going stop only shifts "now", so the ETA stays honest.
        if p.t > last.t and (p.measure - last.measure) / (p.t - last.t) >= cfg.moving_min_ms:
            self._moving_total += p.t - last.t  # progressing along the route, not shuffling at a stand
        progress = self._progress
        progress.append((p.t, p.measure, self._moving_total))
        while progress and p.t - progress[0][0] > cfg.eta_window_s:
            progress.popleft()
        assert self._opened_t is not None
        if p.t - self._opened_t < cfg.eta_min_elapsed_s or p.outside or self._moving_total <= 0:
            return []
        _t0, m0, mv0 = progress[0]
        moving_window = self._moving_total - mv0
        average = max(p.measure - self._opened_measure, 0.0) / self._moving_total
        speed = average
        if moving_window >= cfg.eta_min_moving_s:
            recent = max(p.measure - m0, 0.0) / moving_window
            if recent >= cfg.moving_min_ms:
                speed = recent
        if speed < cfg.moving_min_ms:
            return []  # no usable pace (e.g. wandering off-route): lateness is still raised at the deadline
        eta = p.t + remaining / speed
        if eta > self._deadline + cfg.overdue_margin_s:
            self._late_streak += 1
            self._ok_streak = 0
            self._ok_since = None
            if self._late_since is None:
                self._late_since = p.t
            if self._late_streak >= cfg.overdue_confirm_fixes and p.t - self._late_since >= cfg.overdue_confirm_s:
                reason = t_plain(
                    "predicted arrival {late_text} after the deadline; {km} km left at {speed} km/h",
                    late_text=_fmt_s(eta - self._deadline),
                    km=f"{remaining / 1000:.1f}",
                    speed=f"{speed * 3.6:.0f}",
                )
                return self._open("overdue", "overdue", "medium", p.t, p, reason, p.t)
        else:
            self._ok_streak += 1
            self._late_streak = 0
            self._late_since = None
            if self._ok_since is None:
                self._ok_since = p.t
            if self._ok_streak >= cfg.overdue_confirm_fixes and p.t - self._ok_since >= cfg.overdue_confirm_s:
                return self._clear("overdue", p.t)
        return []

    # ---- seal reading without a GPS fix ------------------------------------------------------
    def observe_seal(self, time: datetime, seal: SealReading | None, low_battery: bool = False) -> list[AlertChange]:
        """An e-seal event with no usable position (no fix inside a warehouse, say): the seal detector
        still runs, placed at the last known position; movement detectors are left alone."""
        if seal is not None:
            self._seal = seal
        if self.phase != "open" or self._last is None:
            return []
        t = time.timestamp()
        last = self._last
        here = _Point(max(t, last.t), last.x, last.y, last.lat, last.lon, last.dist, last.measure, last.outside)
        return self._seal_checks(Fix(self.plan.trip_id, time, last.lat, last.lon, seal, low_battery), here, here.t)

    @property
    def last_position(self) -> tuple[float, float] | None:
        return (self._last.lat, self._last.lon) if self._last is not None else None

    # ---- clock without fixes ---------------------------------------------------------------
    def tick(self, now: datetime) -> list[AlertChange]:
        """Time passes without a fix: signal loss and lateness still have to be raised."""
        if self.phase != "open" or self._last is None:
            return []
        t = now.timestamp()
        last = self._last
        changes: list[AlertChange] = []
        if t - last.t > self.config.signal_lost_s:
            reason = t_plain(
                "no position for {gap_text} (limit {limit_text})",
                gap_text=_fmt_s(t - last.t),
                limit_text=_fmt_s(self.config.signal_lost_s),
            )
            changes += self._open("signal_lost", "signal_lost", "high", last.t, last, reason, t)
        if t > self._deadline:
            existing = self.open_alerts.get("overdue")
            reason = t_plain("deadline {deadline} passed before arrival", deadline=_iso(self.plan.deadline))
            if existing is None:
                changes += self._open("overdue", "overdue", "high", self._deadline, last, reason, t)
            elif existing.severity != "high":
                existing.severity = "high"
                existing.reason = reason
                changes.append(AlertChange("update", existing))
        return changes


def monitor_trip(
    plan: TripPlan,
    routes: dict[str, Route],
    zones: dict[str, Zone],
    config: DetectorConfig | None = None,
) -> TripMonitor:
    """A monitor wired to the trip's route and zones (every zone is an authorised stopping place)."""
    route = routes[plan.route_id]
    return TripMonitor(
        plan,
        route,
        zones.get(plan.origin_zone),
        zones.get(plan.destination_zone),
        authorised=[
            z
            for z in zones.values()
            if z.authorised_stop and z.zone_id not in (plan.origin_zone, plan.destination_zone)
        ],
        config=config or DetectorConfig(),
    )


def replay(
    plans: Iterable[TripPlan],
    routes: dict[str, Route],
    zones: dict[str, Zone],
    fixes: Iterable[Fix],
    config: DetectorConfig | None = None,
    end: datetime | None = None,
    adaptive_signal: bool = False,
) -> list[Alert]:
    """Run the detectors offline over recorded fixes (sorted per trip by time; exact repeats dropped).

    `end` is the replay clock's last instant (default: the newest fix of all trips); trips still open
    then get signal-lost / overdue alerts as a live system would have raised them. With
    `adaptive_signal`, a trip whose device normally reports sparsely gets a signal-lost limit of at
    least 3x its median reporting interval (a unit set to report every 15 min is not "lost" at 10).
    """
    cfg = config or DetectorConfig()
    plans = list(plans)
    by_trip: dict[str, list[Fix]] = {p.trip_id: [] for p in plans}
    newest: datetime | None = None
    for f in fixes:
        if f.trip_id in by_trip:
            by_trip[f.trip_id].append(f)
            newest = f.time if newest is None or f.time > newest else newest
    clock_end = end or newest
    alerts: list[Alert] = []
    for plan in plans:
        track = sorted(by_trip[plan.trip_id], key=lambda f: f.time)
        trip_cfg = cfg
        if adaptive_signal and len(track) >= 3:
            gaps = sorted((b.time - a.time).total_seconds() for a, b in itertools.pairwise(track))
            median_gap = gaps[len(gaps) // 2]
            if 3 * median_gap > cfg.signal_lost_s:
                trip_cfg = replace(cfg, signal_lost_s=3 * median_gap)
        monitor = monitor_trip(plan, routes, zones, trip_cfg)
        for f in track:
            monitor.observe(f)
        if clock_end is not None:
            monitor.tick(clock_end)
        alerts.extend(monitor.alerts)
    alerts.sort(key=lambda a: (a.trip_id, a.start, a.type))
    return alerts
