"""What every decoder returns: a frame with positions and seal events, plus the bytes to acknowledge it.

Decoders are pure functions (Traccar's handler chain, first stage): bytes in, `Frame` out, or a
`DecodeError`. The listener owns sockets and the device session (GT06 sends its IMEI only at login).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from smartcustoms.platform.i18n import t
from smartcustoms.tracking.errors import DecodeError

FrameKind = Literal["position", "login", "heartbeat", "event", "info", "network"]
SealState = Literal["closed", "open", "tampered"]


@dataclass(frozen=True, slots=True)
class Position:
    """One GPS fix as the device reported it (time in UTC; speed in km/h)."""

    protocol: str
    device_id: str
    time: datetime
    valid: bool
    latitude: float
    longitude: float
    speed_kmh: float | None = None
    course: float | None = None
    altitude: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SealEvent:
    """State of an electronic seal reported by the device: lock state, battery, raw event name."""

    protocol: str
    device_id: str
    time: datetime | None
    event: str
    state: SealState | None = None
    battery_v: float | None = None
    low_battery: bool = False


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded device message: what it was, what it carried, and the acknowledgement owed."""

    protocol: str
    kind: FrameKind
    message_type: str
    device_id: str | None
    positions: tuple[Position, ...] = ()
    events: tuple[SealEvent, ...] = ()
    ack: bytes | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class Reader:
    """Bounds-checked big-endian reader: running off the end is a `DecodeError`, not an IndexError."""

    __slots__ = ("data", "pos", "protocol")

    def __init__(self, data: bytes, protocol: str, pos: int = 0):
        self.data = data
        self.pos = pos
        self.protocol = protocol

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(
                self.protocol, "truncated", f"needs {n} bytes at offset {self.pos}, {self.remaining()} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])


def make_time(
    protocol: str, year: int, month: int, day: int, hour: int, minute: int, second: int, tz_hours: int = 0
) -> datetime:
    """A UTC datetime from device fields, or a DecodeError for impossible dates."""
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(protocol, "bad-time", f"impossible date/time: {exc}") from None
    return local - timedelta(hours=tz_hours) if tz_hours else local


def check_coordinates(protocol: str, latitude: float, longitude: float) -> None:
    """Reject coordinates outside the valid range (bad input is counted, never stored)."""
    if not (-90.0 <= latitude <= 90.0) or not (-180.0 <= longitude <= 180.0):
        raise DecodeError(
            protocol,
            "bad-coordinates",
            t(
                "latitude {latitude} / longitude {longitude} out of range",
                latitude=str(latitude),
                longitude=str(longitude),
            ),
        )


def bcd(data: bytes) -> str:
    """Packed BCD digits (IMEI, phone number, dates)."""
    return data.hex()


# Device alarms (Traccar's names) that speak about the seal or the container door, and what they mean
# for the seal detector: a cut supply or a removed unit is tampering, a door alarm is an opening.
SEAL_ALARMS: dict[str, SealState] = {
    "tampering": "tampered",
    "removing": "tampered",
    "powerCut": "tampered",
    "fallDown": "tampered",  # e-seal dropped off the container
    "door": "open",
    "unlock": "open",
    "lock": "closed",
}
LOW_BATTERY_ALARMS = frozenset({"lowBattery", "lowPower"})


def alarm_attributes(alarms: list[str]) -> dict[str, Any]:
    """`alarms`, plus `seal` and `low_battery` when an alarm says something about the seal."""
    out: dict[str, Any] = {"alarms": alarms}
    for a in alarms:
        if a in SEAL_ALARMS:
            state = SEAL_ALARMS[a]
            if out.get("seal") != "tampered":  # tampering outranks an opening in the same message
                out["seal"] = state
        if a in LOW_BATTERY_ALARMS:
            out["low_battery"] = True
    return out
