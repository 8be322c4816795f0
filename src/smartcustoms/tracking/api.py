"""`/tracking/...`: routes and zones, trips, device ingest (Traccar forwarding, OsmAnd), alerts and their stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from smartcustoms.platform import i18n
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.i18n import t
from smartcustoms.platform.web import principal, request_language, require
from smartcustoms.tracking import service
from smartcustoms.tracking.errors import DecodeError, TrackingError
from smartcustoms.tracking.protocols import osmand
from smartcustoms.tracking.store import AlertRow, PositionRow, TripRow

router = APIRouter(prefix="/tracking", tags=["tracking"])
INGESTERS = (Role.ADMIN, Role.OFFICER, Role.CARRIER)


class TripIn(BaseModel):
    trip_id: str = Field(min_length=1, max_length=64)
    route_id: str
    origin_zone: str
    destination_zone: str
    departure: datetime
    deadline: datetime
    carrier_id: str | None = None
    declaration_ref: str | None = None
    vehicle: str | None = None
    container: str | None = None
    seal_id: str | None = None
    device_id: str | None = None


class _Out(BaseModel):
    """Response base: SQLite hands back naive datetimes; every time leaves the API in UTC."""

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class TripOut(_Out):
    trip_id: str
    route_id: str
    origin_zone: str
    destination_zone: str
    departure: datetime
    deadline: datetime
    carrier_id: str | None
    declaration_ref: str | None
    vehicle: str | None
    container: str | None
    seal_id: str | None
    device_id: str | None
    status: str
    arrived_sealed: bool | None

    @classmethod
    def of(cls, row: TripRow) -> TripOut:
        return cls.model_validate(row, from_attributes=True)


class AlertOut(_Out):
    id: int
    trip_id: str
    type: str
    severity: str
    start: datetime
    end: datetime | None
    raised_at: datetime
    latitude: float
    longitude: float
    reason: str
    rule_version: str
    status: str
    acknowledged_by: str | None
    acknowledge_note: str | None
    closed_by: str | None
    close_note: str | None
    localized: dict[str, str] | None = None
    """The reason in the caller's language (`?lang=`, `Accept-Language`); absent in English."""

    @classmethod
    def of(cls, row: AlertRow, lang: str = i18n.DEFAULT) -> AlertOut:
        out = cls.model_validate(row, from_attributes=True)
        if lang != i18n.DEFAULT:
            out.localized = {"lang": lang, "reason": i18n.translate(row.reason, lang)}
        return out


class PositionOut(_Out):
    time: datetime
    latitude: float
    longitude: float
    speed_kmh: float | None
    seal: str | None
    flag: str | None

    @classmethod
    def of(cls, row: PositionRow) -> PositionOut:
        return cls.model_validate(row, from_attributes=True)


class TripDetail(BaseModel):
    trip: TripOut
    positions: list[PositionOut]
    alerts: list[AlertOut]


class PositionIn(BaseModel):
    device_id: str = Field(min_length=1, max_length=64)
    time: datetime
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    speed_kmh: float | None = None
    seal: str | None = Field(default=None, pattern="^(closed|open|tampered)$")
    low_battery: bool = False


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


@router.post("/routes")
def import_routes(doc: dict[str, Any], who: Principal = Depends(require(Role.OFFICER, Role.ADMIN))) -> dict[str, int]:
    """Create or replace routes (LineString, route_id, corridor_m) and zones (Polygon, zone_id)."""
    return service.import_routes(who, doc)


@router.get("/map")
def map_layers(who: Principal = Depends(principal)) -> dict[str, Any]:
    """Zones, routes and corridors as GeoJSON (the console draws them without internet tiles)."""
    return service.map_layers(who)


@router.get("/vehicles")
def vehicles(who: Principal = Depends(principal)) -> list[dict[str, Any]]:
    """Latest position of each active trip, for the live map."""
    return service.vehicles(who)


@router.post("/trips", status_code=201)
def create_trip(body: TripIn, who: Principal = Depends(require(Role.OFFICER, Role.ADMIN, Role.CARRIER))) -> TripOut:
    return TripOut.of(service.create_trip(who, body.model_dump()))


@router.get("/trips")
def list_trips(status: str | None = None, who: Principal = Depends(principal)) -> list[TripOut]:
    return [TripOut.of(t) for t in service.list_trips(who, status)]


@router.get("/trips/{trip_id}")
def get_trip(request: Request, trip_id: str, who: Principal = Depends(principal)) -> TripDetail:
    trip, positions, alerts = service.get_trip(who, trip_id)
    lang = request_language(request)
    return TripDetail(
        trip=TripOut.of(trip),
        positions=[PositionOut.of(p) for p in positions],
        alerts=[AlertOut.of(a, lang) for a in alerts],
    )


@router.post("/ingest/traccar")
async def ingest_traccar(request: Request, _who: Principal = Depends(require(*INGESTERS))) -> dict[str, Any]:
    """Traccar's position/event forwarding (forward.json=true; event.forward.url) lands here."""
    try:
        doc = json.loads(await request.body())
    except ValueError:
        raise TrackingError(t("body is not JSON"), code="bad-json") from None
    readings = service.readings_from_traccar(doc)
    return (await asyncio.to_thread(service.ingest, readings)).as_dict()


@router.post("/ingest/positions")
def ingest_positions(body: list[PositionIn], _who: Principal = Depends(require(*INGESTERS))) -> dict[str, Any]:
    readings = [
        service.Reading(p.device_id, p.time, p.latitude, p.longitude, p.speed_kmh, p.seal, p.low_battery) for p in body
    ]
    return service.ingest(readings).as_dict()


@router.post("/ingest/osmand")
async def ingest_osmand(request: Request, _who: Principal = Depends(require(*INGESTERS))) -> dict[str, Any]:
    """OsmAnd / Traccar Client over HTTP (query string or JSON body)."""
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    try:
        frame = osmand.decode(target, await request.body() or None)
    except DecodeError as exc:
        raise TrackingError(exc.problems) from None
    return (await asyncio.to_thread(service.ingest, service.readings_from_frame(frame))).as_dict()


@router.get("/alerts")
def list_alerts(
    request: Request, status: str | None = None, trip_id: str | None = None, who: Principal = Depends(principal)
) -> list[AlertOut]:
    """Newest first; reasons stay in English, `localized.reason` carries them in the caller's language."""
    lang = request_language(request)
    return [AlertOut.of(a, lang) for a in service.list_alerts(who, status, trip_id)]


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: int, body: NoteIn, who: Principal = Depends(require(Role.OFFICER, Role.ADMIN))) -> AlertOut:
    return AlertOut.of(service.acknowledge_alert(who, alert_id, body.note))


@router.post("/alerts/{alert_id}/close")
def close(alert_id: int, body: NoteIn, who: Principal = Depends(require(Role.OFFICER, Role.ADMIN))) -> AlertOut:
    return AlertOut.of(service.close_alert(who, alert_id, body.note))


@router.get("/alerts/stream")
async def stream(
    limit: int | None = Query(None, ge=1, description="end after this many events (tests, polling clients)"),
    _who: Principal = Depends(require(Role.OFFICER, Role.ADMIN, Role.ANALYST)),
) -> StreamingResponse:
    """Server-sent events: one `alert` event per alert change, a comment every 15 s to keep proxies open."""
    queue = service.BUS.subscribe()

    async def events() -> AsyncIterator[str]:
        sent = 0
        try:
            yield f": connected {datetime.now(UTC).isoformat()}\n\n"
            while limit is None or sent < limit:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: alert\ndata: {json.dumps(event, default=str)}\n\n"
                sent += 1
        finally:
            service.BUS.unsubscribe(queue)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
