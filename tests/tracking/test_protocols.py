"""Decoders against hand-built frames, Traccar's recorded payloads, and random bytes."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols import decode, eseal, gt06, jt808, osmand, survey, teltonika
from tests.conftest import shared_data


def test_crc_itu_matches_the_gt06_manual() -> None:
    # Login ack from the GT06 protocol document: 78 78 05 01 00 01 D9 DC 0D 0A
    assert gt06.build_ack(0x01, 1) == bytes.fromhex("787805010001d9dc0d0a")
    assert gt06.crc_itu(bytes.fromhex("0d01012345678901234500 01".replace(" ", ""))) == 0x8CDD


def test_gt06_login_yields_imei_and_ack() -> None:
    frame = gt06.decode(bytes.fromhex("78780D01012345678901234500018CDD0D0A"))
    assert frame.kind == "login"
    assert frame.device_id == "123456789012345"
    assert frame.ack == bytes.fromhex("787805010001d9dc0d0a")
    assert frame.attributes["crc_ok"]


def test_gt06_heartbeat_is_acknowledged() -> None:
    frame = gt06.decode(bytes.fromhex("78780a13440604000201baaf540d0a"), "123")
    assert frame.kind == "heartbeat"
    assert frame.ack is not None and frame.ack[3] == 0x13
    assert frame.ack[-2:] == b"\r\n"
    assert gt06.crc_itu(frame.ack[2:-4]) == int.from_bytes(frame.ack[-4:-2], "big")


def test_gt06_gps_frame() -> None:
    frame = gt06.decode(
        bytes.fromhex("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a"), "868"
    )
    (p,) = frame.positions
    assert p.device_id == "868"
    assert p.time == datetime(2015, 10, 20, 14, 21, 11, tzinfo=UTC)
    assert p.valid
    assert p.latitude == pytest.approx(54.945347, abs=1e-6)
    assert p.longitude == pytest.approx(24.017622, abs=1e-6)


def test_gt06_stream_split() -> None:
    a = bytes.fromhex("78780D01012345678901234500018CDD0D0A")
    b = bytes.fromhex("78780a13440604000201baaf540d0a")
    frames, rest = gt06.split_frames(b"\x00" + a + b + b[:5])
    assert frames == [a, b]
    assert rest == b[:5]


def test_jt808_location_and_general_response() -> None:
    frame = jt808.decode(
        jt808.build_message(
            0x0200,
            bytes.fromhex("013912345678"),
            7,
            (0).to_bytes(4, "big")
            + (0b1110).to_bytes(4, "big")  # positioned, south, west
            + (22_543_210).to_bytes(4, "big")
            + (114_057_000).to_bytes(4, "big")
            + (12).to_bytes(2, "big")
            + (605).to_bytes(2, "big")
            + (90).to_bytes(2, "big")
            + bytes.fromhex("250102080000"),
        )
    )
    (p,) = frame.positions
    assert frame.device_id == "13912345678"
    assert (p.latitude, p.longitude) == (pytest.approx(-22.54321), pytest.approx(-114.057))
    assert p.speed_kmh == pytest.approx(60.5)
    assert p.time == datetime(2025, 1, 2, 0, 0, 0, tzinfo=UTC)  # 08:00 Beijing time
    assert frame.ack is not None
    raw = jt808.unescape(frame.ack[1:-1])
    assert raw[0:2] == b"\x80\x01"  # platform general response
    assert raw[4:10] == bytes.fromhex("013912345678")
    assert raw[12:17] == bytes.fromhex("0007020000")  # answers serial 7, message 0x0200, result 0 (success)
    assert jt808._xor(raw[:-1]) == raw[-1]


def test_jt808_escaping_round_trip() -> None:
    body = bytes([0x7E, 0x7D, 0x01])
    msg = jt808.build_message(0x0900, bytes.fromhex("000000000001"), 1, body)
    assert b"\x7e" not in msg[1:-1]
    assert jt808.unescape(msg[1:-1])[12:15] == body
    assert jt808.decode(msg).message_type == "transparent"


def test_osmand_query_and_json() -> None:
    f = osmand.decode("/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&speed=10.0")
    (p,) = f.positions
    assert p.device_id == "902064"
    assert p.speed_kmh == pytest.approx(18.52)
    assert p.time == datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)
    assert f.ack is not None and f.ack.startswith(b"HTTP/1.1 200")
    body = b'{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.42,"longitude":-122.08,"speed":2}},"device_id":"48"}'
    (q,) = osmand.decode("POST / HTTP/1.1\r\nHost: x\r\n\r\n" + body.decode()).positions
    assert (q.device_id, q.speed_kmh) == ("48", pytest.approx(7.2))
    with pytest.raises(DecodeError):
        osmand.decode("/?timestamp=1377177267&lat=60.0&lon=30.0")
    with pytest.raises(DecodeError):
        osmand.decode("/?id=1&lat=91&lon=30.0")


def test_eseal_position_and_seal_event() -> None:
    f = eseal.decode(
        "##S,eSeal,1000821,256,3.0.6,Normal,34,2017-08-31,08:14:40,15,A,25.708828N 100.372870W,10,0,Open,0.71,0:0:3:0,3.4,-73,E##"
    )
    (p,) = f.positions
    (e,) = f.events
    assert (p.latitude, p.longitude) == (pytest.approx(25.708828), pytest.approx(-100.37287))
    assert e.state == "open"
    assert e.low_battery
    assert f.ack == b"##S,eSeal,1000821,256,3.0.6,Normal ACK,34,E##"
    assert eseal.decode("##S,eSeal,1000898,256,3.0.6,RC-NFC DEL ACK,,E##").kind == "info"


def test_teltonika_codec8_from_the_manual_and_stream_split() -> None:
    frame = teltonika.decode(VALID["teltonika"], "356307042441013")
    (p,) = frame.positions
    assert frame.ack == b"\x00\x00\x00\x01"
    assert frame.attributes["crc_ok"]
    assert p.time == datetime(2019, 6, 10, 10, 4, 46, tzinfo=UTC)
    assert p.attributes["external_voltage_mv"] == 0x5E0F
    login = bytes.fromhex("000F333536333037303432343431303133")
    assert teltonika.decode(login).device_id == "356307042441013"
    assert teltonika.decode(login).ack == b"\x01"
    frames, rest = teltonika.split_frames(login + VALID["teltonika"] + VALID["teltonika"][:9])
    assert frames == [login, VALID["teltonika"]] and rest == VALID["teltonika"][:9]


def test_jt600_text_and_binary() -> None:
    (p,) = decode("jt600", VALID["jt600"]).positions
    assert (p.device_id, p.latitude, p.longitude, p.valid) == ("3301210003", 22.564025, 113.242329, True)
    assert p.time == datetime(2012, 8, 4, 18, 53, 2, tzinfo=UTC)
    (b,) = decode("jt600", bytes.fromhex("2475201509261611002313101503464722331560113555309F0000000000")).positions
    assert b.latitude == pytest.approx(22 + 33.156 / 60) and b.longitude == pytest.approx(113 + 55.5309 / 60)


def test_recorded_traccar_payloads() -> None:
    rows = {r.protocol: r for r in survey(shared_data("tracking", "traccar_protocol_samples"))}
    assert set(rows) == {"gt06", "jt808", "osmand", "eseal", "teltonika", "jt600"}
    for row in rows.values():
        assert row.messages == row.position + row.non_position + row.failed
    # Floors from the last measured survey (docs/tracking.md): regressions show up here.
    assert rows["gt06"].position >= 55
    assert rows["jt808"].position >= 74
    assert rows["osmand"].position >= 13
    assert rows["eseal"].position == 3 and rows["eseal"].failed == 0
    assert rows["teltonika"].position >= 30
    assert rows["jt600"].position >= 30


PROTOCOLS = ["gt06", "jt808", "osmand", "eseal", "teltonika", "jt600"]
VALID = {
    "gt06": bytes.fromhex("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a"),
    "jt808": bytes.fromhex(
        "7e02000032000000000000022500000000000c0002000000000000000000710000014626061510572501"
        "040000006430011f31010ce10200722b04ab560000487e"
    ),
    "osmand": b"/?id=1&lat=60.0&lon=30.0&timestamp=1377177267&speed=1",
    "teltonika": bytes.fromhex(
        "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF"
    ),
    "jt600": b"(3301210003,U01,040812,185302,T,22.564025,N,113.242329,E,5.21,152,9,32%,00000000000011,10133,5173,22,100,1)",
    "eseal": b"##S,eSeal,1000821,256,3.0.6,Normal,34,2017-08-31,08:14:40,15,A,25.708828N 100.372870W,10,0,Close,0.71,0:0:3:0,3.8,-73,E##",
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fuzz_seeds_are_valid(protocol: str) -> None:
    assert decode(protocol, VALID[protocol]).positions


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120))
def test_random_bytes_raise_only_decode_error(protocol: str, data: bytes) -> None:
    for payload in (data, VALID[protocol][:4] + data):
        with contextlib.suppress(DecodeError):
            decode(protocol, payload)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=200), flip=st.integers(min_value=0, max_value=255), at=st.integers(0, 200)
)
def test_truncated_and_corrupted_frames_raise_only_decode_error(protocol: str, cut: int, flip: int, at: int) -> None:
    valid = VALID[protocol]
    mutated = bytearray(valid[: cut % (len(valid) + 1)])
    if mutated:
        mutated[at % len(mutated)] = flip
    with contextlib.suppress(DecodeError):
        decode(protocol, bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(-89.9, 89.9),
    lon=st.floats(-179.9, 179.9),
    t=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31)),
    speed=st.integers(0, 255),
    course=st.integers(0, 359),
)
def test_gt06_encode_decode_round_trip(lat: float, lon: float, t: datetime, speed: int, course: int) -> None:
    when = t.replace(microsecond=0, tzinfo=UTC)
    frame = gt06.decode(gt06.encode_position(lat, lon, when, speed_kmh=speed, course=course, serial=9), "1")
    (p,) = frame.positions
    assert frame.attributes["crc_ok"]
    assert p.latitude == pytest.approx(lat, abs=1e-6)
    assert p.longitude == pytest.approx(lon, abs=1e-6)
    assert (p.time, p.speed_kmh, p.course) == (when, speed, course)
