"""OsmAnd / Traccar Client HTTP protocol (Traccar port 5055).

A GET/POST whose query has `id` (or `deviceid`), `lat`/`lon` (or `location=lat,lon`), `timestamp`
(Unix seconds or milliseconds, ISO 8601, or `yyyy-mm-dd hh:mm:ss`), `speed` (knots), `bearing`/`heading`,
`altitude`, `hdop`, `batt`; or a JSON body in the Transistorsoft background-geolocation shape
(`{"location": {"coords": {...}, "timestamp": ...}, "device_id": ...}`, speed in m/s).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from smartcustoms.platform.i18n import t
from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols.base import Frame, Position, check_coordinates

PROTOCOL = "osmand"
ACK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
KNOT_KMH = 1.852


def _number(key: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DecodeError(
            PROTOCOL, "bad-field", t("{key}={value} is not a number", key=key, value=repr(value))
        ) from None
    if out != out or out in (float("inf"), float("-inf")):
        raise DecodeError(PROTOCOL, "bad-field", t("{key}={value} is not finite", key=key, value=repr(value)))
    return out


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """OsmAnd timestamps: Unix seconds or ms, ISO 8601, or `yyyy-mm-dd hh:mm:ss` (UTC)."""
    v = value.strip()
    try:
        if v.isdigit():
            n = int(v)
            return datetime.fromtimestamp(n / 1000 if n > 10**11 else n, tz=UTC)
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise DecodeError(PROTOCOL, "bad-time", t("timestamp {value} is not understood", value=repr(value))) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _device_id(value: Any) -> str:
    dev = str(value).strip()
    if not dev or len(dev) > 64 or not dev.isprintable():
        raise DecodeError(
            PROTOCOL, "bad-device-id", t("device id {value} is empty, too long or not printable", value=repr(value))
        )
    return dev


def _decode_query(query: str, now: datetime | None) -> Frame:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)
    raw_id = params.get("id") or params.get("deviceid")
    if raw_id is None:
        raise DecodeError(PROTOCOL, "no-device-id", t("request has neither id nor deviceid"))
    device_id = _device_id(raw_id)
    time = parse_time(params["timestamp"]) if "timestamp" in params else (now or datetime.now(UTC))
    if "location" in params:
        parts = params["location"].split(",")
        if len(parts) != 2:
            raise DecodeError(
                PROTOCOL, "bad-field", t("location={value} is not lat,lon", value=repr(params["location"]))
            )
        lat, lon = _number("lat", parts[0]), _number("lon", parts[1])
    elif "lat" in params and "lon" in params:
        lat, lon = _number("lat", params["lat"]), _number("lon", params["lon"])
    elif "cell" in params or "wifi" in params:
        return Frame(PROTOCOL, "network", "network", device_id, ack=ACK, attributes={"time": time.isoformat()})
    else:
        raise DecodeError(PROTOCOL, "no-position", t("request has no lat/lon, location, cell or wifi"))
    check_coordinates(PROTOCOL, lat, lon)
    attrs: dict[str, Any] = {}
    for key in ("hdop", "batt", "accuracy", "fuel", "rpm"):
        if params.get(key):
            attrs[key] = _number(key, params[key])
    if "ignition" in params:
        attrs["ignition"] = params["ignition"].lower() == "true"
    speed = _number("speed", params["speed"]) * KNOT_KMH if params.get("speed") else None
    course_raw = params.get("bearing") or params.get("heading")
    valid = params.get("valid", "true").lower() not in ("false", "0")
    pos = Position(
        protocol=PROTOCOL,
        device_id=device_id,
        time=time,
        valid=valid,
        latitude=lat,
        longitude=lon,
        speed_kmh=speed,
        course=_number("bearing", course_raw) if course_raw else None,
        altitude=_number("altitude", params["altitude"]) if params.get("altitude") else None,
        attributes=attrs,
    )
    return Frame(PROTOCOL, "position", "query", device_id, positions=(pos,), ack=ACK)


def _decode_json(body: bytes, query_id: str | None) -> Frame:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecodeError(PROTOCOL, "bad-json", t("body is not JSON")) from None
    if not isinstance(doc, dict):
        raise DecodeError(PROTOCOL, "bad-json", t("JSON body is not an object"))
    raw_id = doc.get("device_id") or query_id
    if raw_id is None:
        raise DecodeError(PROTOCOL, "no-device-id", t("JSON body has no device_id"))
    device_id = _device_id(raw_id)
    locations = doc.get("location")
    items = locations if isinstance(locations, list) else [locations]
    positions = []
    for loc in items:
        if not isinstance(loc, dict) or not isinstance(loc.get("coords"), dict):
            raise DecodeError(PROTOCOL, "no-position", t("location without coords"))
        coords = loc["coords"]
        if "latitude" not in coords or "longitude" not in coords or "timestamp" not in loc:
            raise DecodeError(PROTOCOL, "no-position", t("coords need latitude, longitude and a timestamp"))
        lat, lon = _number("latitude", coords["latitude"]), _number("longitude", coords["longitude"])
        check_coordinates(PROTOCOL, lat, lon)
        speed = coords.get("speed")
        heading = coords.get("heading")
        attrs: dict[str, Any] = {}
        battery = loc.get("battery")
        if isinstance(battery, dict) and isinstance(battery.get("level"), int | float) and battery["level"] >= 0:
            attrs["batt"] = float(battery["level"]) * 100
        if isinstance(loc.get("event"), str):
            attrs["event"] = loc["event"]
        positions.append(
            Position(
                protocol=PROTOCOL,
                device_id=device_id,
                time=parse_time(str(loc["timestamp"])),
                valid=True,
                latitude=lat,
                longitude=lon,
                speed_kmh=_number("speed", speed) * 3.6 if isinstance(speed, int | float) and speed >= 0 else None,
                course=_number("heading", heading) if isinstance(heading, int | float) and heading >= 0 else None,
                altitude=_number("altitude", coords["altitude"])
                if isinstance(coords.get("altitude"), int | float)
                else None,
                attributes=attrs,
            )
        )
    return Frame(PROTOCOL, "position", "json", device_id, positions=tuple(positions), ack=ACK)


def decode(request: str | bytes, body: bytes | None = None, *, now: datetime | None = None) -> Frame:
    """Decode an OsmAnd request: a request target (`/?id=..`), a full request line, or a raw HTTP message."""
    if isinstance(request, bytes):
        try:
            text = request.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            raise DecodeError(PROTOCOL, "bad-request", t("request is not text")) from None
    else:
        text = request
    head, sep, rest = text.partition("\r\n\r\n")
    if sep and body is None and rest:
        body = rest.encode("latin-1")
    line = head.split("\r\n", 1)[0].strip()
    parts = line.split(" ")
    target = parts[1] if len(parts) >= 2 and parts[0].isalpha() and parts[0].isupper() else parts[0]
    if not target.startswith("/"):
        raise DecodeError(
            PROTOCOL, "bad-request", t("request target {value} does not start with /", value=repr(target[:40]))
        )
    try:
        query = urlsplit(target).query
    except ValueError:
        raise DecodeError(PROTOCOL, "bad-request", t("request target is not a URL")) from None
    if body and body.strip():
        params = dict(parse_qsl(query))
        return _decode_json(body, params.get("id") or params.get("deviceid"))
    return _decode_query(query, now)
