"""Tracking use cases: routes and zones, trips, device ingest (decoders or Traccar forwarding), alerts.

Each use case is one transaction. Per-trip detector state lives in memory (`TripMonitor`) and is rebuilt
from the stored positions when a process starts, so the database stays the record. Alert changes are
published on an in-process bus after commit; the SSE endpoint and other subscribers listen there.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from shapely.geometry import mapping, shape
from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.tracking.errors import TrackingError
from smartcustoms.tracking.files import parse_routes, parse_time
from smartcustoms.tracking.model import (
    AlertChange,
    DetectorConfig,
    Fix,
    Route,
    TripMonitor,
    TripPlan,
    Zone,
)
from smartcustoms.tracking.protocols.base import LOW_BATTERY_ALARMS, SEAL_ALARMS, Frame
from smartcustoms.tracking.store import AlertRow, PositionRow, RouteRow, TripRow, ZoneRow

OFFICERS = (Role.OFFICER, Role.ADMIN)
ACTIVE = ("planned", "open")


class AlertBus:
    """Publish/subscribe for alert changes. Subscribers (SSE streams) are queues of this process; a
    published change goes through the configured event stream (`stream.get_stream()`): straight to
    `fan_out` in-process, or over NATS (`tracking.alerts`) to every console process, which fans it out."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        from smartcustoms.tracking import stream

        remote = stream.get_stream()
        if isinstance(remote, stream.NatsStream):
            remote.subscribe_alerts(self.fan_out)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]

    def publish(self, event: dict[str, Any]) -> None:
        from smartcustoms.tracking import stream

        stream.get_stream().publish_alert(event)

    def fan_out(self, event: dict[str, Any]) -> None:
        """Hand an alert change to this process's subscribers."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # loop closed: the subscriber went away
                self.unsubscribe(queue)


BUS = AlertBus()


class RateLimiter:
    """Token bucket per device: a flooding device is throttled and counted, the others carry on."""

    def __init__(self, rate_per_s: float = 20.0, burst: float = 100.0, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_per_s
        self.burst = burst
        self.clock = clock  # tests stop it, so what is throttled does not depend on the machine's speed
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        t = self.clock() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, t)
            return False
        self._buckets[key] = (tokens - 1.0, t)
        return True


@dataclass
class IngestStats:
    """What the ingest path did with what it was given: counted, never a crash."""

    stored: int = 0
    flagged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unknown_device: int = 0
    rate_limited: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "flagged": dict(self.flagged),
            "unknown_device": self.unknown_device,
            "rate_limited": self.rate_limited,
            "alerts": self.alerts,
        }


_LOCK = threading.RLock()
_MONITORS: dict[tuple[str, str], TripMonitor] = {}
_DEVICES: dict[tuple[str, str], tuple[float, tuple[str, str] | None]] = {}
_ROUTES: dict[tuple[str, str], Route] = {}
_ZONES: dict[str, dict[str, Zone]] = {}
_DB_KEYS: dict[int, str] = {}
POSITIONS = cast(Table, PositionRow.__table__)  # Core insert target: no ORM unit of work per fix
DEVICE_CACHE_S = 60.0  # a device's active trip (an arriving trip drops its entry at once)
UNKNOWN_DEVICE_CACHE_S = 5.0  # an unknown device is looked up again after this
LIMITER = RateLimiter()
CONFIG = DetectorConfig()


def reset_state() -> None:
    """Forget in-memory detector state (tests; a new process starts empty and rebuilds lazily)."""
    with _LOCK:
        _MONITORS.clear()
        _ROUTES.clear()
        _ZONES.clear()
        _DEVICES.clear()
        _DB_KEYS.clear()
        LIMITER._buckets.clear()
    _PARTITIONS.clear()
    EVALUATED.clear()


# ---- routes and zones ---------------------------------------------------------------------------
def import_routes(who: Principal, doc: Any) -> dict[str, int]:
    """Create or replace approved routes and zones from a GeoJSON FeatureCollection."""
    _need_officer(who)
    routes, zones = parse_routes(doc, "body")
    with unit_of_work() as s:
        for z in zones.values():
            row = s.get(ZoneRow, z.zone_id) or ZoneRow(zone_id=z.zone_id)
            row.kind = z.kind
            row.authorised_stop = z.authorised_stop
            row.geometry = dict(mapping(z.polygon))
            s.merge(row)
        for r in routes.values():
            row_r = s.get(RouteRow, r.route_id) or RouteRow(route_id=r.route_id)
            row_r.corridor_m = r.corridor_m
            row_r.coordinates = [[lon, lat] for lat, lon in r.coords]
            row_r.variants = [[[lon, lat] for lat, lon in v] for v in r.variants] or None
            s.merge(row_r)
        audit.record(s, who, "import_routes", "tracking_route", ",".join(routes) or "-", detail={"zones": list(zones)})
    with _LOCK:
        _ROUTES.clear()
        _ZONES.clear()
        _MONITORS.clear()  # geometry changed: rebuild detector state from stored positions
    return {"routes": len(routes), "zones": len(zones)}


def map_layers(who: Principal) -> dict[str, Any]:
    """Zones, routes and corridors as one GeoJSON FeatureCollection for the console map."""
    features: list[dict[str, Any]] = []
    with unit_of_work() as s:
        for z in s.scalars(select(ZoneRow)):
            features.append(
                {"type": "Feature", "properties": {"zone_id": z.zone_id, "kind": z.kind}, "geometry": z.geometry}
            )
        for r in s.scalars(select(RouteRow)):
            route = _route(r)
            features.append(
                {
                    "type": "Feature",
                    "properties": {"route_id": r.route_id, "corridor_m": r.corridor_m},
                    "geometry": (
                        {"type": "MultiLineString", "coordinates": [r.coordinates, *r.variants]}
                        if r.variants
                        else {"type": "LineString", "coordinates": r.coordinates}
                    ),
                }
            )
            features.append(
                {
                    "type": "Feature",
                    "properties": {"corridor_of": r.route_id},
                    "geometry": mapping(route.corridor_polygon()),
                }
            )
    return {"type": "FeatureCollection", "features": features}


# ---- trips ----------------------------------------------------------------------------------------------
def create_trip(who: Principal, data: dict[str, Any]) -> TripRow:
    """Register a bonded transfer; a carrier registers only its own, officers any."""
    if who.role not in (*OFFICERS, Role.CARRIER):
        raise Forbidden(Problem("forbidden_role", (), t("only officers and carriers register trips")))
    problems: list[Problem] = []
    times: dict[str, datetime] = {}
    for key in ("departure", "deadline"):
        value = data.get(key)
        try:
            times[key] = value if isinstance(value, datetime) else parse_time(str(value))
        except ValueError:
            problems.append(Problem("bad-time", (key,), t("'{value}' is not an ISO 8601 time", value=str(value))))
    if len(times) == 2 and times["deadline"] <= times["departure"]:
        problems.append(Problem("bad-time", ("deadline",), t("deadline is not after departure")))
    carrier = data.get("carrier_id") or who.party_id
    if who.role == Role.CARRIER and carrier != who.party_id:
        problems.append(Problem("forbidden_party", ("carrier_id",), t("a carrier registers trips only for itself")))
    with unit_of_work() as s:
        if s.get(RouteRow, str(data.get("route_id"))) is None:
            problems.append(
                Problem("unknown-route", ("route_id",), t("no route '{route}'", route=str(data.get("route_id"))))
            )
        for key in ("origin_zone", "destination_zone"):
            if s.get(ZoneRow, str(data.get(key))) is None:
                problems.append(Problem("unknown-zone", (key,), t("no zone '{zone}'", zone=str(data.get(key)))))
        if problems:
            raise TrackingError(problems)
        if s.get(TripRow, data["trip_id"]) is not None:
            raise Conflict(Problem("duplicate", ("trip_id",), t("trip {trip} exists", trip=data["trip_id"])))
        for dev_key in ("device_id", "seal_id"):
            dev = data.get(dev_key)
            if dev and s.scalar(
                select(TripRow.trip_id).where(
                    or_(TripRow.device_id == dev, TripRow.seal_id == dev), TripRow.status.in_(ACTIVE)
                )
            ):
                raise Conflict(
                    Problem("device-busy", (dev_key,), t("device {device} is already on an active trip", device=dev))
                )
        row = TripRow(
            trip_id=data["trip_id"],
            route_id=data["route_id"],
            origin_zone=data["origin_zone"],
            destination_zone=data["destination_zone"],
            departure=times["departure"],
            deadline=times["deadline"],
            carrier_id=carrier,
            declaration_ref=data.get("declaration_ref"),
            vehicle=data.get("vehicle"),
            container=data.get("container"),
            seal_id=data.get("seal_id"),
            device_id=data.get("device_id"),
            status="planned",
            created_at=datetime.now(UTC),
            created_by=who.username,
        )
        s.add(row)
        audit.record(s, who, "create_trip", "tracking_trip", row.trip_id)
    with _LOCK:  # the device may have been seen (and cached as unknown) before its trip was registered
        for dev in (row.device_id, row.seal_id):
            for cached in [k for k in _DEVICES if k[1] == dev]:
                del _DEVICES[cached]
    return row


def list_trips(who: Principal, status: str | None = None) -> list[TripRow]:
    with unit_of_work() as s:
        q = select(TripRow).order_by(TripRow.departure.desc())
        if who.role == Role.CARRIER:
            q = q.where(TripRow.carrier_id == who.party_id)
        elif not who.is_customs:
            raise Forbidden(Problem("forbidden_role", (), t("trips are visible to customs and their carrier")))
        if status:
            q = q.where(TripRow.status == status)
        return list(s.scalars(q))


def get_trip(who: Principal, trip_id: str) -> tuple[TripRow, list[PositionRow], list[AlertRow]]:
    """A trip with its track (for replay on the map) and alert history."""
    with unit_of_work() as s:
        trip = _visible_trip(s, who, trip_id)
        positions = list(
            s.scalars(select(PositionRow).where(PositionRow.trip_id == trip_id).order_by(PositionRow.time))
        )
        alerts = list(s.scalars(select(AlertRow).where(AlertRow.trip_id == trip_id).order_by(AlertRow.start)))
    return trip, positions, alerts


def vehicles(who: Principal) -> list[dict[str, Any]]:
    """Latest accepted position of every active trip (the moving dots on the console map)."""
    out = []
    with unit_of_work() as s:
        q = select(TripRow).where(TripRow.status.in_(ACTIVE))
        if who.role == Role.CARRIER:
            q = q.where(TripRow.carrier_id == who.party_id)
        elif not who.is_customs:
            raise Forbidden(Problem("forbidden_role", (), t("vehicles are visible to customs and their carrier")))
        for trip in s.scalars(q):
            last = s.scalar(
                select(PositionRow)
                .where(PositionRow.trip_id == trip.trip_id, PositionRow.flag.is_(None))
                .order_by(PositionRow.time.desc())
                .limit(1)
            )
            if last is not None:
                out.append(
                    {
                        "trip_id": trip.trip_id,
                        "status": trip.status,
                        "vehicle": trip.vehicle,
                        "container": trip.container,
                        "time": _aware(last.time).isoformat(),
                        "latitude": last.latitude,
                        "longitude": last.longitude,
                        "seal": last.seal,
                    }
                )
    return out


# ---- ingest ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """A position plus seal state from any source (decoded frame, Traccar forwarding, API)."""

    device_id: str
    time: datetime
    latitude: float | None  # None: a seal event without a GPS fix
    longitude: float | None
    speed_kmh: float | None = None
    seal: str | None = None
    low_battery: bool = False
    source: str = "api"


def readings_from_frame(frame: Frame, device_id: str | None = None, now: datetime | None = None) -> list[Reading]:
    """Decoder output → readings: positions carry the seal state their e-seal or alarm bits reported; a
    seal alarm without a position (a GT06 heartbeat) becomes a seal reading at the last known place."""
    dev = device_id or frame.device_id or ""
    out = []
    seal = next((e for e in frame.events if e.state is not None), None)
    low = any(e.low_battery for e in frame.events)
    for p in frame.positions:
        state = p.attributes.get("seal") or (seal.state if seal else None)
        low_p = low or bool(p.attributes.get("low_battery"))
        if not p.valid:
            if state is not None or low_p:  # no GPS fix, but the seal spoke: keep the seal reading
                out.append(Reading(p.device_id or dev, p.time, None, None, None, state, low_p, frame.protocol))
            continue
        out.append(
            Reading(p.device_id or dev, p.time, p.latitude, p.longitude, p.speed_kmh, state, low_p, frame.protocol)
        )
    if not frame.positions and dev:
        for e in frame.events:
            if e.state is not None or e.low_battery:
                when = e.time or now or datetime.now(UTC)
                out.append(Reading(e.device_id or dev, when, None, None, None, e.state, e.low_battery, frame.protocol))
    return out


TRACCAR_ALARMS = SEAL_ALARMS  # Traccar's alarm names, the same the decoders use


def readings_from_traccar(doc: Any) -> list[Reading]:
    """Traccar's JSON forwarding (`forward.json`: {position, device}; event forwarding: {event, position, device})."""
    if isinstance(doc, dict) and isinstance(doc.get("event"), dict) and not isinstance(doc.get("position"), dict):
        return []  # status events without a position (deviceOnline/Offline...): the clock checks cover them
    if not isinstance(doc, dict) or not isinstance(doc.get("position"), dict):
        raise TrackingError([Problem("bad-traccar", ("position",), t("expected Traccar JSON with a position object"))])
    pos = doc["position"]
    device: dict[str, Any] = doc["device"] if isinstance(doc.get("device"), dict) else {}
    dev = device.get("uniqueId") or pos.get("deviceId")
    problems = []
    if dev in (None, ""):
        problems.append(Problem("bad-traccar", ("device", "uniqueId"), t("no device uniqueId or position.deviceId")))
    try:
        fix_time = parse_time(str(pos.get("fixTime") or pos.get("deviceTime")))
    except ValueError:
        problems.append(
            Problem(
                "bad-time",
                ("position", "fixTime"),
                t("'{value}' is not an ISO 8601 time", value=str(pos.get("fixTime"))),
            )
        )
    lat, lon = pos.get("latitude"), pos.get("longitude")
    if not isinstance(lat, int | float) or not -90 <= lat <= 90:
        problems.append(
            Problem("bad-coordinate", ("position", "latitude"), t("'{value}' is not a latitude", value=str(lat)))
        )
    if not isinstance(lon, int | float) or not -180 <= lon <= 180:
        problems.append(
            Problem("bad-coordinate", ("position", "longitude"), t("'{value}' is not a longitude", value=str(lon)))
        )
    if problems:
        raise TrackingError(problems)
    attrs: dict[str, Any] = pos["attributes"] if isinstance(pos.get("attributes"), dict) else {}
    event: dict[str, Any] = doc["event"] if isinstance(doc.get("event"), dict) else {}
    alarm = event["attributes"].get("alarm") if isinstance(event.get("attributes"), dict) else None
    alarm = alarm or attrs.get("alarm")
    seal = None
    low = False
    for a in str(alarm or "").split(","):
        if a in TRACCAR_ALARMS:
            seal = TRACCAR_ALARMS[a]
        if a in LOW_BATTERY_ALARMS:
            low = True
    if seal is None and isinstance(attrs.get("lock"), bool):
        seal = "closed" if attrs["lock"] else "open"
    speed = pos.get("speed")
    return [
        Reading(
            str(dev),
            fix_time,
            float(lat),
            float(lon),
            float(speed) * 1.852 if isinstance(speed, int | float) else None,
            seal,
            low,
            "traccar",
        )
    ]


def _db_key(s: Session) -> str:
    bind = s.get_bind()
    key = _DB_KEYS.get(id(bind))
    if key is None:
        key = _DB_KEYS[id(bind)] = str(getattr(bind, "url", ""))
    return key


def _active_trip(s: Session, db: str, device_id: str, now: float) -> tuple[str, str] | None:
    """(trip_id, status) of the device's active trip, cached: a flood of fixes from a few hundred
    devices must not cost a query each (a trip registered in another process is picked up within
    `UNKNOWN_DEVICE_CACHE_S`)."""
    hit = _DEVICES.get((db, device_id))
    if hit is not None and hit[0] > now:
        return hit[1]
    row = s.execute(
        select(TripRow.trip_id, TripRow.status).where(
            or_(TripRow.device_id == device_id, TripRow.seal_id == device_id), TripRow.status.in_(ACTIVE)
        )
    ).first()
    found = (row[0], row[1]) if row is not None else None
    _DEVICES[(db, device_id)] = (now + (DEVICE_CACHE_S if found else UNKNOWN_DEVICE_CACHE_S), found)
    return found


_PARTITIONS: dict[str, tuple[float, str]] = {}
EVALUATED: defaultdict[str, int] = defaultdict(int)  # readings this process stored and evaluated, per trip


def evaluated_trips() -> dict[str, int]:
    """Readings this process stored and evaluated, per trip (a sharded detector reports its share)."""
    return dict(sorted(EVALUATED.items()))


def partition_keys(device_ids: set[str]) -> dict[str, str]:
    """The key the event stream partitions a device's readings by: its active trip (a trip's on-board unit
    and e-seal may report under two device IDs; both must reach the same detector), else the device itself.
    Cached like the detectors' device look-up; one query per batch for the devices not cached."""
    now = time.monotonic()
    keys: dict[str, str] = {}
    missing: list[str] = []
    for dev in device_ids:
        hit = _PARTITIONS.get(dev)
        if hit is not None and hit[0] > now:
            keys[dev] = hit[1]
        else:
            missing.append(dev)
    if missing:
        found: dict[str, str] = {}
        try:
            with unit_of_work() as s:
                rows = s.execute(
                    select(TripRow.trip_id, TripRow.device_id, TripRow.seal_id).where(
                        or_(TripRow.device_id.in_(missing), TripRow.seal_id.in_(missing)), TripRow.status.in_(ACTIVE)
                    )
                )
                for trip_id, unit, seal in rows:
                    for d in (unit, seal):
                        if d is not None and d in missing:
                            found[d] = str(trip_id)
        except OperationalError:  # no database in reach: the device itself (its own readings stay in order)
            pass
        for dev in missing:
            key = found.get(dev)
            ttl = DEVICE_CACHE_S if key else UNKNOWN_DEVICE_CACHE_S
            keys[dev] = f"trip:{key}" if key else f"device:{dev}"
            _PARTITIONS[dev] = (now + ttl, keys[dev])
    return keys


class _Raced(RuntimeError):
    """A reading this transaction evaluated as new was stored meanwhile by another writer (a second detector
    given the same stream message after `ack_wait`, or an API call with the same fix)."""


RACE_RETRIES = 3


def ingest(readings: list[Reading], received_at: datetime | None = None) -> IngestStats:
    """Store readings with their trip and run the detectors; one transaction (one multi-row insert) for
    the batch, so a caller acknowledging the devices after this returns never acknowledges a lost fix.

    Idempotent: a reading is stored once (unique device/time/source/kind; a copy is counted as a
    duplicate). If readings the detectors took as new turn out to be stored already by another writer,
    the transaction is rolled back, the trips' detector state is rebuilt from the database and the batch
    runs again without them, so a stream message handled twice raises no alert twice."""
    now = received_at or datetime.now(UTC)
    clock = time.monotonic()
    limited = 0
    allowed: list[Reading] = []
    for r in readings:
        if LIMITER.allow(r.device_id):
            allowed.append(r)
        else:
            limited += 1
    with _LOCK:
        for attempt in range(RACE_RETRIES + 1):
            try:
                stats, changes = _ingest_once(allowed, now, clock, skip_stored=attempt > 0)
                break
            except (_Raced, OperationalError) as exc:
                if attempt == RACE_RETRIES or not (isinstance(exc, _Raced) or _raced(exc)):
                    raise
    stats.rate_limited = limited
    for c in changes:
        record = {"action": c.action, **c.alert.as_record()}
        stats.alerts.append(record)
        BUS.publish(record)
    return stats


def _raced(exc: OperationalError) -> bool:
    """Two writers on the same readings: SQLite refuses a write on a snapshot another connection has moved
    past, PostgreSQL may pick one of two detectors inserting overlapping batches as a deadlock victim."""
    return "database is locked" in str(exc.orig) or "deadlock detected" in str(exc.orig)


def _kind(r: Reading) -> str:
    return "fix" if r.latitude is not None and r.longitude is not None else "seal"


def _ingest_once(
    readings: list[Reading], now: datetime, clock: float, skip_stored: bool
) -> tuple[IngestStats, list[AlertChange]]:
    stats = IngestStats()
    changes: list[AlertChange] = []
    fresh: list[dict[str, Any]] = []  # readings the detectors evaluated as new: they must not be stored yet
    other: list[dict[str, Any]] = []  # flagged, not evaluated (a copy of a stored fix is simply skipped)
    moved: dict[str, tuple[str, bool | None]] = {}
    touched: set[tuple[str, str]] = set()
    db = ""
    try:
        with unit_of_work() as s:
            db = _db_key(s)
            if skip_stored:
                stored = _stored_keys(s, readings)
                kept = [r for r in readings if (r.device_id, r.time.timestamp(), r.source, _kind(r)) not in stored]
                stats.flagged["duplicates"] += len(readings) - len(kept)
                readings = kept
            _prefetch(s, db, readings, clock)
            for r in readings:
                active = _active_trip(s, db, r.device_id, clock)
                if active is None:
                    stats.unknown_device += 1
                    continue
                trip_id = active[0]
                monitor = _monitor_of(s, db, trip_id)
                if monitor is None or monitor.phase == "closed":
                    stats.unknown_device += 1
                    continue
                touched.add((db, trip_id))
                if r.latitude is None or r.longitude is None:
                    # the monitor keeps no history of seal events: a re-sent one is looked up (they are few)
                    if not skip_stored and _stored_keys(s, [r]):
                        stats.flagged["duplicates"] += 1
                        continue
                    seal_changes = monitor.observe_seal(r.time, r.seal, r.low_battery)  # type: ignore[arg-type]
                    where = monitor.last_position
                    if where is not None:
                        fresh.append(_row(trip_id, r, now, where[0], where[1], "no_fix"))
                    stats.flagged["no_fix"] += 1
                    changes += _persist(s, seal_changes)
                    continue
                counters = monitor.counters
                before = (counters["future"], counters["out_of_order"], counters["duplicates"])
                phase = monitor.phase
                fix = Fix(trip_id, r.time, r.latitude, r.longitude, r.seal, r.low_battery, now)  # type: ignore[arg-type]
                trip_changes = monitor.observe(fix)
                flag = None
                if counters["future"] != before[0]:
                    flag = "future"
                elif counters["out_of_order"] != before[1]:
                    flag = "out_of_order"
                elif counters["duplicates"] != before[2]:
                    flag = "duplicates"
                if flag:
                    stats.flagged[flag] += 1
                (other if flag else fresh).append(_row(trip_id, r, now, r.latitude, r.longitude, flag))
                if trip_changes:
                    changes += _persist(s, trip_changes)
                if monitor.phase != phase:
                    moved[trip_id] = (
                        "planned" if monitor.phase == "pending" else monitor.phase,
                        monitor.arrived_sealed,
                    )
            if fresh and _insert_positions(s, fresh) != len(fresh):
                raise _Raced(f"{len(fresh)} readings taken as new were stored meanwhile by another writer")
            stats.stored = len(fresh) + (_insert_positions(s, other) if other else 0)
            if moved:  # one Core executemany (the ORM's per-update synchronisation walked every trip it held)
                s.connection().execute(
                    _MOVE_TRIP,
                    [{"tid": t, "new_status": st, "sealed": sealed} for t, (st, sealed) in moved.items()],
                )
    except BaseException:
        for key in touched:  # their detector state saw readings that were not stored: rebuild it
            _MONITORS.pop(key, None)
        raise
    for row in fresh:
        EVALUATED[row["trip_id"]] += 1
    for trip_id in moved:
        for key, (_exp, hit) in list(_DEVICES.items()):
            if hit is not None and hit[0] == trip_id:
                del _DEVICES[key]
    return stats, changes


def _stored_keys(s: Session, readings: list[Reading]) -> set[tuple[str, float, str, str]]:
    """Natural keys (device, time, source, kind) of the given readings that are stored already."""
    if not readings:
        return set()
    stored = {
        (d, _aware(when).timestamp(), src, kind)
        for d, when, src, kind in s.execute(
            select(PositionRow.device_id, PositionRow.time, PositionRow.source, PositionRow.kind).where(
                PositionRow.device_id.in_({r.device_id for r in readings}),
                PositionRow.time >= min(r.time for r in readings),
                PositionRow.time <= max(r.time for r in readings),
            )
        )
    }
    return {k for r in readings if (k := (r.device_id, r.time.timestamp(), r.source, _kind(r))) in stored}


def not_yet_stored(readings: list[Reading]) -> list[Reading]:
    """The readings not stored yet: a stream message redelivered after a detector died between its commit
    and its ack is mostly stored already; filtering it first spares `ingest` a rolled-back attempt."""
    if not readings:
        return []
    with unit_of_work() as s:
        stored = _stored_keys(s, readings)
    return [r for r in readings if (r.device_id, r.time.timestamp(), r.source, _kind(r)) not in stored]


_COLUMNS = (
    "trip_id",
    "device_id",
    "source",
    "kind",
    "time",
    "received_at",
    "latitude",
    "longitude",
    "speed_kmh",
    "seal",
    "low_battery",
    "flag",
)
_KEY = ["device_id", "time", "source", "kind"]
_SQLITE_INSERT = (
    f"INSERT INTO tracking_position ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT DO NOTHING"
)

_PG_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "float8",
    "float8",
    "float8",
    "text",
    "bool",
    "text",
)
_PG_INSERT = (
    f"INSERT INTO tracking_position ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _PG_TYPES)
    + ") ON CONFLICT DO NOTHING"
)


def _pg_quoted(v: str | None) -> str:
    return "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pg_texts(values: list[Any]) -> str:
    """A PostgreSQL array literal of texts: `{"a","b",NULL}` (quotes and backslashes escaped)."""
    if None not in values:
        joined = '","'.join(values)
        if joined.count('"') == 2 * (len(values) - 1) and "\\" not in joined:  # no quote inside a value
            return '{"' + joined + '"}' if values else "{}"
    return "{" + ",".join(map(_pg_quoted, values)) + "}"


def _pg_floats(values: list[Any]) -> str:
    """`{1.5,NULL}`: repr is the shortest text that reads back as the same double."""
    try:
        return "{" + ",".join(map(float.__repr__, values)) + "}"  # all floats (numpy's included): in C
    except TypeError:  # None, int
        return "{" + ",".join("NULL" if v is None else repr(float(v)) for v in values) + "}"


def _pg_times(values: list[Any]) -> str:
    """`{"2026-03-01T08:00:00+00:00",...}`: ISO 8601 with offset, exact to the microsecond."""
    text: dict[datetime, str] = {}  # `received_at` is one value for the whole batch
    return "{" + ",".join(text.get(v) or text.setdefault(v, '"' + v.isoformat() + '"') for v in values) + "}"


def _pg_bools(values: list[Any]) -> str:
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


_PG_ARRAY = {
    c: {"text": _pg_texts, "timestamptz": _pg_times, "float8": _pg_floats, "bool": _pg_bools}[t]
    for c, t in zip(_COLUMNS, _PG_TYPES, strict=True)
}


def _sqlite_time(t: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores (UTC, microseconds always), so rows sort and compare alike."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_ignoring(s: Session, table: Table, key: list[str]) -> Any:
    """`INSERT ... ON CONFLICT (key) DO NOTHING` for SQLite and PostgreSQL."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=key)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=key)


def _insert_positions(s: Session, rows: list[dict[str, Any]]) -> int:
    """One multi-row insert for the batch, skipping readings stored already; returns how many were
    stored. On SQLite straight through the driver's executemany (the per-row parameter processing of
    SQLAlchemy was a fifth of the ingest time), on PostgreSQL Core's multi-row VALUES with RETURNING
    (executemany reports no row count there)."""
    conn = s.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        # One statement with one array per column (unnest): a 1,000-row batch costs twelve parameters
        # instead of SQLAlchemy building and binding 12,000 (2.4x the rows/s of the multi-row VALUES). Each
        # array goes as its text literal, built here with str.join: psycopg's list dumper, element by element
        # in Python, cost four times the CPU (a quarter of the ingest).
        cols = tuple(_PG_ARRAY[c]([r[c] for r in rows]) for c in _COLUMNS)
        return int(conn.exec_driver_sql(_PG_INSERT, cols).rowcount)
    if conn.dialect.name != "sqlite":
        return len(s.execute(_insert_ignoring(s, POSITIONS, _KEY).returning(POSITIONS.c.id), rows).all())
    times: dict[datetime, str] = {}
    params = []
    for r in rows:
        t, rec = r["time"], r["received_at"]
        tt = times.get(t) or times.setdefault(t, _sqlite_time(t))
        rt = times.get(rec) or times.setdefault(rec, _sqlite_time(rec))
        params.append(
            (
                r["trip_id"],
                r["device_id"],
                r["source"],
                r["kind"],
                tt,
                rt,
                r["latitude"],
                r["longitude"],
                r["speed_kmh"],
                r["seal"],
                1 if r["low_battery"] else 0,
                r["flag"],
            )
        )
    return int(conn.exec_driver_sql(_SQLITE_INSERT, params).rowcount)


def _row(trip_id: str, r: Reading, now: datetime, lat: float, lon: float, flag: str | None) -> dict[str, Any]:
    return {
        "trip_id": trip_id,
        "device_id": r.device_id,
        "source": r.source,
        "kind": "seal" if flag == "no_fix" else "fix",
        "time": r.time,
        "received_at": now,
        "latitude": lat,
        "longitude": lon,
        "speed_kmh": r.speed_kmh if flag != "no_fix" else None,
        "seal": r.seal,
        "low_battery": r.low_battery,
        "flag": flag,
    }


def tick(now: datetime | None = None) -> list[dict[str, Any]]:
    """Clock-driven checks for every open trip (signal lost, deadline passed without fixes)."""
    clock = now or datetime.now(UTC)
    out = []
    with _LOCK, unit_of_work() as s:
        for trip in s.scalars(select(TripRow).where(TripRow.status == "open")):
            changes = _persist(s, _monitor(s, trip).tick(clock))
            out += [{"action": c.action, **c.alert.as_record()} for c in changes]
    for record in out:
        BUS.publish(record)
    return out


# ---- alerts ------------------------------------------------------------------------------------------------
def list_alerts(who: Principal, status: str | None = None, trip_id: str | None = None) -> list[AlertRow]:
    with unit_of_work() as s:
        q = select(AlertRow).order_by(AlertRow.raised_at.desc())
        if who.role == Role.CARRIER:
            q = q.join(TripRow, TripRow.trip_id == AlertRow.trip_id).where(TripRow.carrier_id == who.party_id)
        elif not who.is_customs:
            raise Forbidden(Problem("forbidden_role", (), t("alerts are visible to customs and the trip's carrier")))
        if status:
            q = q.where(AlertRow.status == status)
        if trip_id:
            q = q.where(AlertRow.trip_id == trip_id)
        return list(s.scalars(q.limit(1000)))


def acknowledge_alert(who: Principal, alert_id: int, note: str) -> AlertRow:
    """An officer has seen the alert and says what is being done."""
    _need_officer(who)
    with unit_of_work() as s:
        row = _alert(s, alert_id)
        if row.status == "closed":
            raise Conflict(Problem("closed", ("alert_id",), t("alert is already closed")))
        row.acknowledged_by = who.username
        row.acknowledged_at = datetime.now(UTC)
        row.acknowledge_note = _note(note)
        if row.status == "open":
            row.status = "acknowledged"
        audit.record(s, who, "acknowledge_alert", "tracking_alert", alert_id, note=note)
    BUS.publish({"action": "acknowledge", "id": alert_id, "trip_id": row.trip_id, "by": who.username})
    return row


def close_alert(who: Principal, alert_id: int, note: str) -> AlertRow:
    """An officer closes the alert with the outcome (false alarm, escorted, seized...)."""
    _need_officer(who)
    with unit_of_work() as s:
        row = _alert(s, alert_id)
        if row.status == "closed":
            raise Conflict(Problem("closed", ("alert_id",), t("alert is already closed")))
        row.status = "closed"
        row.closed_by = who.username
        row.closed_at = datetime.now(UTC)
        row.close_note = _note(note)
        audit.record(s, who, "close_alert", "tracking_alert", alert_id, note=note)
    BUS.publish({"action": "close", "id": alert_id, "trip_id": row.trip_id, "by": who.username})
    return row


# ---- helpers -----------------------------------------------------------------------------------------------
def _need_officer(who: Principal) -> None:
    if who.role not in OFFICERS:
        raise Forbidden(Problem("forbidden_role", (), t("only customs officers may do this")))


def _note(note: str) -> str:
    text = (note or "").strip()
    if not text:
        raise TrackingError([Problem("note-required", ("note",), t("an officer's note is required"))])
    return text[:4000]


def _alert(s: Session, alert_id: int) -> AlertRow:
    row = s.get(AlertRow, alert_id)
    if row is None:
        raise NotFound(Problem("unknown-alert", ("alert_id",), t("no alert {alert}", alert=alert_id)))
    return row


def _visible_trip(s: Session, who: Principal, trip_id: str) -> TripRow:
    trip = s.get(TripRow, trip_id)
    if trip is None or (who.role == Role.CARRIER and trip.carrier_id != who.party_id):
        raise NotFound(Problem("unknown-trip", ("trip_id",), t("no trip {trip}", trip=trip_id)))
    if who.role != Role.CARRIER and not who.is_customs:
        raise Forbidden(Problem("forbidden_role", (), t("trips are visible to customs and their carrier")))
    return trip


def _route(row: RouteRow) -> Route:
    variants = [[(lat, lon) for lon, lat in v] for v in row.variants or ()]
    return Route(row.route_id, [(lat, lon) for lon, lat in row.coordinates], row.corridor_m, variants)


def _zone(row: ZoneRow) -> Zone:
    return Zone(row.zone_id, shape(row.geometry), row.kind, row.authorised_stop)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _geometry(s: Session, db: str, route_id: str) -> tuple[Route, dict[str, Zone]]:
    """Route and zones, built once per process and shared by every trip on them (the route's grid index
    is the bulk of a monitor's memory); dropped when routes are imported."""
    route = _ROUTES.get((db, route_id))
    if route is None:
        row = s.get(RouteRow, route_id)
        assert row is not None
        route = _ROUTES[(db, route_id)] = _route(row)
    zones = _ZONES.get(db)
    if zones is None:
        zones = _ZONES[db] = {z.zone_id: _zone(z) for z in s.scalars(select(ZoneRow))}
    return route, zones


def _prefetch(s: Session, db: str, readings: list[Reading], now: float) -> None:
    """The batch's device look-ups and cold detector states in three queries, instead of up to three per
    device: trips starting together (a listener restart, a morning's departures) or status changes that drop
    cached look-ups made the PostgreSQL ingest spend a fifth of its time on single-row queries."""
    missing: set[str] = set()
    for r in readings:
        hit = _DEVICES.get((db, r.device_id))
        if hit is None or hit[0] <= now:
            missing.add(r.device_id)
    if missing:
        found: dict[str, tuple[str, str]] = {}
        for trip_id, status, unit, seal in s.execute(
            select(TripRow.trip_id, TripRow.status, TripRow.device_id, TripRow.seal_id).where(
                or_(TripRow.device_id.in_(missing), TripRow.seal_id.in_(missing)), TripRow.status.in_(ACTIVE)
            )
        ):
            for d in (unit, seal):
                if d is not None and d in missing:
                    found.setdefault(d, (trip_id, status))
        for d in missing:
            trip = found.get(d)
            _DEVICES[(db, d)] = (now + (DEVICE_CACHE_S if trip else UNKNOWN_DEVICE_CACHE_S), trip)
    cold: set[str] = set()
    for r in readings:
        hit = _DEVICES.get((db, r.device_id))
        if hit is not None and hit[1] is not None and (db, hit[1][0]) not in _MONITORS:
            cold.add(hit[1][0])
    if cold:
        history: defaultdict[str, list[Any]] = defaultdict(list)
        for row in s.execute(_history_query().where(PositionRow.trip_id.in_(cold))):
            history[row.trip_id].append(row)
        for row_t in s.scalars(select(TripRow).where(TripRow.trip_id.in_(cold))):
            _monitor(s, row_t, history.get(row_t.trip_id, []))


def _history_query() -> Any:
    """The stored readings a detector state is rebuilt from (evaluated ones: not flagged, or seal events)."""
    return (
        select(
            PositionRow.trip_id,
            PositionRow.time,
            PositionRow.latitude,
            PositionRow.longitude,
            PositionRow.seal,
            PositionRow.low_battery,
            PositionRow.flag,
        )
        .where(or_(PositionRow.flag.is_(None), PositionRow.flag == "no_fix"))
        .order_by(PositionRow.trip_id, PositionRow.time, PositionRow.id)
    )


def _monitor_of(s: Session, db: str, trip_id: str) -> TripMonitor | None:
    monitor = _MONITORS.get((db, trip_id))
    if monitor is not None:
        return monitor
    trip = s.get(TripRow, trip_id)
    return None if trip is None else _monitor(s, trip)


def _monitor(s: Session, trip: TripRow, history: list[Any] | None = None) -> TripMonitor:
    """The trip's detector state; rebuilt from stored positions after a restart (alerts are not re-raised).
    `history`: those positions when the caller fetched them already (`_prefetch`, for many trips at once)."""
    key = (_db_key(s), trip.trip_id)
    monitor = _MONITORS.get(key)
    if monitor is not None:
        return monitor
    route, zones = _geometry(s, key[0], trip.route_id)
    plan = TripPlan(
        trip.trip_id,
        trip.route_id,
        trip.origin_zone,
        trip.destination_zone,
        _aware(trip.departure),
        _aware(trip.deadline),
    )
    monitor = TripMonitor(
        plan,
        route,
        zones.get(trip.origin_zone),
        zones.get(trip.destination_zone),
        authorised=[
            z for zid, z in zones.items() if z.authorised_stop and zid not in (trip.origin_zone, trip.destination_zone)
        ],
        config=CONFIG,
    )
    stored: Any = history
    if stored is None:
        stored = s.execute(_history_query().where(PositionRow.trip_id == trip.trip_id))
    for p in stored:
        if p.flag == "no_fix":
            monitor.observe_seal(_aware(p.time), p.seal, p.low_battery)
            continue
        monitor.observe(Fix(trip.trip_id, _aware(p.time), p.latitude, p.longitude, p.seal, p.low_battery))
    _MONITORS[key] = monitor
    return monitor


ALERTS = cast(Table, AlertRow.__table__)
TRIPS = cast(Table, TripRow.__table__)
_MOVE_TRIP = (
    update(TRIPS)
    .where(TRIPS.c.trip_id == bindparam("tid"))
    .values(status=bindparam("new_status"), arrived_sealed=bindparam("sealed"))
)


def _persist(s: Session, changes: list[AlertChange]) -> list[AlertChange]:
    """Store alert changes; returns those to publish. An alert stored already (same trip, condition and
    start: raised by another detector or clock tick) is skipped, so it is neither stored nor pushed twice."""
    out = []
    for c in changes:
        a = c.alert
        if c.action == "open":
            values = {
                "trip_id": a.trip_id,
                "type": a.type,
                "condition": a.condition,
                "severity": a.severity,
                "start": a.start,
                "end": a.end,
                "raised_at": a.raised_at,
                "latitude": a.latitude,
                "longitude": a.longitude,
                "reason": a.reason,
                "rule_version": a.rule_version,
                "status": "open" if a.end is None else "cleared",
            }
            stmt = _insert_ignoring(s, ALERTS, ["trip_id", "condition", "start"]).values(values)
            if s.execute(stmt.returning(ALERTS.c.id)).first() is not None:
                out.append(c)
            continue
        out.append(c)
        row = s.scalar(
            select(AlertRow)
            .where(AlertRow.trip_id == a.trip_id, AlertRow.condition == a.condition, AlertRow.end.is_(None))
            .order_by(AlertRow.id.desc())
        )
        if row is None:
            continue
        row.severity = a.severity
        row.reason = a.reason
        if c.action == "clear":
            row.end = a.end
            if row.status == "open":
                row.status = "cleared"
    return out
