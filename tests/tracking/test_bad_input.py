"""The issue's bad input, sent to a real TCP listener with the real ingest behind it: truncated frames,
unknown devices, positions outside the valid range, timestamps in the future and a flooding device are
each counted, none stops the listener, and the good frames around them are stored."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from smartcustoms.platform.db import unit_of_work
from smartcustoms.tracking import service, stream
from smartcustoms.tracking.listener import DeviceListener
from smartcustoms.tracking.protocols import gt06
from smartcustoms.tracking.store import PositionRow
from tests.tracking import scenario as sc
from tests.tracking.conftest import clean_tracking_tables
from tests.tracking.test_api import route_and_trip


def login(imei: str) -> bytes:
    return gt06.build_ack(0x01, 1, content=bytes.fromhex(imei.rjust(16, "0")))


@pytest.fixture
def trip(module_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv(stream.ENV_URL, raising=False)
    clean_tracking_tables()  # the module's database (conftest.module_db_url), emptied
    service.reset_state()
    imei = "862000000000001"
    route_and_trip(imei)
    yield imei
    service.reset_state()


def send(streams: list[bytes]) -> DeviceListener:
    """Each byte string on its own connection; returns the listener once everything is through."""

    async def main() -> DeviceListener:
        listener = DeviceListener({"gt06": 0}, service.ingest, host="127.0.0.1")
        port = (await listener.start())["gt06"]
        for payload in streams:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            # read the acknowledgements until the listener closes: it has then handled every frame (closing
            # with unread acknowledgements would reset the connection and cut its work short under load)
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(reader.read(), timeout=120)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await listener.close()
        return listener

    return asyncio.run(main())


def stored() -> list[Any]:
    with unit_of_work() as s:
        return list(s.execute(select(PositionRow.time, PositionRow.flag).order_by(PositionRow.id)))


def test_truncated_out_of_range_and_unknown_device(trip: str) -> None:
    fixes = sc.drive(n=5)
    good = [gt06.encode_position(f.latitude, f.longitude, f.time, serial=i) for i, f in enumerate(fixes)]
    listener = send(
        [
            login(trip)
            + good[0]
            + gt06.build_ack(0x12, 5, content=good[2][4:10])  # a position frame cut short inside the GPS block
            + gt06.encode_position(95.0, 121.0, fixes[2].time, serial=6)  # latitude out of range
            + gt06.encode_position(25.0, 200.0, fixes[2].time, serial=7)  # longitude out of range
            + b"\x78\x78\x05\x12\x00\x01\xff\xff\r\n"  # bad CRC and no content
            + good[1][:12],  # the connection drops mid-frame
            login(trip) + b"\x00garbage\xff" + good[3] + good[4],  # the device reconnects: still served
            login("862999999999999") + good[2],  # nobody registered this device
        ]
    )
    errors = dict(listener.stats.errors)
    assert errors.get("gt06:bad-coordinates") == 2
    assert errors.get("gt06:truncated", 0) == 2
    assert listener.stats.ingest["unknown_device"] == 1
    assert [t.replace(tzinfo=UTC) for t, _ in stored()] == [fixes[0].time, fixes[3].time, fixes[4].time]


def test_future_timestamp_flagged_not_evaluated(trip: str) -> None:
    fix = sc.drive(n=3)[1]
    future = datetime.now(UTC) + timedelta(days=2)
    listener = send(
        [login(trip) + gt06.encode_position(fix.latitude, fix.longitude, future.replace(microsecond=0), serial=2)]
    )
    assert listener.stats.positions["gt06"] == 1
    assert [flag for _, flag in stored()] == ["future"]


def test_flood_from_one_device_is_rate_limited(trip: str) -> None:
    fixes = sc.drive(n=301, step_s=1)
    service.LIMITER.rate, service.LIMITER.burst = 5.0, 50.0
    service.LIMITER.clock = lambda: 1000.0  # the flood arrives at one instant, however long the machine takes
    try:
        listener = send(
            [
                login(trip)
                + b"".join(gt06.encode_position(f.latitude, f.longitude, f.time, serial=i) for i, f in enumerate(fixes))
            ]
        )
    finally:
        service.LIMITER.rate, service.LIMITER.burst, service.LIMITER.clock = 20.0, 100.0, time.monotonic
    limited = listener.stats.ingest["rate_limited"]
    assert limited == len(fixes) - 50  # the burst passes, the flood does not
    assert len(stored()) == 50
