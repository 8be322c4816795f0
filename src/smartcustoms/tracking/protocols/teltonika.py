"""Teltonika codec 8 / 8 Extended / 16 (Traccar port 5027), TCP and UDP.

TCP: the device first sends its IMEI (`u16 length + ASCII`), answered 0x01; then AVL packets
`0x00000000, u32 data length, codec, n, records..., n, u32 CRC-16/IBM of the data`, answered with the
number of records (u32). UDP: `u16 length, u16 packet id, 0x01, u8 AVL packet id, u16 + IMEI, codec data`,
answered `0x0005, packet id, 0x01, AVL packet id, n`. Record: time (u64 ms), priority, lon, lat
(i32 1e-7 degree), altitude, angle, satellites, speed (km/h), then the IO elements.
Codec 12/13/14 (command replies) are recognised without a position.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols.base import Frame, Position, Reader, check_coordinates

PROTOCOL = "teltonika"
IO_NAMES = {
    239: "ignition",
    240: "motion",
    66: "external_voltage_mv",
    67: "battery_voltage_mv",
    16: "odometer_m",
    21: "gsm",
}

_CRC_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0xA001 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc16_ibm(data: bytes) -> int:
    """CRC-16/IBM (ARC): reflected 0x8005, init 0, as Teltonika puts after each AVL packet."""
    crc = 0
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _records(r: Reader, codec: int, device_id: str) -> list[Position]:
    count = r.u8()
    positions = []
    wide = codec == 0x8E
    for _ in range(count):
        ms = int.from_bytes(r.take(8), "big")
        try:
            time = datetime.fromtimestamp(ms / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise DecodeError(PROTOCOL, "bad-time", f"timestamp {ms} ms is out of range") from None
        r.u8()  # priority
        lon = _signed(r.u32(), 32) / 1e7
        lat = _signed(r.u32(), 32) / 1e7
        altitude = float(_signed(r.u16(), 16))
        angle = float(r.u16())
        sats = r.u8()
        speed = float(r.u16())
        check_coordinates(PROTOCOL, lat, lon)
        attrs: dict[str, Any] = {"satellites": sats}
        if codec == 0x10:
            attrs["event_io"] = r.u16()
            r.u8()  # generation type
            r.u8()  # total IO count
        elif wide:
            attrs["event_io"] = r.u16()
            r.u16()
        else:
            attrs["event_io"] = r.u8()
            r.u8()
        for size in (1, 2, 4, 8):
            n = r.u16() if wide else r.u8()
            for _ in range(n):
                io_id = r.u16() if wide or codec == 0x10 else r.u8()
                value = int.from_bytes(r.take(size), "big")
                if io_id in IO_NAMES:
                    attrs[IO_NAMES[io_id]] = value
        if wide:
            for _ in range(r.u16()):
                r.u16()
                r.take(r.u16())
        positions.append(
            Position(
                PROTOCOL,
                device_id,
                time,
                sats > 0 and (lat, lon) != (0.0, 0.0),
                lat,
                lon,
                speed,
                angle,
                altitude,
                attrs,
            )
        )
    if r.u8() != count:
        raise DecodeError(PROTOCOL, "bad-count", "record counts before and after the records differ")
    return positions


def _codec_frame(r: Reader, device_id: str, ack_for: Any) -> Frame:
    codec = r.u8()
    if codec in (0x08, 0x8E, 0x10):
        positions = _records(r, codec, device_id)
        return Frame(
            PROTOCOL,
            "position",
            f"codec_{codec:x}",
            device_id or None,
            positions=tuple(positions),
            ack=ack_for(len(positions)),
        )
    if codec in (0x0C, 0x0D, 0x0E):
        return Frame(PROTOCOL, "info", f"codec_{codec:x}", device_id or None)
    raise DecodeError(PROTOCOL, "unsupported-type", f"codec 0x{codec:02x} is not supported")


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut a TCP stream: an IMEI packet (u16 length + digits) or AVL packets (8-byte header + data + CRC)."""
    frames: list[bytes] = []
    while len(buffer) >= 2:
        if buffer[:4] == b"\x00\x00\x00\x00":
            if len(buffer) < 8:
                break
            total = 8 + int.from_bytes(buffer[4:8], "big") + 4
        elif len(buffer) >= 4 and buffer[:4].startswith(b"\x00\x00"):
            break  # a header still arriving
        else:
            total = 2 + int.from_bytes(buffer[:2], "big")
        if len(buffer) < total:
            break
        frames.append(buffer[:total])
        buffer = buffer[total:]
    return frames, buffer


def decode(payload: bytes, device_id: str | None = None) -> Frame:
    """Decode a Teltonika IMEI packet, TCP AVL packet or UDP datagram."""
    data = bytes(payload)
    if len(data) < 3:
        raise DecodeError(PROTOCOL, "truncated", f"{len(data)} bytes is shorter than any packet")
    length = int.from_bytes(data[:2], "big")
    if len(data) == length + 2 and data[2:].isdigit():
        return Frame(PROTOCOL, "login", "imei", data[2:].decode(), ack=b"\x01")
    dev = device_id or ""
    if data[:4] == b"\x00\x00\x00\x00" and len(data) >= 12:
        data_len = int.from_bytes(data[4:8], "big")
        if len(data) != 8 + data_len + 4:
            raise DecodeError(
                PROTOCOL, "bad-length", f"data length {data_len} does not match a {len(data)}-byte packet"
            )
        body = data[8 : 8 + data_len]
        r = Reader(body, PROTOCOL)
        frame = _codec_frame(r, dev, lambda n: n.to_bytes(4, "big"))
        if frame.kind == "position" and r.remaining():
            raise DecodeError(PROTOCOL, "bad-length", f"{r.remaining()} bytes left after the records")
        # Like GT06 (and Traccar), a CRC mismatch is recorded, not fatal: TCP already protects the bytes.
        frame.attributes["crc_ok"] = crc16_ibm(body) == int.from_bytes(data[-4:], "big")
        return frame
    if len(data) == length + 2 and len(data) > 8:
        r = Reader(data, PROTOCOL, 2)
        packet_id = r.take(2)
        r.u8()
        avl_id = r.u8()
        imei = r.take(r.u16())
        if not imei.isdigit():
            raise DecodeError(PROTOCOL, "bad-imei", "UDP packet without an IMEI")
        frame = _codec_frame(r, imei.decode(), lambda n: b"\x00\x05" + packet_id + b"\x01" + bytes([avl_id, n & 0xFF]))
        return frame
    raise DecodeError(PROTOCOL, "bad-header", "neither an IMEI packet, a TCP AVL packet nor a UDP datagram")
