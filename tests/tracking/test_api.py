"""The tracking API end to end on SQLite and PostgreSQL: routes, trips, ingest, alerts, SSE."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape

from smartcustoms.api import create_app
from smartcustoms.platform import auth
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.tracking import service
from smartcustoms.tracking.protocols import decode, gt06
from tests.platform.test_leftover_english import leftover_english
from tests.tracking import scenario as sc
from tests.tracking.conftest import clean_tracking_tables


@pytest.fixture(scope="module")
def tokens(module_db_url: str) -> dict[str, dict[str, str]]:
    """Users of every role, created once per module and engine (the database is the module's)."""
    out = {}
    with unit_of_work() as s:
        for name, role, party in (
            ("off", "officer", None),
            ("car", "carrier", "CARR1"),
            ("car2", "carrier", "CARR2"),
            ("tra", "trader", "TW1"),
        ):
            out[name] = {
                "Authorization": "Bearer " + auth.issue_token(s, auth.create_user(s, name, role, party_id=party))
            }
    return out


@pytest.fixture
def api(tokens: dict[str, dict[str, str]]) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """A client on empty tracking tables (the module's database, emptied: see `clean_tracking_tables`) with
    route R1 and its two zones, and no detector state."""
    clean_tracking_tables()
    service.reset_state()
    client = TestClient(create_app())
    r = client.post("/tracking/routes", json=geojson(), headers=tokens["off"])
    assert r.status_code == 200, r.text
    assert r.json() == {"routes": 1, "zones": 2}
    yield client, tokens
    service.reset_state()


def geojson(variants: list[list[list[float]]] | None = None) -> dict[str, Any]:
    """R1 and the two zones; with `variants`, R1 is a MultiLineString: the centre line, then the variants."""
    centre = [[lon, lat] for lat, lon in sc.route().coords]
    geometry = (
        {"type": "MultiLineString", "coordinates": [centre, *variants]}
        if variants
        else {"type": "LineString", "coordinates": centre}
    )
    features: list[dict[str, Any]] = [
        {"type": "Feature", "properties": {"route_id": "R1", "corridor_m": 100}, "geometry": geometry}
    ]
    for zid, z in sc.zones().items():
        features.append(
            {
                "type": "Feature",
                "properties": {"zone_id": zid},
                "geometry": {"type": "Polygon", "coordinates": [list(map(list, z.polygon.exterior.coords))]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def route_and_trip(device_id: str) -> None:
    """R1 with its zones and trip T1 on `device_id`, departing now, two hours to arrive."""
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
            "device_id": device_id,
        },
    )


def trip_body(**kw: Any) -> dict[str, Any]:
    body = {
        "trip_id": "T1",
        "route_id": "R1",
        "origin_zone": "FTZ-A",
        "destination_zone": "PORT-B",
        "departure": sc.T0.isoformat(),
        "deadline": (sc.T0 + timedelta(hours=1)).isoformat(),
        "device_id": "DEV1",
        "seal_id": "SEAL1",
        "container": "MSCU1234565",
    }
    return body | kw


def positions(fixes: list[Any], device: str = "DEV1") -> list[dict[str, Any]]:
    return [
        {
            "device_id": device,
            "time": f.time.isoformat(),
            "latitude": f.latitude,
            "longitude": f.longitude,
            "seal": f.seal,
        }
        for f in fixes
    ]


def test_trip_lifecycle_with_deviation_ack_and_close(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, tok = api
    r = client.post("/tracking/trips", json=trip_body(), headers=tok["car"])
    assert r.status_code == 201, r.text
    assert r.json()["carrier_id"] == "CARR1" and r.json()["status"] == "planned"
    assert (
        client.post(
            "/tracking/trips",
            json=trip_body(trip_id="T2", device_id="DEV9", seal_id="S9", carrier_id="CARR2"),
            headers=tok["car"],
        ).status_code
        == 422
    )
    assert (
        client.post("/tracking/trips", json=trip_body(trip_id="T3"), headers=tok["off"]).status_code == 409
    )  # device busy

    fixes = sc.drive(north_m={i: 1000.0 for i in range(20, 31)})
    first = client.post("/tracking/ingest/positions", json=positions(fixes[:25]), headers=tok["car"]).json()
    assert first["stored"] == 25
    assert [a["type"] for a in first["alerts"]] == ["deviation"]
    rest = client.post("/tracking/ingest/positions", json=positions(fixes[25:]), headers=tok["car"]).json()
    assert [a["action"] for a in rest["alerts"]] == ["clear"]

    trip = client.get("/tracking/trips/T1", headers=tok["car"]).json()
    assert trip["trip"]["status"] == "closed" and trip["trip"]["arrived_sealed"] is True
    assert len(trip["positions"]) == len(fixes) - 1  # the last fix came after arrival closed the trip
    assert rest["unknown_device"] == 1
    assert trip["positions"][0]["time"].endswith(("Z", "+00:00"))
    (alert,) = trip["alerts"]
    assert (
        alert["type"] == "deviation"
        and alert["status"] == "cleared"
        and alert["rule_version"].startswith("tracking-detectors/")
    )

    assert client.get("/tracking/trips/T1", headers=tok["car2"]).status_code == 404
    assert client.get("/tracking/trips", headers=tok["tra"]).status_code == 403
    assert (
        client.post(
            f"/tracking/alerts/{alert['id']}/acknowledge", json={"note": "called driver"}, headers=tok["car"]
        ).status_code
        == 403
    )
    assert (
        client.post(f"/tracking/alerts/{alert['id']}/close", json={"note": ""}, headers=tok["off"]).status_code == 422
    )
    r = client.post(f"/tracking/alerts/{alert['id']}/acknowledge", json={"note": "called driver"}, headers=tok["off"])
    assert r.json()["acknowledged_by"] == "off"
    r = client.post(
        f"/tracking/alerts/{alert['id']}/close", json={"note": "road works detour, confirmed"}, headers=tok["off"]
    )
    assert r.json()["status"] == "closed" and r.json()["close_note"] == "road works detour, confirmed"
    assert (
        client.post(f"/tracking/alerts/{alert['id']}/close", json={"note": "again"}, headers=tok["off"]).status_code
        == 409
    )
    assert [a["status"] for a in client.get("/tracking/alerts", headers=tok["off"]).json()] == ["closed"]


def test_traccar_forwarding_seal_event_unknown_device_and_flags(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, tok = api
    client.post("/tracking/trips", json=trip_body(), headers=tok["off"])
    fixes = sc.drive()
    client.post("/tracking/ingest/positions", json=positions(fixes[:20]), headers=tok["off"])

    def traccar(f: Any, alarm: str | None = None, unique_id: str = "SEAL1") -> dict[str, Any]:
        doc: dict[str, Any] = {
            "position": {
                "deviceId": 7,
                "fixTime": f.time.isoformat().replace("+00:00", "Z"),
                "latitude": f.latitude,
                "longitude": f.longitude,
                "speed": 20.0,
                "attributes": {},
            },
            "device": {"id": 7, "uniqueId": unique_id, "name": "seal"},
        }
        if alarm:
            doc["event"] = {"type": "alarm", "attributes": {"alarm": alarm}}
        return doc

    r = client.post("/tracking/ingest/traccar", json=traccar(fixes[20], "tampering"), headers=tok["off"])
    assert r.status_code == 200, r.text
    assert [(a["type"], a["severity"]) for a in r.json()["alerts"]] == [("seal", "critical")]
    assert (
        client.post("/tracking/ingest/traccar", json=traccar(fixes[21], unique_id="NOBODY"), headers=tok["off"]).json()[
            "unknown_device"
        ]
        == 1
    )
    dup = client.post("/tracking/ingest/traccar", json=traccar(fixes[20]), headers=tok["off"]).json()
    assert dup["flagged"] == {"duplicates": 1}
    future = datetime.now(UTC) + timedelta(days=3)
    doc = traccar(fixes[22])
    doc["position"]["fixTime"] = future.isoformat()
    assert client.post("/tracking/ingest/traccar", json=doc, headers=tok["off"]).json()["flagged"] == {"future": 1}
    offline = {"event": {"type": "deviceOffline", "deviceId": 7}, "device": {"uniqueId": "SEAL1"}}
    assert client.post("/tracking/ingest/traccar", json=offline, headers=tok["off"]).json()["stored"] == 0
    bad = client.post("/tracking/ingest/traccar", json={"position": {"latitude": 99}}, headers=tok["off"])
    assert bad.status_code == 422
    assert {tuple(p["path"]) for p in bad.json()["problems"]} >= {("position", "latitude"), ("device", "uniqueId")}


def test_detector_state_survives_a_restart_and_decoded_frames_ingest(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, tok = api
    client.post("/tracking/trips", json=trip_body(device_id="868120000000001"), headers=tok["off"])
    fixes = sc.drive(seal={i: "open" for i in range(30, 61)})
    client.post("/tracking/ingest/positions", json=positions(fixes[:35], "868120000000001"), headers=tok["off"])
    service.reset_state()  # a new process: monitors are rebuilt from stored positions, alerts not re-raised
    frames = [
        gt06.decode(gt06.encode_position(f.latitude, f.longitude, f.time, serial=i), "868120000000001")
        for i, f in enumerate(fixes[35:50])
    ]
    stats = service.ingest([r for fr in frames for r in service.readings_from_frame(fr)])
    assert stats.stored == 15 and stats.alerts == []
    alerts = client.get("/tracking/alerts?trip_id=T1", headers=tok["off"]).json()
    assert [a["type"] for a in alerts] == ["seal"]


def test_alert_stream_pushes_alerts(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, tok = api
    client.post("/tracking/trips", json=trip_body(), headers=tok["off"])
    fixes = sc.drive(north_m={i: 1000.0 for i in range(20, 31)})

    def inject() -> None:
        deadline = time.monotonic() + 10
        while not service.BUS._subscribers and time.monotonic() < deadline:
            time.sleep(0.01)
        service.ingest([service.Reading("DEV1", f.time, f.latitude, f.longitude, seal=f.seal) for f in fixes[:25]])

    thread = threading.Thread(target=inject)
    thread.start()
    with client.stream("GET", "/tracking/alerts/stream?limit=1", headers=tok["off"]) as r:
        body = "".join(r.iter_text())
    thread.join()
    data = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [(d["action"], d["type"], d["trip_id"]) for d in data] == [("open", "deviation", "T1")]


def test_map_layers_and_rate_limit(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, tok = api
    layers = client.get("/tracking/map", headers=tok["off"]).json()
    kinds = sorted(
        next(k for k in ("zone_id", "route_id", "corridor_of") if k in f["properties"]) for f in layers["features"]
    )
    assert kinds == ["corridor_of", "route_id", "zone_id", "zone_id"]
    limiter = service.RateLimiter(rate_per_s=1, burst=3)
    assert [limiter.allow("d", now=0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("d", now=1.5) and limiter.allow("other", now=0.0)


def bypass(north_m: float, first: int = 19, last: int = 31, n: int = 61) -> list[list[float]]:
    """An approved variant: leaves the centre line at fix `first`, runs `north_m` north of it, rejoins at `last`."""
    lon = [sc.LON0 + (sc.LON1 - sc.LON0) * i / (n - 1) for i in (first, first + 1, last - 1, last)]
    lat = sc.LAT + north_m / sc.M_PER_DEG_LAT
    return [[lon[0], sc.LAT], [lon[1], lat], [lon[2], lat], [lon[3], sc.LAT]]


def test_route_with_variants_through_the_api_map_and_console(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    """A MultiLineString route (centre line + a bypass 1 km north) posted to the API is stored with its variant,
    read back through `/tracking/map` (line and corridor) by the API and by the console's session, and a trip
    driving the bypass raises no deviation."""
    client, tok = api
    doc = geojson(variants=[bypass(1000.0)])
    r = client.post("/tracking/routes", json=doc, headers=tok["off"])
    assert r.status_code == 200 and r.json() == {"routes": 1, "zones": 2}, r.text
    layers = client.get("/tracking/map", headers=tok["off"]).json()
    (route,) = [f for f in layers["features"] if f["properties"].get("route_id") == "R1"]
    assert route["geometry"] == doc["features"][0]["geometry"]  # centre line first, then the variant, exactly
    (corridor,) = [f for f in layers["features"] if f["properties"].get("corridor_of") == "R1"]
    area = shape(corridor["geometry"])
    assert area.contains(Point(*bypass(1000.0)[1])) and area.contains(Point(sc.LON0 + 0.1, sc.LAT))
    assert not area.contains(Point(sc.LON0 + 0.1, sc.LAT + 500 / sc.M_PER_DEG_LAT))  # between the two lines

    client.post("/tracking/trips", json=trip_body(), headers=tok["off"])
    fixes = sc.drive(north_m={i: 1000.0 for i in range(20, 31)})  # drives the bypass
    assert client.post("/tracking/ingest/positions", json=positions(fixes), headers=tok["off"]).json()["alerts"] == []
    assert client.get("/tracking/trips/T1", headers=tok["off"]).json()["trip"]["status"] == "closed"

    # the console draws what the map layer hands it: signed in by cookie (no bearer), the page and its script
    client.cookies.set("sc_session", tok["off"]["Authorization"].removeprefix("Bearer "))
    assert client.get("/tracking/console").status_code == 200
    assert client.get("/tracking/map").json() == layers
    script = client.get("/tracking/console/static/tracking.js").text
    assert 'g.type === "MultiLineString") return g.coordinates' in script  # every line drawn as a route path
    # (tests/tracking/test_browser.py counts the drawn route paths in Chromium)


def test_bad_variants_get_every_problem_with_its_path(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, tok = api
    before = client.get("/tracking/map", headers=tok["off"]).json()
    doc = geojson(
        variants=[
            bypass(1000.0),  # fine
            [121.05, 25.0],  # a position, not a line
            [[121.05, 25.0], [121.06, 95.0], [200.0, 25.0]],  # latitude and longitude out of range
            [],  # empty
            [[121.05, 25.0], "x", [121.06, True]],  # not positions
        ]
    )
    doc["features"].append(
        {
            "type": "Feature",
            "properties": {"route_id": "R2", "corridor_m": 50},
            "geometry": {"type": "MultiLineString", "coordinates": []},
        }
    )
    doc["features"].append(
        {
            "type": "Feature",
            "properties": {"route_id": "R3", "corridor_m": 50},
            "geometry": {"type": "MultiLineString", "coordinates": "no"},
        }
    )
    r = client.post("/tracking/routes", json=doc, headers=tok["off"] | {"Accept-Language": "en"})
    assert r.status_code == 422, r.text
    got = [(tuple(p["path"]), p["message"]) for p in r.json()["problems"]]
    c = "geometry.coordinates"
    assert [path for path, _ in got] == [
        ("body", "features[0]", f"{c}[2][0]"),
        ("body", "features[0]", f"{c}[2][1]"),
        ("body", "features[0]", f"{c}[3][1]"),
        ("body", "features[0]", f"{c}[3][2]"),
        ("body", "features[0]", f"{c}[4]"),
        ("body", "features[0]", f"{c}[5][1]"),
        ("body", "features[0]", f"{c}[5][2]"),
        ("body", "features[3]", c),
        ("body", "features[4]", c),
    ], got
    messages = [m.removeprefix("bad LineString coordinates: ") for _, m in got]
    assert messages == [
        "position is not [longitude, latitude] numbers",
        "position is not [longitude, latitude] numbers",
        "position (121.06, 95.0) out of range (GeoJSON is lon, lat)",
        "position (200.0, 25.0) out of range (GeoJSON is lon, lat)",
        "fewer than two positions",
        "position is not [longitude, latitude] numbers",
        "position is not [longitude, latitude] numbers",
        "a MultiLineString needs at least one line",
        "coordinates is not a list",
    ]
    assert client.get("/tracking/map", headers=tok["off"]).json() == before  # nothing stored


def test_console_pages_and_vehicles(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, tok = api
    client.post("/tracking/trips", json=trip_body(vehicle="ABC-123"), headers=tok["off"])
    client.post("/tracking/ingest/positions", json=positions(sc.drive()[:10]), headers=tok["off"])
    (v,) = client.get("/tracking/vehicles", headers=tok["off"]).json()
    assert (v["trip_id"], v["vehicle"], v["status"]) == ("T1", "ABC-123", "open")
    assert client.get("/tracking/vehicles", headers=tok["car2"]).json() == []
    assert client.get("/tracking/console", follow_redirects=False).status_code == 303  # sign in first
    client.cookies.set("sc_session", tok["off"]["Authorization"].removeprefix("Bearer "))
    page = client.get("/tracking/console")
    assert page.status_code == 200 and "/tracking/console/static/tracking.js" in page.text and "<svg" in page.text
    assert 'href="/tracking/console"' in page.text  # in the console menu
    script = client.get("/tracking/console/static/tracking.js")
    assert script.status_code == 200 and "/tracking/alerts/stream" in script.text
    assert client.get("/tracking/console/static/..%2Fservice.py").status_code == 404
    trip = client.get('/tracking/console/trips/T1"<x>')
    assert trip.status_code == 200
    assert "<x>" not in trip.text and "T1&#34;&lt;x&gt;" in trip.text

    # in Traditional Chinese: the pages, the words handed to the script, alert reasons and OsmAnd problems
    zh = client.get("/tracking/console?lang=zh-Hant").text
    words = json.loads(re.search(r'id="tracking-strings">(.*?)</script>', zh).group(1))  # type: ignore[union-attr]
    assert "保稅運輸監控" in zh and "貨物監控" in zh and words["types"]["deviation"] == "偏離路線"
    assert leftover_english(zh) == []
    zh_trip = client.get("/tracking/console/trips/T1").text  # the language is remembered (cookie)
    assert "運送 T1 的軌跡" in zh_trip and "警示紀錄" in zh_trip and leftover_english(zh_trip) == []
    client.post(
        "/tracking/ingest/positions",
        json=positions(sc.drive(north_m={i: 1500.0 for i in range(10, 20)})[10:16]),
        headers=tok["off"],
    )
    (alert,) = client.get("/tracking/alerts?lang=zh-Hant", headers=tok["off"]).json()
    assert "outside the 100 m corridor" in alert["reason"] and "走廊" in alert["localized"]["reason"]
    assert client.get("/tracking/alerts", headers=tok["off"]).json()[0]["localized"] is None
    bad = client.post("/tracking/ingest/osmand?lat=25&lon=121", headers=tok["off"] | {"Accept-Language": "zh-TW"})
    assert (
        bad.status_code == 422 and bad.json()["problems"][0]["message"] == "osmand 裝置訊息:請求沒有 id 也沒有 deviceid"
    )


def test_eseal_open_without_gps_fix_still_alerts(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, tok = api
    client.post("/tracking/trips", json=trip_body(seal_id="1000821"), headers=tok["off"])
    client.post("/tracking/ingest/positions", json=positions(sc.drive()[:20]), headers=tok["off"])
    when = sc.T0 + timedelta(minutes=11)
    msg = f"##S,eSeal,1000821,256,3.0.6,Normal,35,{when:%Y-%m-%d},{when:%H:%M:%S},0,V,0.000000N 0.000000E,0,0,Open,0.71,0:0:3:0,3.8,-73,E##"
    frame = decode("eseal", msg.encode())
    stats = service.ingest(service.readings_from_frame(frame))
    assert stats.flagged == {"no_fix": 1}
    assert [(a["type"], a["condition"]) for a in stats.alerts] == [("seal", "seal:open")]
    lat, lon = stats.alerts[0]["latitude"], stats.alerts[0]["longitude"]
    assert (lat, lon) == (pytest.approx(sc.LAT), pytest.approx(sc.drive()[19].longitude))
    service.reset_state()  # the rebuilt monitor remembers the open seal: no second alert, and "closed" clears it
    nxt = sc.drive()[20]
    assert service.ingest([service.Reading("DEV1", nxt.time, nxt.latitude, nxt.longitude, seal=None)]).alerts == []
    later = sc.drive()[21]
    cleared = service.ingest([service.Reading("DEV1", later.time, later.latitude, later.longitude, seal="closed")])
    assert [a["action"] for a in cleared.alerts] == ["clear"]
    (row,) = client.get("/tracking/alerts?trip_id=T1", headers=tok["off"]).json()
    assert row["status"] == "cleared" and row["end"] is not None


def test_tick_command_raises_signal_lost_for_silent_trips(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    from typer.testing import CliRunner

    from tests.tracking.test_cli import app

    client, tok = api
    client.post("/tracking/trips", json=trip_body(), headers=tok["off"])
    client.post("/tracking/ingest/positions", json=positions(sc.drive()[:20]), headers=tok["off"])
    result = CliRunner().invoke(app, ["tracking", "tick"])  # now is months after the recorded trip
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["type"] for line in result.output.splitlines()) == ["overdue", "signal_lost"]
    assert CliRunner().invoke(app, ["tracking", "tick"]).output == ""  # deduplicated
