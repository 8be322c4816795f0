"""The command-line contract: `smartcustoms tracking replay` on files written by the test."""

from __future__ import annotations

import contextlib
import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smartcustoms.tracking import cli as tracking_cli
from smartcustoms.tracking.errors import TrackingError
from smartcustoms.tracking.files import parse_routes
from tests.tracking import scenario as sc

# `smartcustoms` mounts the slice's Typer app as `tracking` (platform/slices, tested there); mounted the same
# way here, so the tracking tests do not import every slice's commands (lightgbm, scikit-learn: 2.4 s).
app = typer.Typer()
app.add_typer(tracking_cli.app, name="tracking")


@app.callback()
def _root() -> None:
    """smartcustoms"""


runner = CliRunner()


def write_inputs(tmp: Path, fixes_by_trip: dict[str, list], seal: bool = True) -> tuple[Path, Path, Path]:
    routes = tmp / "routes.geojson"
    r = sc.route()
    features = [
        {
            "type": "Feature",
            "properties": {"route_id": "R1", "corridor_m": 100},
            "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in r.coords]},
        }
    ]
    for zid, z in sc.zones().items():
        features.append(
            {
                "type": "Feature",
                "properties": {"zone_id": zid},
                "geometry": {"type": "Polygon", "coordinates": [list(map(list, z.polygon.exterior.coords))]},
            }
        )
    routes.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    trips = tmp / "trips.csv"
    with trips.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trip_id", "route_id", "origin_zone", "destination_zone", "departure", "deadline"])
        for tid in fixes_by_trip:
            w.writerow(
                [
                    tid,
                    "R1",
                    "FTZ-A",
                    "PORT-B",
                    sc.T0.isoformat().replace("+00:00", "Z"),
                    (sc.T0 + timedelta(hours=1)).isoformat(),
                ]
            )
    positions = tmp / "positions.csv"
    with positions.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trip_id", "timestamp", "latitude", "longitude", *(["seal"] if seal else [])])
        for tid, fixes in fixes_by_trip.items():
            for x in fixes:
                w.writerow(
                    [
                        tid,
                        x.time.isoformat().replace("+00:00", "Z"),
                        x.latitude,
                        x.longitude,
                        *([x.seal or ""] if seal else []),
                    ]
                )
    return routes, trips, positions


def invoke(routes: Path, trips: Path, positions: Path, out: Path) -> object:
    return runner.invoke(
        app,
        [
            "tracking",
            "replay",
            "--routes",
            str(routes),
            "--trips",
            str(trips),
            "--positions",
            str(positions),
            "--out",
            str(out),
        ],
    )


def test_replay_contract(tmp_path: Path) -> None:
    fixes = {
        "clean": sc.drive(),
        "detour": sc.drive(north_m={i: 1500.0 for i in range(20, 30)}),
        "seal": sc.drive(seal={i: "open" for i in range(30, 35)}),
        "gap": sc.drive(skip=set(range(10, 40))),
    }
    out = tmp_path / "alerts.jsonl"
    result = invoke(*write_inputs(tmp_path, fixes), out)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    got = sorted((a["trip_id"], a["type"]) for a in lines)
    assert got == [("detour", "deviation"), ("gap", "signal_lost"), ("seal", "seal")]
    for a in lines:
        assert {"trip_id", "type", "start", "end", "latitude", "longitude", "reason"} <= set(a)
        assert a["start"].endswith("Z")


def test_replay_without_seal_column(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    result = invoke(*write_inputs(tmp_path, {"t": sc.drive()}, seal=False), out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == ""


@pytest.mark.parametrize(
    ("target", "bad", "expected"),
    [
        ("trips", "T9,R1,FTZ-A,PORT-B,yesterday,2026-03-01T09:00:00Z\n", "trips.csv:2: column 'departure'"),
        ("trips", "T9,NOPE,FTZ-A,PORT-B,2026-03-01T08:00:00Z,2026-03-01T09:00:00Z\n", "trips.csv:2: column 'route_id'"),
        ("positions", "t,2026-03-01T08:00:00Z,95.0,121.0,closed\n", "positions.csv:2: column 'latitude'"),
        ("positions", "t,2026-03-01T08:00:00Z,25.0,121.0,ajar\n", "positions.csv:2: column 'seal'"),
        ("routes", "{not json", "routes.geojson:1: column 'char 2'"),
    ],
)
def test_bad_input_names_file_line_column(tmp_path: Path, target: str, bad: str, expected: str) -> None:
    routes, trips, positions = write_inputs(tmp_path, {"t": sc.drive()[:3]})
    path = {"routes": routes, "trips": trips, "positions": positions}[target]
    if target == "routes":
        path.write_text(bad)
    else:
        header = path.read_text().splitlines()[0]
        path.write_text(header + "\n" + bad)
    result = invoke(routes, trips, positions, tmp_path / "a.jsonl")
    assert result.exit_code == 2
    assert expected in result.output


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    routes, trips, positions = write_inputs(tmp_path, {"t": sc.drive()[:3]})
    positions.write_text("trip_id,timestamp,lat,lon\n")
    result = invoke(routes, trips, positions, tmp_path / "a.jsonl")
    assert result.exit_code == 2 and "missing column(s) latitude, longitude" in result.output
    result = invoke(routes, tmp_path / "nope.csv", positions, tmp_path / "a.jsonl")
    assert result.exit_code == 2 and "nope.csv" in result.output and "not found" in result.output


def test_decode_and_samples_commands() -> None:
    result = runner.invoke(app, ["tracking", "decode", "gt06", "78780D01012345678901234500018CDD0D0A"])
    assert result.exit_code == 0
    assert json.loads(result.output)["ack"] == "787805010001d9dc0d0a"
    result = runner.invoke(app, ["tracking", "decode", "gt06", "7878ff"])
    assert result.exit_code == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_random_positions_file_fails_cleanly(tmp_path: Path, text: str) -> None:
    routes, trips, positions = write_inputs(tmp_path, {"t": sc.drive()[:3]})
    positions.write_text("trip_id,timestamp,latitude,longitude,seal\n" + text, encoding="utf-8")
    result = invoke(routes, trips, positions, tmp_path / "a.jsonl")
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["type", "features", "geometry", "properties", "coordinates", "route_id", "corridor_m", "zone_id"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None)
@given(doc=st.fixed_dictionaries({"type": st.just("FeatureCollection"), "features": st.lists(_json, max_size=4)}))
def test_random_geojson_raises_only_tracking_error(doc: dict[str, object]) -> None:
    with contextlib.suppress(TrackingError):
        parse_routes(doc)


_coords = st.recursive(
    st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=3),
    lambda i: st.lists(i, max_size=5),
    max_leaves=40,
)
_feature = st.fixed_dictionaries(
    {
        "type": st.just("Feature"),
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "route_id": _json,
                "corridor_m": st.floats(allow_nan=True) | st.integers() | st.text(max_size=3),
                "zone_id": _json,
            },
        ),
        "geometry": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["LineString", "MultiLineString", "Polygon", "MultiPolygon", "Point", "x"]),
                "coordinates": _coords,
            }
        ),
    }
)


@settings(max_examples=120, deadline=None)
@given(features=st.lists(_feature, max_size=3))
def test_random_features_raise_only_tracking_error(features: list[dict[str, object]]) -> None:
    with contextlib.suppress(TrackingError):
        parse_routes({"type": "FeatureCollection", "features": features})


def test_multilinestring_route_is_a_centre_line_with_approved_variants(tmp_path: Path) -> None:
    north = 600 / sc.M_PER_DEG_LAT
    drive = sc.drive(north_m={i: 600.0 for i in range(18, 27)})
    routes, trips, positions = write_inputs(tmp_path, {"T1": drive})
    doc = json.loads(routes.read_text())
    line = doc["features"][0]["geometry"]["coordinates"]
    variant = [[121.05, sc.LAT], [121.06, sc.LAT + north], [121.09, sc.LAT + north], [121.1, sc.LAT]]
    doc["features"][0]["geometry"] = {"type": "MultiLineString", "coordinates": [line, variant]}
    routes.write_text(json.dumps(doc))
    out = tmp_path / "alerts.jsonl"
    result = invoke(routes, trips, positions, out)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert out.read_text() == ""  # on the approved variant: no deviation
    doc["features"][0]["geometry"] = {"type": "LineString", "coordinates": line}
    routes.write_text(json.dumps(doc))
    assert invoke(routes, trips, positions, out).exit_code == 0  # type: ignore[attr-defined]
    assert [json.loads(x)["type"] for x in out.read_text().splitlines()] == ["deviation"]
