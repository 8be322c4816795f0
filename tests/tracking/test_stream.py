"""Device messages and alerts through the event stream, in-process and over NATS JetStream.

A GT06 device talks to a real TCP listener; its readings end as stored positions and a deviation alert
reaches an SSE-style subscriber. Over JetStream the detector is a durable pull consumer in another thread
(as it would be in another process), and a detector that dies between commit and ack loses nothing and
stores nothing twice when a new one takes over.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
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
from tests.tracking.test_api import geojson, route_and_trip

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
    route_and_trip(IMEI)
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
            if positions >= len(fixes) and events.redelivered >= 20:  # wait for the redelivery, not a clock
                break
            threading.Event().wait(0.05)
    finally:  # the detector stops after the batch it is handling: a wrongly re-stored copy is in the counts below
        stop.set()
        thread.join(10)
    positions, distinct, alerts = _counts()
    assert events.redelivered >= 20  # the first batch came back (more than once if a slow ack timed out)
    assert (positions, distinct) == (len(fixes), len(fixes))  # nothing lost, nothing twice
    assert len(alerts) == len(set(alerts))
    assert [c for c, _ in alerts].count("deviation") == 1


# PostgreSQL only: the partitioning under test does not depend on the engine, and PostgreSQL is where several
# detector processes write at once in production; two writers racing on the same readings are tested on both
# engines in test_idempotent.py (and a redelivered message on both in test_redelivery_after_detector_restart).
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_two_detector_processes_on_two_shards(db_url: str, nats_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readings partitioned by trip: two `tracking detect --shard K --shards 2` processes each evaluate every
    reading of their own trips (an e-seal reporting under its own device ID included) and nothing else; every
    trip gets exactly its alerts, every reading is stored once."""
    service.reset_state()
    stream.reset_streams()
    monkeypatch.setenv(stream.ENV_URL, nats_server)
    monkeypatch.setenv(stream.ENV_PREFIX, f"t{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv(stream.ENV_SHARDS, "2")
    service.import_routes(SYSTEM, geojson())
    plan = sc.plan(deadline_min=120)
    trips = [f"S{k}" for k in range(6)]
    assert {stream.shard_of(f"trip:{t}", 2) for t in trips} == {0, 1}
    for k, tid in enumerate(trips):
        service.create_trip(
            SYSTEM,
            {
                "trip_id": tid,
                "route_id": "R1",
                "origin_zone": "FTZ-A",
                "destination_zone": "PORT-B",
                "departure": plan.departure,
                "deadline": plan.deadline,
                "device_id": f"86000000000{k:04d}",
                "seal_id": f"SEAL{k}",
            },
        )
    fixes = sc.drive(n=41, north_m={i: 1500.0 for i in range(15, 25)})
    readings = []
    for i, f in enumerate(fixes):
        for k in range(len(trips)):
            readings.append(
                service.Reading(f"86000000000{k:04d}", f.time, f.latitude, f.longitude, 40.0, None, False, "gt06")
            )
            if i == 30:  # the e-seal reports on its own: opened mid-route
                readings.append(service.Reading(f"SEAL{k}", f.time, None, None, None, "open", False, "eseal"))
    src = str(Path(service.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src}
    code = "from smartcustoms.tracking.cli import app; app()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "detect", "--shard", str(k), "--tick-s", "3600"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in (0, 1)
    ]
    try:
        events = stream.get_stream()
        assert isinstance(events, stream.NatsStream) and events.shards == 2
        for n in range(0, len(readings), 25):  # listener-sized batches, mixing every trip
            events.publish_readings(readings[n : n + 25])
        for _ in range(1200):
            with unit_of_work() as s:
                stored = s.scalar(select(func.count()).select_from(PositionRow)) or 0
            if stored >= len(readings):
                break
            threading.Event().wait(0.05)
    finally:
        outs = []
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            out, err = p.communicate(timeout=30)
            outs.append((out, err))
        stream.reset_streams()
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _err in outs]
    seen = [set(r["trips"]) for r in reports]
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(trips), outs
    for k, report in enumerate(reports):
        assert report["shards"] == [k]
        assert all(stream.shard_of(f"trip:{t}", 2) == k for t in report["trips"])
        assert all(n == len(fixes) + 1 for n in report["trips"].values())  # every fix and the seal event
    with unit_of_work() as s:
        positions = s.execute(select(PositionRow.trip_id, func.count()).group_by(PositionRow.trip_id)).all()
        alerts = s.execute(select(AlertRow.trip_id, AlertRow.condition)).all()
    assert dict(positions) == {t: len(fixes) + 1 for t in trips}
    assert sorted(alerts) == sorted((t, c) for t in trips for c in ("deviation", "seal:open"))
