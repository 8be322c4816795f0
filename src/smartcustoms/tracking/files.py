"""Reading the replay inputs (routes GeoJSON, trips CSV, positions CSV) with errors that name file, line, column.

Every problem found in a file is collected (up to a limit) and raised together as one TrackingError,
each Problem's path being (file name, line, column) so the CLI can print `trips.csv:3: column ...`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, Polygon, shape

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t, t_plain
from smartcustoms.tracking.errors import TrackingError
from smartcustoms.tracking.model import SEAL_READINGS, Fix, Route, TripPlan, Zone

MAX_PROBLEMS = 50
TRIP_COLUMNS = ("trip_id", "route_id", "origin_zone", "destination_zone", "departure", "deadline")
POSITION_COLUMNS = ("trip_id", "timestamp", "latitude", "longitude")


class _Problems:
    def __init__(self, path: Path | str):
        self.name = str(path)
        self.items: list[Problem] = []

    def add(self, line: int | str, column: str, message: str, code: str = "invalid") -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(code, (self.name, line, column), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise TrackingError(self.items)


def format_problem(p: Problem) -> str:
    """`file:line: column 'x': message` (line may be a JSON location such as `features[3]`)."""
    if len(p.path) == 3:
        name, line, column = p.path
        col = f" column '{column}'" if column else ""
        return f"{name}:{line}:{col} {p.message}"
    return p.message


def parse_time(value: str) -> datetime:
    """ISO 8601; a time without zone is taken as UTC."""
    v = value.strip()
    if not v:
        raise ValueError("empty time")
    dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _open_text(path: Path, problems: _Problems) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems.add("-", "", t("file not found"), "not-found")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add("-", "", t("cannot read: {error}", error=str(exc)), "unreadable")
    problems.raise_if_any()
    return ""


def read_routes(path: Path) -> tuple[dict[str, Route], dict[str, Zone]]:
    """Approved routes (LineString + route_id, corridor_m; a MultiLineString is a centre line and its approved
    variants) and zones (Polygon + zone_id)."""
    problems = _Problems(path)
    text = _open_text(path, problems)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(exc.lineno, f"char {exc.colno}", t("not valid JSON: {error}", error=exc.msg), "bad-json")
        problems.raise_if_any()
    return parse_routes(doc, path)


def _position(c: Any) -> tuple[float, float] | None:
    """A GeoJSON position's (lon, lat) (an altitude may follow), or None when it is not two finite numbers."""
    if not isinstance(c, list | tuple) or not 2 <= len(c) <= 3:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in c):
        return None
    return float(c[0]), float(c[1])


def _line(coords: Any, column: str, bad: list[tuple[str, str]]) -> list[tuple[float, float]] | None:
    """One GeoJSON line's positions as (lat, lon); every fault goes to `bad` as (column path, English text)
    (`geometry.coordinates[2]`, `geometry.coordinates[2][5]`), so one request reports all of them."""
    if not isinstance(coords, list):
        bad.append((column, t_plain("coordinates is not a list")))
        return None
    if len(coords) < 2:  # an empty line too
        bad.append((column, t_plain("fewer than two positions")))
        return None
    latlon: list[tuple[float, float]] = []
    for k, c in enumerate(coords):
        pos = _position(c)
        if pos is None:
            bad.append((f"{column}[{k}]", t_plain("position is not [longitude, latitude] numbers")))
            continue
        lon, lat = pos
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            bad.append(
                (
                    f"{column}[{k}]",
                    t_plain("position ({lon}, {lat}) out of range (GeoJSON is lon, lat)", lon=lon, lat=lat),
                )
            )
            continue
        latlon.append((lat, lon))
    return latlon if len(latlon) == len(coords) else None


def parse_routes(doc: Any, source: Path | str = "routes") -> tuple[dict[str, Route], dict[str, Zone]]:
    """Routes and zones from a parsed GeoJSON FeatureCollection (file import and API share this)."""
    problems = _Problems(source)
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        problems.add("$", "type", t("expected a GeoJSON FeatureCollection with a features list"), "bad-geojson")
        problems.raise_if_any()
    routes: dict[str, Route] = {}
    zones: dict[str, Zone] = {}
    for i, feature in enumerate(doc["features"]):
        where = f"features[{i}]"
        if not isinstance(feature, dict):
            problems.add(where, "", t("feature is not an object"))
            continue
        props = feature.get("properties") or {}
        geom = feature.get("geometry") or {}
        gtype = geom.get("type") if isinstance(geom, dict) else None
        if not isinstance(props, dict):
            problems.add(where, "properties", t("properties is not an object"))
            continue
        if gtype in ("LineString", "MultiLineString"):
            rid = props.get("route_id")
            corridor = props.get("corridor_m")
            if not isinstance(rid, str | int) or str(rid) == "":
                problems.add(where, "properties.route_id", t("LineString feature needs a route_id"))
                continue
            if (
                not isinstance(corridor, int | float)
                or isinstance(corridor, bool)
                or not math.isfinite(corridor)
                or corridor <= 0
            ):
                problems.add(
                    where,
                    "properties.corridor_m",
                    t("corridor_m must be a positive number of metres, got {value}", value=repr(corridor)),
                )
                continue
            coords = geom.get("coordinates")
            bad: list[tuple[str, str]] = []
            lines: list[list[tuple[float, float]] | None]
            if gtype == "LineString":
                lines = [_line(coords, "geometry.coordinates", bad)]
            elif not isinstance(coords, list):
                bad.append(("geometry.coordinates", t_plain("coordinates is not a list")))
                lines = []
            elif not coords:
                bad.append(("geometry.coordinates", t_plain("a MultiLineString needs at least one line")))
                lines = []
            else:  # the centre line and each variant checked on its own: every bad one is reported
                lines = [_line(c, f"geometry.coordinates[{j}]", bad) for j, c in enumerate(coords)]
            if bad:
                for column, message in bad:
                    problems.add(where, column, t("bad LineString coordinates: {message}", message=message))
                continue
            checked = [line for line in lines if line is not None]
            if str(rid) in routes:
                problems.add(where, "properties.route_id", t("route_id {route} appears twice", route=rid), "duplicate")
                continue
            # MultiLineString: the first line is the centre line, the others approved variants.
            routes[str(rid)] = Route(str(rid), checked[0], float(corridor), checked[1:])
        elif gtype in ("Polygon", "MultiPolygon"):
            zid = props.get("zone_id")
            if not isinstance(zid, str | int) or str(zid) == "":
                problems.add(where, "properties.zone_id", t("Polygon feature needs a zone_id"))
                continue
            try:
                poly = shape(geom)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError, ShapelyError) as exc:
                problems.add(where, "geometry.coordinates", t("bad polygon: {error}", error=str(exc)))
                continue
            if not isinstance(poly, Polygon | MultiPolygon) or poly.is_empty or not poly.is_valid:
                problems.add(where, "geometry", t("polygon is empty or self-intersecting"))
                continue
            authorised = props.get("authorised_stop", True) is not False
            zones[str(zid)] = Zone(str(zid), poly, str(props.get("kind", "zone")), authorised)
        else:
            problems.add(
                where,
                "geometry.type",
                t("expected LineString (route) or Polygon (zone), got {value}", value=repr(gtype)),
            )
    problems.raise_if_any()
    return routes, zones


def _csv_rows(path: Path, required: tuple[str, ...], problems: _Problems) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        problems.add("-", "", t("file not found"), "not-found")
        problems.raise_if_any()
        return
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            problems.add(1, "", t("empty file: expected a header line"), "empty")
            problems.raise_if_any()
            return
        missing = [c for c in required if c not in header]
        if missing:
            problems.add(
                1,
                ",".join(missing),
                t(
                    "missing column(s) {columns}; header is {header}",
                    columns=", ".join(missing),
                    header=",".join(header),
                ),
                "missing-column",
            )
            problems.raise_if_any()
        index = {name: i for i, name in enumerate(header)}
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    problems.add(
                        line,
                        "",
                        t("{fields} fields, header has {expected}", fields=len(row), expected=len(header)),
                        "bad-row",
                    )
                    continue
                yield line, {name: row[i] for name, i in index.items()}
        except csv.Error as exc:
            problems.add(reader.line_num, "", t("CSV syntax: {error}", error=str(exc)), "bad-csv")
        except UnicodeDecodeError as exc:
            problems.add(reader.line_num + 1, "", t("not UTF-8 text: {error}", error=exc.reason), "bad-encoding")


def read_trips(path: Path, routes: dict[str, Route], zones: dict[str, Zone]) -> list[TripPlan]:
    """TRIPS: trip_id,route_id,origin_zone,destination_zone,departure,deadline (ISO 8601 UTC)."""
    problems = _Problems(path)
    plans: list[TripPlan] = []
    seen: set[str] = set()
    for line, row in _csv_rows(path, TRIP_COLUMNS, problems):
        ok = True
        tid = row["trip_id"].strip()
        if not tid:
            problems.add(line, "trip_id", t("empty trip_id"))
            ok = False
        elif tid in seen:
            problems.add(line, "trip_id", t("trip_id {trip} appears twice", trip=tid), "duplicate")
            ok = False
        if row["route_id"].strip() not in routes:
            problems.add(
                line,
                "route_id",
                t("route {route} is not in the routes file", route=repr(row["route_id"])),
                "unknown-route",
            )
            ok = False
        for col in ("origin_zone", "destination_zone"):
            if row[col].strip() not in zones:
                problems.add(line, col, t("zone {zone} is not in the routes file", zone=repr(row[col])), "unknown-zone")
                ok = False
        times: dict[str, datetime] = {}
        for col in ("departure", "deadline"):
            try:
                times[col] = parse_time(row[col])
            except ValueError:
                problems.add(line, col, t("{value} is not an ISO 8601 time", value=repr(row[col])), "bad-time")
                ok = False
        if ok and times["deadline"] <= times["departure"]:
            problems.add(line, "deadline", t("deadline is not after departure"), "bad-time")
            ok = False
        if ok:
            seen.add(tid)
            plans.append(
                TripPlan(
                    tid,
                    row["route_id"].strip(),
                    row["origin_zone"].strip(),
                    row["destination_zone"].strip(),
                    times["departure"],
                    times["deadline"],
                )
            )
    problems.raise_if_any()
    return plans


def read_positions(path: Path, trip_ids: set[str]) -> tuple[list[Fix], dict[str, int]]:
    """POSITIONS: trip_id,timestamp,latitude,longitude[,seal]. Rows of unknown trips are counted, not fatal."""
    problems = _Problems(path)
    fixes: list[Fix] = []
    skipped: dict[str, int] = {"unknown_trip": 0}
    for line, row in _csv_rows(path, POSITION_COLUMNS, problems):
        tid = row["trip_id"].strip()
        try:
            when = parse_time(row["timestamp"])
        except ValueError:
            problems.add(
                line, "timestamp", t("{value} is not an ISO 8601 time", value=repr(row["timestamp"])), "bad-time"
            )
            continue
        try:
            lat = float(row["latitude"])
            if not -90 <= lat <= 90:
                raise ValueError
        except ValueError:
            problems.add(
                line,
                "latitude",
                t("{value} is not a latitude in [-90, 90]", value=repr(row["latitude"])),
                "bad-coordinate",
            )
            continue
        try:
            lon = float(row["longitude"])
            if not -180 <= lon <= 180:
                raise ValueError
        except ValueError:
            problems.add(
                line,
                "longitude",
                t("{value} is not a longitude in [-180, 180]", value=repr(row["longitude"])),
                "bad-coordinate",
            )
            continue
        seal_raw = (row.get("seal") or "").strip().lower()
        if seal_raw and seal_raw not in SEAL_READINGS:
            problems.add(
                line, "seal", t("{value} is not one of closed|open|tampered", value=repr(row.get("seal"))), "bad-seal"
            )
            continue
        if tid not in trip_ids:
            skipped["unknown_trip"] += 1
            continue
        fixes.append(Fix(tid, when, lat, lon, seal_raw or None))  # type: ignore[arg-type]
    problems.raise_if_any()
    return fixes, skipped


def write_alerts(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
