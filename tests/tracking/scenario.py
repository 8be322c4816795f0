"""A small synthetic corridor built in code: straight 20 km route east along 25°N, zones at both ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shapely.geometry import box

from smartcustoms.tracking.model import Fix, Route, TripPlan, Zone

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LAT = 25.0
LON0, LON1 = 121.0, 121.2  # ≈ 20.2 km
M_PER_DEG_LAT = 111_195.0


def route(corridor_m: float = 100.0) -> Route:
    return Route("R1", [(LAT, LON0 + i * (LON1 - LON0) / 20) for i in range(21)], corridor_m)


def zones() -> dict[str, Zone]:
    return {
        "FTZ-A": Zone("FTZ-A", box(LON0 - 0.004, LAT - 0.003, LON0 + 0.004, LAT + 0.003)),
        "PORT-B": Zone("PORT-B", box(LON1 - 0.004, LAT - 0.003, LON1 + 0.004, LAT + 0.003)),
    }


def plan(deadline_min: float = 60.0) -> TripPlan:
    return TripPlan("T1", "R1", "FTZ-A", "PORT-B", T0, T0 + timedelta(minutes=deadline_min))


def drive(
    n: int = 61,
    step_s: float = 30.0,
    *,
    north_m: dict[int, float] | None = None,
    seal: dict[int, str] | None = None,
    hold: dict[int, int] | None = None,
    skip: set[int] | None = None,
    start: datetime = T0,
) -> list[Fix]:
    """`n` evenly spaced fixes from origin to destination; offsets, seal readings, holds and gaps by index.

    hold[i] = k: the vehicle stays at fix i for k extra fixes (time keeps running).
    """
    north_m = north_m or {}
    seal = seal or {}
    hold = hold or {}
    skip = skip or set()
    out: list[Fix] = []
    t = start
    for i in range(n):
        lon = LON0 + (LON1 - LON0) * i / (n - 1)
        lat = LAT + north_m.get(i, 0.0) / M_PER_DEG_LAT
        for _ in range(1 + hold.get(i, 0)):
            if i not in skip:
                out.append(Fix("T1", t, lat, lon, seal.get(i, "closed")))  # type: ignore[arg-type]
            t += timedelta(seconds=step_s)
    return out
