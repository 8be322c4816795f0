"""JT/T 808 (2013 and 2019) binary protocol (Traccar port 5015).

Frame: 0x7E, escaped (0x7D01 -> 0x7D, 0x7D02 -> 0x7E; other 0x7D kept) header + body + XOR checksum, 0x7E.
Header: message id(2), properties(2: body length bits 0-9, sub-package bit 13, 2019 version bit 14),
[version(1)], terminal phone (BCD 6, or 10 in 2019), serial(2), [package count(2), index(2)].
Location basic information: alarm(4) status(4) lat(4) lon(4) (1e-6 degree) altitude(2) speed(2, 0.1 km/h)
course(2) time(BCD 6, device local time, GMT+8 by default as in Traccar) then id/length/value items.
"""

from __future__ import annotations

from typing import Any

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols.base import Frame, Position, Reader, alarm_attributes, check_coordinates, make_time

PROTOCOL = "jt808"
DEVICE_TZ_HOURS = 8  # JT/T 808 terminals report Beijing time unless configured otherwise

MSG_TERMINAL_RESPONSE = 0x0001
MSG_HEARTBEAT = 0x0002
MSG_LOGOUT = 0x0003
MSG_REGISTER = 0x0100
MSG_AUTH = 0x0102
MSG_PARAMETERS = 0x0104
MSG_ATTRIBUTES = 0x0107
MSG_LOCATION = 0x0200
MSG_LOCATION_REPLY = 0x0201
MSG_EVENT = 0x0301
MSG_DRIVER = 0x0702
MSG_BATCH = 0x0704
MSG_TRANSPARENT = 0x0900
MSG_GENERAL_RESPONSE = 0x8001
MSG_REGISTER_RESPONSE = 0x8100

INFO_MESSAGES = {
    MSG_TERMINAL_RESPONSE: "terminal_response",
    MSG_PARAMETERS: "parameters",
    MSG_ATTRIBUTES: "attributes",
    MSG_EVENT: "event_report",
    0x0701: "waybill",
    MSG_DRIVER: "driver_identity",
    MSG_TRANSPARENT: "transparent",
}


def unescape(data: bytes) -> bytes:
    """Undo 0x7D escaping; a dangling or unknown escape is a decode error."""
    if b"\x7d" not in data:
        return data
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            nxt = next(it, None)
            if nxt == 0x01:
                out.append(0x7D)
            elif nxt == 0x02:
                out.append(0x7E)
            else:  # not a valid escape: keep the bytes as sent (Traccar does the same)
                out.append(0x7D)
                if nxt is not None:
                    out.append(nxt)
        else:
            out.append(b)
    return bytes(out)


def escape(data: bytes) -> bytes:
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def _xor(data: bytes) -> int:
    c = 0
    for b in data:
        c ^= b
    return c


def build_message(msg_id: int, phone_bcd: bytes, serial: int, body: bytes, *, version: int | None = None) -> bytes:
    """An outgoing platform message (same terminal number encoding the device used)."""
    props = len(body) & 0x3FF
    if version is not None:
        props |= 1 << 14
        header = msg_id.to_bytes(2, "big") + props.to_bytes(2, "big") + bytes([version]) + phone_bcd
    else:
        header = msg_id.to_bytes(2, "big") + props.to_bytes(2, "big") + phone_bcd
    raw = header + serial.to_bytes(2, "big") + body
    return b"\x7e" + escape(raw + bytes([_xor(raw)])) + b"\x7e"


def general_response(
    phone_bcd: bytes, serial: int, msg_id: int, *, version: int | None = None, result: int = 0
) -> bytes:
    """Platform general response 0x8001: answers the terminal's serial and message id with a result."""
    body = serial.to_bytes(2, "big") + msg_id.to_bytes(2, "big") + bytes([result])
    return build_message(MSG_GENERAL_RESPONSE, phone_bcd, serial, body, version=version)


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut a TCP stream at 0x7E delimiters; returns (frames, unconsumed rest)."""
    frames: list[bytes] = []
    i = buffer.find(b"\x7e")
    if i < 0:
        return frames, b""
    while True:
        j = buffer.find(b"\x7e", i + 1)
        if j < 0:
            return frames, buffer[i:]
        if j == i + 1:  # back-to-back delimiters: the second starts the next frame
            i = j
            continue
        frames.append(buffer[i : j + 1])
        i = j + 1
        if i >= len(buffer) or buffer[i] != 0x7E:
            k = buffer.find(b"\x7e", i)
            if k < 0:
                return frames, b""
            i = k


# Alarm flag bits of the location report (JT/T 808-2013 table 24) that matter at the border, by
# Traccar's names: a cut main supply or a stolen/illegally moved unit is tampering, an illegal door
# opening opens the container.
ALARM_BITS = {
    0: "sos",
    1: "overspeed",
    5: "gpsAntennaCut",
    7: "lowPower",
    8: "powerCut",
    19: "parking",
    20: "geofence",
    23: "routeDeviation",
    26: "tampering",  # vehicle stolen (anti-theft device)
    27: "illegalIgnition",
    28: "movement",  # illegal displacement
    29: "accident",
    30: "rollover",
    31: "door",  # illegal door opening
}


def decode_location(r: Reader, device_id: str, end: int) -> Position:
    """Location basic information plus the additional items up to `end`."""
    alarm = r.u32()
    status = r.u32()
    lat = r.u32() / 1e6
    lon = r.u32() / 1e6
    altitude = float(r.u16())
    speed = r.u16() / 10.0
    course = float(r.u16())
    t = r.take(6).hex()
    if not t.isdigit():
        raise DecodeError(PROTOCOL, "bad-time", f"time {t} is not BCD")
    time = make_time(
        PROTOCOL,
        2000 + int(t[0:2]),
        int(t[2:4]),
        int(t[4:6]),
        int(t[6:8]),
        int(t[8:10]),
        int(t[10:12]),
        DEVICE_TZ_HOURS,
    )
    if status & (1 << 2):
        lat = -lat
    if status & (1 << 3):
        lon = -lon
    check_coordinates(PROTOCOL, lat, lon)
    attrs: dict[str, Any] = {"alarm": alarm, "status": status, "ignition": bool(status & 1)}
    attrs.update(alarm_attributes([name for bit, name in ALARM_BITS.items() if alarm & (1 << bit)]))
    while end - r.pos >= 2:
        item, length = r.u8(), r.u8()
        if length > end - r.pos:
            break  # vendor items that lie about their length: keep the basic fix
        value = r.take(length)
        if item == 0x01 and length == 4:
            attrs["odometer_km"] = int.from_bytes(value, "big") / 10.0
        elif item == 0x30 and length == 1:
            attrs["rssi"] = value[0]
        elif item == 0x31 and length == 1:
            attrs["satellites"] = value[0]
    return Position(
        protocol=PROTOCOL,
        device_id=device_id,
        time=time,
        valid=bool(status & (1 << 1)),
        latitude=lat,
        longitude=lon,
        speed_kmh=speed,
        course=course,
        altitude=altitude,
        attributes=attrs,
    )


def decode(payload: bytes) -> Frame:
    """Decode one JT/T 808 frame (with its 0x7E delimiters)."""
    data = bytes(payload)
    if len(data) < 2 or data[0] != 0x7E or data[-1] != 0x7E:
        raise DecodeError(PROTOCOL, "bad-header", "frame is not delimited by 0x7E")
    raw = unescape(data[1:-1])
    if len(raw) < 13:
        raise DecodeError(PROTOCOL, "truncated", f"{len(raw)} bytes is shorter than a header and checksum")
    checksum_ok = _xor(raw[:-1]) == raw[-1]
    r = Reader(raw[:-1], PROTOCOL)
    msg_id = r.u16()
    props = r.u16()
    version: int | None = None
    if props & (1 << 14):
        version = r.u8()
        phone_bcd = r.take(10)
    else:
        phone_bcd = r.take(6)
    phone = phone_bcd.hex()  # some vendors put hex, not BCD, in the terminal number: keep it as text
    device_id = phone.lstrip("0") or "0"
    serial = r.u16()
    if props & (1 << 13):
        r.take(4)
    body_len = props & 0x3FF
    if body_len != r.remaining():
        raise DecodeError(PROTOCOL, "bad-length", f"body length {body_len} but {r.remaining()} bytes present")
    end = len(r.data)
    attrs: dict[str, Any] = {"serial": serial, "checksum_ok": checksum_ok, "message_id": f"0x{msg_id:04x}"}
    ack = general_response(phone_bcd, serial, msg_id, version=version)

    if msg_id == MSG_LOCATION:
        pos = decode_location(r, device_id, end)
        return Frame(PROTOCOL, "position", "location", device_id, positions=(pos,), ack=ack, attributes=attrs)
    if msg_id == MSG_LOCATION_REPLY:
        r.u16()
        pos = decode_location(r, device_id, end)
        return Frame(PROTOCOL, "position", "location_reply", device_id, positions=(pos,), ack=ack, attributes=attrs)
    if msg_id == MSG_BATCH:
        count = r.u16()
        r.u8()  # 0 normal upload, 1 blind-area (buffered) re-upload
        positions = []
        for _ in range(count):
            length = r.u16()
            item_end = r.pos + length
            if item_end > end:
                raise DecodeError(PROTOCOL, "truncated", "batch item runs past the body")
            positions.append(decode_location(r, device_id, item_end))
            r.pos = item_end
        if not positions:
            raise DecodeError(PROTOCOL, "empty-batch", "batch upload with no location")
        return Frame(
            PROTOCOL, "position", "location_batch", device_id, positions=tuple(positions), ack=ack, attributes=attrs
        )
    if msg_id == MSG_REGISTER:
        body = serial.to_bytes(2, "big") + b"\x00" + device_id.encode()
        reg_ack = build_message(MSG_REGISTER_RESPONSE, phone_bcd, serial, body, version=version)
        return Frame(PROTOCOL, "login", "register", device_id, ack=reg_ack, attributes=attrs)
    if msg_id == MSG_AUTH:
        return Frame(PROTOCOL, "login", "authentication", device_id, ack=ack, attributes=attrs)
    if msg_id == MSG_HEARTBEAT:
        return Frame(PROTOCOL, "heartbeat", "heartbeat", device_id, ack=ack, attributes=attrs)
    if msg_id == MSG_LOGOUT:
        return Frame(PROTOCOL, "info", "logout", device_id, ack=ack, attributes=attrs)
    if msg_id in INFO_MESSAGES:
        return Frame(
            PROTOCOL,
            "info",
            INFO_MESSAGES[msg_id],
            device_id,
            ack=None if msg_id == MSG_TERMINAL_RESPONSE else ack,
            attributes=attrs,
        )
    raise DecodeError(PROTOCOL, "unsupported-type", f"message id 0x{msg_id:04x} is not supported")
