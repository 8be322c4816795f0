"""GT06 / Concox binary protocol (Traccar port 5023): 0x7878 short and 0x7979 long frames.

Frame: start(2) length(1|2) type(1) content serial(2) crc(2) 0x0D0A; CRC-ITU (CRC-16/X-25) over
length..serial. Login carries the IMEI; later frames rely on the session's device id. GPS block:
date(6) length/satellites(1) lat(4) lon(4) (1/1,800,000 degree) speed(1 km/h) course/status(2).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols.base import (
    Frame,
    Position,
    Reader,
    SealEvent,
    alarm_attributes,
    check_coordinates,
    make_time,
)

PROTOCOL = "gt06"

MSG_LOGIN = 0x01
MSG_HEARTBEAT_OLD = 0x08
MSG_STATUS = 0x13
MSG_STRING = 0x15
MSG_HEARTBEAT = 0x23
MSG_TIME_REQUEST = 0x8A
MSG_ALARM = 0x95
MSG_INFO = 0x94
MSG_SERIAL = 0x9B
MSG_STRING_INFO = 0x21

# Types whose content starts with the standard GPS block (date, sats, lat, lon, speed, course).
GPS_TYPES = {
    0x10: "gps",
    0x11: "gps_lbs_6",
    0x12: "gps_lbs_1",
    0x16: "gps_lbs_status_1",
    0x1E: "gps_lbs_extend",
    0x22: "gps_lbs_2",
    0x26: "gps_lbs_status_2",
    0x27: "gps_lbs_status_3",
    0x2D: "gps_lbs_4",
    0x31: "gps_lbs_5",
    0x37: "gps_lbs_3",
    0xA0: "gps_2",
    0x2A: "address_request",
    0xA3: "fence_single",
    0xA4: "fence_multi",
}
SHORT_GPS_TYPES = {0x32: "gps_lbs_status_4"}  # only in 0x7878 frames; 0x7979 0x32 is another layout
STATUS_TYPES = {0x16, 0x26, 0x27}  # alarm-bearing: the device expects an acknowledgement
# Recognised frames without a position (cell/wifi fixes, information, command replies...).
INFO_TYPES = {
    MSG_STRING: "string",
    MSG_STRING_INFO: "string_info",
    MSG_INFO: "info",
    MSG_SERIAL: "serial",
    0x17: "wifi",
    0x18: "lbs_extend",
    0x19: "lbs_status",
    0x24: "lbs_multiple_3",
    0x28: "lbs_multiple_1",
    0x2C: "lbs_wifi",
    0x2E: "lbs_multiple_2",
    0x69: "wifi_2",
    0x8C: "obd",
    0xA1: "lbs_2",
    0xA2: "wifi_3",
    0xA5: "lbs_alarm",
    0xF3: "wifi_4",
}
ACK_TYPES = {MSG_LOGIN, MSG_STATUS, MSG_HEARTBEAT, MSG_HEARTBEAT_OLD, MSG_ALARM, *STATUS_TYPES}

# Alarm byte of the status-bearing frames (GT06 protocol document; Traccar's alarm names).
ALARM_CODES = {
    0x01: "sos",
    0x02: "powerCut",
    0x03: "vibration",
    0x04: "geofenceEnter",
    0x05: "geofenceExit",
    0x06: "overspeed",
    0x09: "vibration",
    0x0E: "lowBattery",
    0x0F: "lowBattery",
    0x11: "powerOff",
    0x13: "tampering",
    0x14: "door",
    0x23: "fallDown",
    0x29: "acceleration",
    0x2A: "cornering",
    0x2B: "cornering",
    0x2C: "accident",
    0x30: "braking",
}
# Bits 3-5 of the terminal information byte.
TERMINAL_ALARMS = {1: "vibration", 2: "powerCut", 3: "lowBattery", 4: "sos", 6: "geofence", 7: "removing"}


def terminal_info(info: int) -> dict[str, Any]:
    """Terminal information byte: armed (oil/power cut-off), ignition, charging, alarm, relay blocked."""
    alarm = TERMINAL_ALARMS.get((info >> 3) & 0x07)
    return {
        "armed": bool(info & 0x01),
        "ignition": bool(info & 0x02),
        "charging": bool(info & 0x04),
        "blocked": bool(info & 0x80),
        **({"terminal_alarm": alarm} if alarm else {}),
    }


_CRC_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x8408 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc_itu(data: bytes) -> int:
    """CRC-ITU as GT06 uses it (CRC-16/X-25: reflected 0x1021, init and xor-out 0xFFFF)."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFF


def build_ack(msg_type: int, serial: int, *, extended: bool = False, content: bytes = b"") -> bytes:
    """A GT06 response frame (login/heartbeat/alarm ack, time reply) with its CRC-ITU."""
    body = bytes([msg_type]) + content + serial.to_bytes(2, "big")
    if extended:
        length = (len(body) + 2).to_bytes(2, "big")
        head = b"\x79\x79"
    else:
        length = bytes([len(body) + 2])
        head = b"\x78\x78"
    crc = crc_itu(length + body).to_bytes(2, "big")
    return head + length + body + crc + b"\r\n"


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut a TCP stream into frames; returns (complete frames, unconsumed rest). Garbage is skipped."""
    frames: list[bytes] = []
    i = 0
    n = len(buffer)
    while i < n:
        if buffer[i : i + 2] == b"\x78\x78" and i + 3 <= n:
            total = buffer[i + 2] + 5
        elif buffer[i : i + 2] == b"\x79\x79" and i + 4 <= n:
            total = int.from_bytes(buffer[i + 2 : i + 4], "big") + 6
        elif buffer[i : i + 2] in (b"\x78\x78", b"\x79\x79", b"\x78", b"\x79") and n - i < 4:
            break
        else:
            i += 1
            continue
        if i + total > n:
            break
        frames.append(buffer[i : i + total])
        i += total
    return frames, buffer[i:]


_GPS = struct.Struct(">6BBIIBH")
_GPS_NO_SATS = struct.Struct(">6BIIBH")


def _decode_gps(r: Reader, device_id: str, *, has_sats: bool = True) -> Position:
    layout = _GPS if has_sats else _GPS_NO_SATS
    if r.remaining() < layout.size:
        raise DecodeError(PROTOCOL, "truncated", f"GPS block needs {layout.size} bytes, {r.remaining()} left")
    fields = layout.unpack_from(r.data, r.pos)
    r.pos += layout.size
    year, month, day, hour, minute, second = fields[:6]
    time = make_time(PROTOCOL, 2000 + year, month, day, hour, minute, second)
    attrs: dict[str, Any] = {}
    if has_sats:
        attrs["satellites"] = fields[6] & 0x0F
    lat_raw, lon_raw, speed, flags = fields[-4:]
    lat = lat_raw / 1_800_000.0
    lon = lon_raw / 1_800_000.0
    if not flags & (1 << 10):
        lat = -lat
    if flags & (1 << 11):
        lon = -lon
    check_coordinates(PROTOCOL, lat, lon)
    return Position(
        protocol=PROTOCOL,
        device_id=device_id,
        time=time,
        valid=bool(flags & (1 << 12)),
        latitude=lat,
        longitude=lon,
        speed_kmh=float(speed),
        course=float(flags & 0x3FF),
        attributes=attrs,
    )


def decode(payload: bytes, device_id: str | None = None, *, now: datetime | None = None) -> Frame:
    """Decode one GT06 frame. `device_id` is the IMEI the session learnt from the login frame."""
    data = bytes(payload)
    if len(data) < 5:
        raise DecodeError(PROTOCOL, "truncated", f"{len(data)} bytes is shorter than any frame")
    if data[:2] == b"\x78\x78":
        extended = False
        length = data[2]
        start = 3
    elif data[:2] == b"\x79\x79":
        extended = True
        length = int.from_bytes(data[2:4], "big")
        start = 4
    else:
        raise DecodeError(PROTOCOL, "bad-header", f"frame starts with {data[:2].hex()}, not 7878/7979")
    end = start + length  # index of the 0x0D0A trailer
    if length < 5 or len(data) != end + 2 or data[end : end + 2] != b"\r\n":
        raise DecodeError(PROTOCOL, "bad-length", f"length field {length} does not match a {len(data)}-byte frame")
    msg_type = data[start]
    serial = int.from_bytes(data[end - 4 : end - 2], "big")
    crc_ok = crc_itu(data[2 : end - 2]) == int.from_bytes(data[end - 2 : end], "big")
    content = Reader(data[: end - 4], PROTOCOL, start + 1)
    dev = device_id or ""
    attrs: dict[str, Any] = {"serial": serial, "crc_ok": crc_ok, "type": msg_type}
    ack = build_ack(msg_type, serial, extended=extended) if msg_type in ACK_TYPES else None

    if msg_type == MSG_LOGIN:
        if content.remaining() < 8:
            raise DecodeError(PROTOCOL, "truncated", "login frame without an 8-byte IMEI")
        imei = content.take(8).hex().lstrip("0") or "0"
        if not imei.isdigit():
            raise DecodeError(PROTOCOL, "bad-imei", f"IMEI {imei!r} is not BCD digits")
        return Frame(PROTOCOL, "login", "login", imei, ack=ack, attributes=attrs)
    if msg_type in (MSG_STATUS, MSG_HEARTBEAT, MSG_HEARTBEAT_OLD):
        events: tuple[SealEvent, ...] = ()
        if content.remaining() >= 1:
            attrs.update(terminal_info(content.u8()))
        if content.remaining() >= 1:
            attrs["power_level"] = content.u8()
        if content.remaining() >= 2 and msg_type == MSG_STATUS:
            attrs["gsm"] = content.u8()
            code = content.u8()
            if code in ALARM_CODES:
                attrs["alarm"] = ALARM_CODES[code]
        alarms = [a for a in (attrs.get("terminal_alarm"), attrs.get("alarm")) if a]
        seal = alarm_attributes(alarms)
        if "seal" in seal or "low_battery" in seal:  # a heartbeat has no fix: the seal event stands alone
            events = (
                SealEvent(
                    PROTOCOL, dev, None, ",".join(alarms), seal.get("seal"), None, seal.get("low_battery", False)
                ),
            )
        return Frame(PROTOCOL, "heartbeat", "heartbeat", device_id, events=events, ack=ack, attributes=attrs)
    if msg_type == MSG_TIME_REQUEST:
        t = (now or datetime.now(UTC)).astimezone(UTC)
        stamp = bytes([t.year - 2000, t.month, t.day, t.hour, t.minute, t.second])
        return Frame(
            PROTOCOL,
            "info",
            "time_request",
            device_id,
            ack=build_ack(msg_type, serial, extended=extended, content=stamp),
            attributes=attrs,
        )
    if msg_type in GPS_TYPES or (msg_type in SHORT_GPS_TYPES and not extended):
        position = _decode_gps(content, dev)
        if msg_type in STATUS_TYPES and content.remaining() >= 5:
            # LBS block (length-prefixed) then terminal info, voltage, GSM signal, alarm, language.
            lbs_len = content.u8()
            if 0 < lbs_len <= content.remaining() - 4:
                content.take(lbs_len - 1)
                info = terminal_info(content.u8())
                power_level, gsm, code = content.u8(), content.u8(), content.u8()
                alarms = [a for a in (info.get("terminal_alarm"), ALARM_CODES.get(code)) if a]
                position.attributes.update(
                    info, power_level=power_level, gsm=gsm, alarm_code=code, **alarm_attributes(alarms)
                )
        return Frame(
            PROTOCOL,
            "position",
            GPS_TYPES.get(msg_type, "gps_lbs_status_4"),
            device_id,
            positions=(position,),
            ack=ack,
            attributes=attrs,
        )
    if msg_type == MSG_ALARM:
        if content.remaining() >= 6 + 4 + 4 + 1 + 2:
            position = _decode_gps(content, dev, has_sats=False)
            return Frame(PROTOCOL, "position", "alarm", device_id, positions=(position,), ack=ack, attributes=attrs)
        return Frame(PROTOCOL, "event", "alarm", device_id, ack=ack, attributes=attrs)
    if msg_type in INFO_TYPES:
        return Frame(
            PROTOCOL,
            "network" if msg_type not in (0x15, 0x21, 0x94, 0x9B) else "info",
            INFO_TYPES[msg_type],
            device_id,
            attributes=attrs,
        )
    raise DecodeError(PROTOCOL, "unsupported-type", f"message type 0x{msg_type:02x} is not supported")


def encode_position(
    latitude: float,
    longitude: float,
    time: datetime,
    *,
    speed_kmh: float = 0.0,
    course: int = 0,
    serial: int = 0,
    valid: bool = True,
) -> bytes:
    """A 0x12 GPS+LBS frame as a GT06 device sends it (for simulators, tests and the benchmark)."""
    t = time.astimezone(UTC)
    flags = (
        (int(course) % 360)
        | (1 << 12 if valid else 0)
        | (1 << 10 if latitude >= 0 else 0)
        | (1 << 11 if longitude < 0 else 0)
    )
    content = (
        bytes([t.year - 2000, t.month, t.day, t.hour, t.minute, t.second, 0xC8])
        + round(abs(latitude) * 1_800_000).to_bytes(4, "big")
        + round(abs(longitude) * 1_800_000).to_bytes(4, "big")
        + bytes([min(int(speed_kmh), 255)])
        + flags.to_bytes(2, "big")
        + bytes.fromhex("01cc00000000000000")
    )
    return build_ack(0x12, serial & 0xFFFF, content=content)
