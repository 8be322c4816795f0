"""JT600 / JT701 family (Traccar port 5014): binary `$` frames and text `(...)` frames.

Binary: `$`, terminal id (5 bytes BCD), [protocol version], type, length (u16), then the first record:
date ddmmyy and time hhmmss (BCD), latitude ddmm.mmmm (8 BCD digits), longitude dddmm.mmmm
(9 BCD digits) and a flag nibble (bit 0 valid, bit 1 north, bit 2 east). Only the first record of a
multi-record frame is decoded. Text: `(id,W01,lon,E,lat,N,A,ddmmyy,hhmmss,speed,...)`,
`(id,U01..U06,[n,]ddmmyy,hhmmss,T|F,lat,N,lon,E,speed,course,...)`, `(id,P45,ddmmyy,hhmmss,lat,N,lon,W,A,...)`;
other commands (`@JT`, `U04` ...) are recognised replies. Lock/seal status bits are not mapped yet.

EXPERIMENTAL: newer terminals appear to put decimal degrees (not ddmm.mmmm) in the binary record and
use other flag bits; without the vendor document this decoder is for the survey, not for live alerts
(the listener does not open a JT600 port).
"""

from __future__ import annotations

import re

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols.base import Frame, Position, check_coordinates, make_time

PROTOCOL = "jt600"
_NUM = re.compile(r"^\d+(\.\d+)?$")


def _bcd(data: bytes) -> str:
    digits = data.hex()
    if not digits.isdigit():
        raise DecodeError(PROTOCOL, "bad-bcd", f"{digits} is not BCD")
    return digits


def _dm(value: float) -> float:
    """ddmm.mmmm → decimal degrees."""
    degrees = int(value // 100)
    return degrees + (value - degrees * 100) / 60


def _decode_binary(data: bytes) -> Frame:
    """Two header layouts exist (with and without a protocol-version byte): take the one that decodes."""
    try:
        return _decode_binary_at(data, 10)
    except DecodeError as first:
        try:
            return _decode_binary_at(data, 9)
        except DecodeError:
            raise first from None


def _decode_binary_at(data: bytes, offset: int) -> Frame:
    if len(data) < offset + 6 + 9:
        raise DecodeError(PROTOCOL, "truncated", f"{len(data)} bytes is shorter than a binary record")
    device_id = _bcd(data[1:6]).lstrip("0") or "0"
    body = data[offset:]
    date = _bcd(body[0:3])
    clock = _bcd(body[3:6])
    time = make_time(
        PROTOCOL,
        2000 + int(date[4:6]),
        int(date[2:4]),
        int(date[0:2]),
        int(clock[0:2]),
        int(clock[2:4]),
        int(clock[4:6]),
    )
    coords = body[6:15].hex()
    if not coords[:17].isdigit():
        raise DecodeError(PROTOCOL, "bad-bcd", f"coordinates {coords} are not BCD")
    lat = _dm(int(coords[0:8]) / 10_000)
    lon = _dm(int(coords[8:17]) / 10_000)
    flags = int(coords[17], 16)
    if not flags & 0x2:
        lat = -lat
    if not flags & 0x4:
        lon = -lon
    check_coordinates(PROTOCOL, lat, lon)
    pos = Position(PROTOCOL, device_id, time, bool(flags & 0x1), lat, lon, attributes={"type": data[7]})
    return Frame(PROTOCOL, "position", "binary", device_id, positions=(pos,))


def _text_position(
    device_id: str,
    date: str,
    clock: str,
    lat: str,
    ns: str,
    lon: str,
    ew: str,
    valid: bool,
    speed: str | None,
    dm: bool,
) -> Position:
    for v in (date, clock):
        if not (len(v) == 6 and v.isdigit()):
            raise DecodeError(PROTOCOL, "bad-time", f"{v!r} is not ddmmyy/hhmmss")
    for v in (lat, lon):
        if not _NUM.match(v):
            raise DecodeError(PROTOCOL, "bad-coordinates", f"{v!r} is not a coordinate")
    time = make_time(
        PROTOCOL,
        2000 + int(date[4:6]),
        int(date[2:4]),
        int(date[0:2]),
        int(clock[0:2]),
        int(clock[2:4]),
        int(clock[4:6]),
    )
    la, lo = (_dm(float(lat)), _dm(float(lon))) if dm else (float(lat), float(lon))
    la = -la if ns == "S" else la
    lo = -lo if ew == "W" else lo
    check_coordinates(PROTOCOL, la, lo)
    kmh = float(speed) * 1.852 if speed and _NUM.match(speed) else None
    return Position(PROTOCOL, device_id, time, valid, la, lo, kmh)


def _decode_text(text: str) -> Frame:
    if not text.startswith("(") or not text.endswith(")"):
        raise DecodeError(PROTOCOL, "bad-header", "text frame is not (...)")
    f = text[1:-1].split(",")
    if len(f) < 2 or not f[0].isdigit():
        raise DecodeError(PROTOCOL, "bad-device-id", "text frame without a numeric terminal id")
    device_id, cmd = f[0], f[1]
    try:
        if cmd == "W01" and len(f) >= 10:
            pos = _text_position(device_id, f[7], f[8], f[4], f[5], f[2], f[3], f[6] == "A", f[9], dm=True)
        elif cmd in ("U01", "U02", "U03") and len(f) >= 11:
            pos = _text_position(device_id, f[2], f[3], f[5], f[6], f[7], f[8], f[4] == "T", f[9], dm=False)
        elif cmd == "U06" and len(f) >= 12:
            pos = _text_position(device_id, f[3], f[4], f[6], f[7], f[8], f[9], f[5] == "T", f[10], dm=False)
        elif cmd == "P45" and len(f) >= 9:
            pos = _text_position(device_id, f[2], f[3], f[4], f[5], f[6], f[7], f[8] == "A", None, dm=False)
        else:
            return Frame(PROTOCOL, "info", cmd, device_id)
    except IndexError:  # pragma: no cover - lengths are checked above
        raise DecodeError(PROTOCOL, "truncated", f"{cmd} frame has too few fields") from None
    return Frame(PROTOCOL, "position", cmd, device_id, positions=(pos,))


def decode(payload: bytes | str) -> Frame:
    """Decode one JT600 frame (binary `$...` or text `(...)`)."""
    if isinstance(payload, str):
        payload = payload.encode("latin-1", "replace")
    data = bytes(payload)
    if data[:1] == b"$":
        return _decode_binary(data)
    if data[:1] == b"(":
        try:
            return _decode_text(data.decode("ascii").strip())
        except UnicodeDecodeError:
            raise DecodeError(PROTOCOL, "bad-text", "text frame is not ASCII") from None
    raise DecodeError(PROTOCOL, "bad-header", "frame starts with neither '$' nor '('")
