"""Idempotent storage: a batch handled twice (a JetStream message redelivered to a second detector while
the first is still writing it, a restarted detector, a device re-sending) is stored once and raises each
alert once, on SQLite and PostgreSQL.

Two detector processes are simulated in one: the second one's detector state is the first one's from
before the batch was committed (a deep copy), which is what a second process would hold."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.tracking import service
from smartcustoms.tracking.store import AlertRow, PositionRow
from tests.tracking import scenario as sc
from tests.tracking.conftest import clean_tracking_tables
from tests.tracking.test_api import geojson, route_and_trip

DEVICE = "862000000000009"


@pytest.fixture
def trip(module_db_url: str) -> Iterator[str]:
    clean_tracking_tables()  # the module's database (conftest.module_db_url), emptied
    service.reset_state()
    route_and_trip(DEVICE)
    yield DEVICE
    service.reset_state()


def readings() -> list[service.Reading]:
    """A drive with a detour (deviation) and a seal opened without a GPS fix in the middle (seal alert)."""
    fixes = sc.drive(n=41, north_m={i: 1500.0 for i in range(15, 25)})[:-1]  # still on the way: trip open
    out = [service.Reading(DEVICE, f.time, f.latitude, f.longitude, 40.0, "closed", False, "gt06") for f in fixes]
    seal = service.Reading(DEVICE, fixes[30].time + timedelta(seconds=5), None, None, None, "open", False, "gt06")
    return [*out[:31], seal, *out[31:]]


def stored() -> tuple[int, int, list[tuple[str, str]]]:
    with unit_of_work() as s:
        n = s.scalar(select(func.count()).select_from(PositionRow)) or 0
        seals = s.scalar(select(func.count()).select_from(PositionRow).where(PositionRow.kind == "seal")) or 0
        alerts = sorted((a.condition, a.status) for a in s.scalars(select(AlertRow)))
    return n, seals, alerts


def test_same_batch_twice_is_stored_once_and_alerts_once(trip: str) -> None:
    batch = readings()
    head, tail = batch[:10], batch[10:]
    assert service.ingest(head).stored == 10
    second_detector = copy.deepcopy(service._MONITORS)  # its state: the batch not yet committed

    first = service.ingest(tail)
    assert first.stored == len(tail)
    conditions = sorted(a["condition"] for a in first.alerts if a["action"] == "open")
    assert "deviation" in conditions and any(c.startswith("seal") for c in conditions)
    after_first = stored()
    assert after_first[:2] == (len(batch), 1)
    assert sorted(c for c, _ in after_first[2]) == conditions

    # the same message, redelivered to a second detector that had not seen it: its detectors take the
    # readings as new, the unique key turns the insert down, the batch runs again on rebuilt state
    service._MONITORS.clear()
    service._MONITORS.update(second_detector)
    again = service.ingest(tail)
    assert (again.stored, again.alerts) == (0, [])
    assert again.flagged["duplicates"] == len(tail)
    assert stored() == after_first

    # the same process again (a device or listener re-sending): copies counted, not stored
    again = service.ingest(tail)
    assert (again.stored, again.alerts) == (0, [])
    assert stored() == after_first

    # a restarted detector: state rebuilt from the database, the batch is nothing new
    service.reset_state()
    again = service.ingest(batch)
    assert (again.stored, again.alerts) == (0, [])
    assert stored() == after_first


def test_alert_raised_by_two_clock_ticks_is_stored_and_pushed_once(trip: str) -> None:
    fixes = sc.drive(n=41)[:20]
    service.ingest([service.Reading(DEVICE, f.time, f.latitude, f.longitude, 40.0, "closed") for f in fixes])
    other_process = copy.deepcopy(service._MONITORS)
    later = fixes[-1].time + timedelta(minutes=30)
    assert [a["type"] for a in service.tick(later)] == ["signal_lost"]
    service._MONITORS.clear()
    service._MONITORS.update(other_process)  # `tracking tick` beside a listener doing its own checks
    assert service.tick(later) == []
    assert [c for c, _ in stored()[2]] == ["signal_lost"]


def test_odd_device_ids_and_values_are_stored_as_sent(module_db_url: str) -> None:
    """PostgreSQL gets each column as one array literal built by the service: quotes, backslashes, commas,
    braces and non-ASCII in a device ID, NULLs and microseconds come back exactly (SQLite: plain parameters)."""
    clean_tracking_tables()  # the module's database (conftest.module_db_url), emptied
    service.reset_state()
    service.import_routes(SYSTEM, geojson())
    plan = sc.plan(deadline_min=120)
    odd = ['D"1', "D\\2", "D,{3}", "D 4 NULL", "貨櫃5"]
    for k, dev in enumerate(odd):
        service.create_trip(
            SYSTEM,
            {
                "trip_id": f"Q{k}",
                "route_id": "R1",
                "origin_zone": "FTZ-A",
                "destination_zone": "PORT-B",
                "departure": plan.departure,
                "deadline": plan.deadline,
                "device_id": dev,
            },
        )
    f = sc.drive()[3]
    when = f.time + timedelta(microseconds=123457)
    readings = [
        service.Reading(dev, when, f.latitude, f.longitude, 41.7 if k % 2 else None) for k, dev in enumerate(odd)
    ]
    assert service.ingest(readings).stored == len(odd)
    with unit_of_work() as s:
        rows = s.execute(
            select(PositionRow.device_id, PositionRow.time, PositionRow.latitude, PositionRow.speed_kmh)
        ).all()
    got = {d: (t if t.tzinfo else t.replace(tzinfo=when.tzinfo), lat, v) for d, t, lat, v in rows}
    assert got == {dev: (when, f.latitude, 41.7 if k % 2 else None) for k, dev in enumerate(odd)}
    service.reset_state()
