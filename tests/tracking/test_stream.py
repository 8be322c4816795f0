"""Device messages and alerts through the event stream, in-process and over NATS JetStream.

A GT06 device talks to a real TCP listener; its readings end as stored positions and a deviation alert
reaches an SSE-style subscriber. Over JetStream the detector is a durable pull consumer in another thread
(as it would be in another process), and a detector that dies between commit and ack loses nothing and
stores nothing twice when a new one takes over.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.tracking import service, stream
from smartcustoms.tracking.listener import DeviceListener
from smartcustoms.tracking.protocols import gt06
from smartcustoms.tracking.store import AlertRow, PositionRow
from tests.tracking import scenario as sc
from tests.tracking.test_api import geojson

LOGIN = bytes.fromhex("78780D01012345678901234500018CDD0D0A")
IMEI = "123456789012345"


@pytest.fixture(params=["in-process", "jetstream"])
def events(request: pytest.FixtureRequest, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    service.reset_state()
    stream.reset_streams()
    if request.param == "jetstream":
        url = request.getfixturevalue("nats_server")
        monkeypatch.setenv(stream.ENV_URL, url)
        monkeypatch.setenv(stream.ENV_PREFIX, f"t{uuid.uuid4().hex[:10]}")  # a stream of its own per test
        monkeypatch.setenv("SMARTCUSTOMS_TRACKING_NATS_ACK_WAIT_S", "1")
    else:
        monkeypatch.delenv(stream.ENV_URL, raising=False)
    service.import_routes(SYSTEM, geojson())
    plan = sc.plan(deadline_min=120)
    service.create_trip(
        SYSTEM,
        {
            "trip_id": "T1",
            "route_id": "R1",
            "origin_zone": "FTZ-A",
            "destination_zone": "PORT-B",
            "departure": plan.departure,
            "deadline": plan.deadline,
            "device_id": IMEI,
        },
    )
    yield stream.get_stream()
    stream.reset_streams()
    service.reset_state()


def _counts() -> tuple[int, int, list[tuple[str, Any]]]:
    with unit_of_work() as s:
        positions = s.scalar(select(func.count()).select_from(PositionRow).where(PositionRow.trip_id == "T1")) or 0
        distinct = s.scalar(select(func.count(func.distinct(PositionRow.time))).where(PositionRow.trip_id == "T1")) or 0
        alerts = [(a.condition, a.start) for a in s.scalars(select(AlertRow).where(AlertRow.trip_id == "T1"))]
    return positions, distinct, alerts


def _detector(events: Any) -> tuple[threading.Event, threading.Thread] | None:
    if not isinstance(events, stream.NatsStream):
        return None
    stop = threading.Event()
    thread = threading.Thread(target=events.consume_readings, args=(service.ingest, stop), daemon=True)
    thread.start()
    return stop, thread


def test_device_message_to_stored_position_and_alert(events: Any) -> None:
    fixes = sc.drive(n=41, north_m={i: 1500.0 for i in range(15, 25)})
    detector = _detector(events)

    async def main() -> dict[str, Any]:
        alerts = service.BUS.subscribe()
        listener = DeviceListener({"gt06": 0}, events.publish_readings, host="127.0.0.1")
        port = (await listener.start())["gt06"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(LOGIN)
        assert (await asyncio.wait_for(reader.readexactly(10), 10))[3] == 0x01  # login acked
        for n, f in enumerate(fixes):
            writer.write(gt06.encode_position(f.latitude, f.longitude, f.time, serial=n + 2))
        await writer.drain()
        try:
            while True:
                event = await asyncio.wait_for(alerts.get(), 20)
                if event.get("type") == "deviation" and event["action"] == "open":
                    return event
        finally:
            writer.close()
            await listener.close()
            service.BUS.unsubscribe(alerts)

    try:
        event = asyncio.run(main())
        assert event["trip_id"] == "T1"
        for _ in range(200):
            positions, distinct, alerts = _counts()
            if positions == len(fixes):
                break
            threading.Event().wait(0.05)
        assert (positions, distinct) == (len(fixes), len(fixes))
        assert [c for c, _ in alerts].count("deviation") == 1
    finally:
        if detector:
            detector[0].set()
            detector[1].join(10)


class Crash(Exception):
    pass


@pytest.mark.parametrize("events", ["jetstream"], indirect=True)  # in-process ingest is synchronous: no redelivery
def test_redelivery_after_detector_restart(events: Any) -> None:
    assert isinstance(events, stream.NatsStream)
    fixes = sc.drive(n=41, north_m={i: 1500.0 for i in range(15, 25)})
    readings = [service.Reading(IMEI, f.time, f.latitude, f.longitude, 40.0, "closed", False, "gt06") for f in fixes]
    events.publish_readings(readings[:20])
    events.publish_readings(readings[:20])  # a listener re-sending the same batch: JetStream drops it

    def ingest_then_die(batch: list[Any]) -> None:
        service.ingest(batch)  # committed...
        raise Crash  # ...but the process dies before acknowledging the messages

    with pytest.raises(Crash):
        events.consume_readings(ingest_then_die, threading.Event())
    assert _counts()[0] == 20
    service.reset_state()  # a new detector process: detector state rebuilt from the database
    events.publish_readings(readings[20:])  # published while no detector runs
    stop = threading.Event()
    thread = threading.Thread(target=events.consume_readings, args=(service.ingest, stop), daemon=True)
    thread.start()
    try:
        for _ in range(600):  # the first batch comes back after ack_wait (1 s here)
            positions, distinct, alerts = _counts()
            if positions >= len(fixes):
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.5)  # give a wrongly re-stored duplicate time to show up
    finally:
        stop.set()
        thread.join(10)
    positions, distinct, alerts = _counts()
    assert events.redelivered >= 20  # the first batch came back (more than once if a slow ack timed out)
    assert (positions, distinct) == (len(fixes), len(fixes))  # nothing lost, nothing twice
    assert len(alerts) == len(set(alerts))
    assert [c for c, _ in alerts].count("deviation") == 1
