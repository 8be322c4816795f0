"""E-seal text protocol (Traccar "eseal", port 5169): `##S,eSeal,<id>,<proto>,<firmware>,<type>,...,E##`.

Position messages: type, index, date, time, report interval, A/V, `lat[NS] lon[EW]`, course, speed
(km/h), door/lock state (Close/Open), acceleration, NFC, battery voltage, RSSI. Types: `Normal`,
`Button-Normal`, `Startup`, `Termination` (reports) and the events `Event-Door`, `Event-Shock`,
`Event-Drop`, `Event-Lock`, `Event-RC-Unlock`, each acknowledged with `<type> ACK,<index>`. Other types
(`Startup OK`, `... ACK`) are configuration replies without a position.
"""

from __future__ import annotations

import re

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols.base import Frame, Position, SealEvent, check_coordinates, make_time

PROTOCOL = "eseal"
LOW_BATTERY_V = 3.5  # below this the seal may stop reporting before the trip ends

_POSITION = re.compile(
    r"(?P<index>\d+),(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d),(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d),"
    r"(?P<interval>\d+),(?P<valid>[AV]),(?P<lat>\d+\.\d+)(?P<ns>[NS]) (?P<lon>\d+\.\d+)(?P<ew>[EW]),"
    r"(?P<course>\d+),(?P<speed>\d+),(?P<lock>[^,]*),(?P<acc>-?\d+(?:\.\d+)?),(?P<nfc>[^,]*),"
    r"(?P<battery>\d+(?:\.\d+)?),(?P<rssi>-?\d+)"
)
_TAMPER_WORDS = ("tamper", "cut", "illegal", "broken", "alarm")
# Event messages and the alarm each one is (Traccar's names); the seal detector reads `seal`.
EVENTS = {
    "Event-Door": "door",
    "Event-Shock": "vibration",
    "Event-Drop": "fallDown",
    "Event-Lock": "lock",
    "Event-RC-Unlock": "unlock",
}


def _lock_state(lock: str, event: str) -> str | None:
    low_event = event.lower()
    if event == "Event-Drop" or any(w in low_event for w in _TAMPER_WORDS):
        return "tampered"  # the seal fell off or reports forcing: tampering whatever the lock says
    if event == "Event-Door":
        return "tampered" if lock.lower().startswith("close") else "open"  # door opened under a closed lock
    if event == "Event-RC-Unlock":
        return "open"
    if event == "Event-Lock":
        return "closed"
    low = lock.lower()
    if low.startswith("close") or low == "lock":
        return "closed"
    if low.startswith("open") or low == "unlock":
        return "open"
    return None


def decode(payload: bytes | str) -> Frame:
    """Decode one e-seal message (with or without the trailing CR/LF)."""
    try:
        text = payload.decode("ascii") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        raise DecodeError(PROTOCOL, "bad-text", "payload is not ASCII text") from None
    text = text.strip()
    if not text.startswith("##S,") or not text.endswith(",E##"):
        raise DecodeError(PROTOCOL, "bad-header", "message is not framed as ##S,...,E##")
    fields = text[4:-4].split(",", 5)
    if len(fields) < 5:
        raise DecodeError(PROTOCOL, "truncated", "fewer than five header fields")
    family, device_id, proto, firmware = fields[0], fields[1], fields[2], fields[3]
    rest = fields[4] if len(fields) == 5 else fields[4] + "," + fields[5]
    event, _, body = rest.partition(",")
    if not device_id.isdigit() or len(device_id) > 32:
        raise DecodeError(PROTOCOL, "bad-device-id", f"device id {device_id!r} is not numeric")
    attrs = {"family": family, "protocol_version": proto, "firmware": firmware}
    m = _POSITION.fullmatch(body) or _POSITION.match(body)
    if m is None:
        if event.endswith(("ACK", "OK")) or not event:
            return Frame(PROTOCOL, "info", event or "empty", device_id, attributes=attrs)
        raise DecodeError(PROTOCOL, "bad-fields", f"{event!r} message fields are not understood")
    g = m.groupdict()
    time = make_time(PROTOCOL, int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"]), int(g["mi"]), int(g["s"]))
    lat = float(g["lat"]) * (-1 if g["ns"] == "S" else 1)
    lon = float(g["lon"]) * (-1 if g["ew"] == "W" else 1)
    check_coordinates(PROTOCOL, lat, lon)
    battery = float(g["battery"])
    state = _lock_state(g["lock"], event)
    position = Position(
        protocol=PROTOCOL,
        device_id=device_id,
        time=time,
        valid=g["valid"] == "A",
        latitude=lat,
        longitude=lon,
        speed_kmh=float(g["speed"]),
        course=float(g["course"]),
        attributes={
            "interval_s": int(g["interval"]),
            "nfc": g["nfc"],
            "alarm": EVENTS.get(event),
            "battery_v": battery,
            "rssi": int(g["rssi"]),
            "seal": state,
            "event": event,
        },
    )
    seal = SealEvent(
        protocol=PROTOCOL,
        device_id=device_id,
        time=time,
        event=event,
        state=state,  # type: ignore[arg-type]
        battery_v=battery,
        low_battery=battery < LOW_BATTERY_V,
    )
    ack = f"##S,{family},{device_id},{proto},{firmware},{event} ACK,{g['index']},E##".encode()
    return Frame(
        PROTOCOL, "position", event, device_id, positions=(position,), events=(seal,), ack=ack, attributes=attrs
    )
