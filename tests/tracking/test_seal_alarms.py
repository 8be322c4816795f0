"""Alarm and status bits that speak about the seal, decoded and turned into seal readings and alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smartcustoms.tracking.protocols import eseal, gt06, jt808
from smartcustoms.tracking.protocols.base import alarm_attributes
from smartcustoms.tracking.service import readings_from_frame

T = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ESEAL = "##S,eSeal,1000821,256,3.0.6,{event},34,2017-08-31,08:14:40,15,A,25.708828N 100.372870W,10,0,{lock},0.71,0:0:3:0,3.8,-73,E##"


def gt06_status(alarm: int, info: int = 0x40) -> bytes:
    """A 0x16 GPS+LBS+status frame: GPS block, LBS block (length-prefixed), terminal info, power, GSM, alarm."""
    gps = gt06.encode_position(25.0, 121.0, T)[4:22]
    lbs = bytes([9]) + bytes.fromhex("01cc000000000000")  # length byte counts itself
    return gt06.build_ack(0x16, 3, content=gps + lbs + bytes([info, 4, 3, alarm, 2]))


@pytest.mark.parametrize(
    ("alarm", "info", "seal", "low"),
    [
        (0x13, 0x40, "tampered", False),  # tampering
        (0x14, 0x40, "open", False),  # door
        (0x02, 0x40, "tampered", False),  # power cut
        (0x0E, 0x40, None, True),  # low battery
        (0x00, 0x40 | (7 << 3), "tampered", False),  # terminal info: unit removed
        (0x03, 0x40, None, False),  # vibration: not a seal matter
    ],
)
def test_gt06_status_alarms(alarm: int, info: int, seal: str | None, low: bool) -> None:
    frame = gt06.decode(gt06_status(alarm, info), "862000000000001")
    assert frame.ack is not None  # status frames are acknowledged
    (r,) = readings_from_frame(frame)
    assert (r.seal, r.low_battery) == (seal, low)
    assert r.latitude == pytest.approx(25.0)


def test_gt06_heartbeat_alarm_without_position_is_a_seal_reading() -> None:
    hb = gt06.build_ack(0x13, 9, content=bytes([0x40 | (2 << 3), 4, 3, 0, 2]))  # power cut in the terminal info
    frame = gt06.decode(hb, "862000000000001")
    (r,) = readings_from_frame(frame, now=T)
    assert (r.seal, r.latitude, r.time) == ("tampered", None, T)
    quiet = gt06.decode(gt06.build_ack(0x13, 9, content=bytes([0x46, 4, 3, 0, 2])), "862000000000001")
    assert readings_from_frame(quiet) == []


def jt808_location(alarm: int) -> bytes:
    body = (
        alarm.to_bytes(4, "big")
        + (0b10).to_bytes(4, "big")
        + (25_000_000).to_bytes(4, "big")
        + (121_000_000).to_bytes(4, "big")
        + bytes(6)
        + bytes.fromhex("250102080000")
    )
    return jt808.build_message(0x0200, bytes.fromhex("013912345678"), 7, body)


@pytest.mark.parametrize(
    ("bit", "seal", "low"),
    [(31, "open", False), (8, "tampered", False), (26, "tampered", False), (7, None, True), (1, None, False)],
)
def test_jt808_alarm_bits(bit: int, seal: str | None, low: bool) -> None:
    (r,) = readings_from_frame(jt808.decode(jt808_location(1 << bit)))
    assert (r.seal, r.low_battery) == (seal, low)


@pytest.mark.parametrize(
    ("event", "lock", "seal", "alarm"),
    [
        ("Normal", "Close", "closed", None),
        ("Normal", "Open", "open", None),
        ("Event-Door", "Open", "open", "door"),
        ("Event-Door", "Close", "tampered", "door"),  # the door opened although the lock says closed
        ("Event-Drop", "Close", "tampered", "fallDown"),
        ("Event-Lock", "Close", "closed", "lock"),
        ("Event-RC-Unlock", "Open", "open", "unlock"),
        ("Event-Shock", "Close", "closed", "vibration"),
    ],
)
def test_eseal_events(event: str, lock: str, seal: str, alarm: str | None) -> None:
    frame = eseal.decode(ESEAL.format(event=event, lock=lock))
    (p,) = frame.positions
    assert p.attributes["alarm"] == alarm
    assert (p.course, p.speed_kmh) == (10.0, 0.0)  # course comes before speed
    assert frame.ack == f"##S,eSeal,1000821,256,3.0.6,{event} ACK,34,E##".encode()
    (r,) = readings_from_frame(frame)
    assert r.seal == seal


def test_tampering_outranks_opening_in_one_message() -> None:
    assert alarm_attributes(["door", "tampering"])["seal"] == "tampered"
    assert alarm_attributes(["tampering", "door"])["seal"] == "tampered"
    assert "seal" not in alarm_attributes(["sos", "overspeed"])
