"""`smartcustoms tracking ...`: offline replay of recorded trips, and decoding of device payloads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import typer

from smartcustoms.tracking.errors import DecodeError, TrackingError
from smartcustoms.tracking.files import (
    format_problem,
    parse_time,
    read_positions,
    read_routes,
    read_trips,
    write_alerts,
)
from smartcustoms.tracking.model import DetectorConfig, replay
from smartcustoms.tracking.protocols import DECODERS, DEFAULT_PORTS, survey
from smartcustoms.tracking.protocols import decode as decode_payload

app = typer.Typer(no_args_is_help=True, help="Free-trade-zone cargo monitoring: replay trips, decode device payloads.")


def _fail(exc: TrackingError) -> None:
    for p in exc.problems:
        typer.echo(f"error [{p.code}] {format_problem(p)}", err=True)
    raise typer.Exit(2)


@app.command("replay")
def replay_cmd(
    routes: Path = typer.Option(
        ..., "--routes", help="GeoJSON FeatureCollection: routes (LineString) and zones (Polygon)"
    ),
    trips: Path = typer.Option(
        ..., "--trips", help="CSV trip_id,route_id,origin_zone,destination_zone,departure,deadline"
    ),
    positions: Path = typer.Option(..., "--positions", help="CSV trip_id,timestamp,latitude,longitude[,seal]"),
    out: Path = typer.Option(..., "--out", help="Alerts as JSON lines"),
    until: str | None = typer.Option(None, help="Replay clock end (ISO 8601); default: the newest position"),
    stop_min: float | None = typer.Option(None, help="Unexpected stop after this many minutes (default 10)"),
    signal_lost_min: float | None = typer.Option(
        None,
        help="Signal lost after this many minutes (default: 10, or 3x the trip's median reporting interval if larger)",
    ),
    deviation_s: float | None = typer.Option(None, help="Seconds outside the corridor before a deviation (default 60)"),
    deviation_margin_m: float | None = typer.Option(
        None, help="Metres beyond the corridor edge that count as outside (default 50)"
    ),
) -> None:
    """Run the live detectors offline over recorded positions; one alert per JSON line."""
    try:
        route_map, zones = read_routes(routes)
        plans = read_trips(trips, route_map, zones)
        fixes, skipped = read_positions(positions, {p.trip_id for p in plans})
        end = None
        if until is not None:
            try:
                end = parse_time(until)
            except ValueError:
                typer.echo(f"error [bad-time] --until {until!r} is not an ISO 8601 time", err=True)
                raise typer.Exit(2) from None
    except TrackingError as exc:
        _fail(exc)
        return
    config = DetectorConfig()
    overrides: dict[str, float] = {}
    if stop_min is not None:
        overrides["stop_min_s"] = stop_min * 60
    if signal_lost_min is not None:
        overrides["signal_lost_s"] = signal_lost_min * 60
    if deviation_s is not None:
        overrides["deviation_min_s"] = deviation_s
    if deviation_margin_m is not None:
        overrides["deviation_margin_m"] = deviation_margin_m
    config = replace(config, **overrides)  # type: ignore[arg-type]
    alerts = replay(plans, route_map, zones, fixes, config, end=end, adaptive_signal=signal_lost_min is None)
    try:
        write_alerts(out, [a.as_record() for a in alerts])
    except OSError as exc:
        typer.echo(f"error [unwritable] {out}: {exc}", err=True)
        raise typer.Exit(2) from None
    counts: dict[str, int] = {}
    for a in alerts:
        counts[a.type] = counts.get(a.type, 0) + 1
    note = f", {skipped['unknown_trip']} positions of unknown trips skipped" if skipped["unknown_trip"] else ""
    typer.echo(f"{len(plans)} trips, {len(fixes)} positions, {len(alerts)} alerts {counts}{note} -> {out}", err=True)


@app.command("samples")
def samples_cmd(
    directory: Path = typer.Argument(..., help="Folder of Traccar recorded payloads (*_samples.tsv)"),
) -> None:
    """Decode every recorded payload; per protocol: positions/events, recognised other frames, failures."""
    rows = survey(directory)
    if not rows:
        typer.echo(f"error: no *_samples.tsv files in {directory}", err=True)
        raise typer.Exit(2)
    for row in rows:
        typer.echo(json.dumps(row.as_dict()))


@app.command("decode")
def decode_cmd(
    protocol: str = typer.Argument(..., help=f"one of {', '.join(DECODERS)}"),
    payload: str = typer.Argument(..., help="hex for binary protocols, text for osmand/eseal"),
) -> None:
    """Decode one payload and print the frame (positions, seal events, acknowledgement as hex)."""
    data = payload.encode() if protocol in ("osmand", "eseal") else bytes.fromhex(payload)
    try:
        frame = decode_payload(protocol, data)
    except DecodeError as exc:
        typer.echo(f"error [{exc.reason}] {exc}", err=True)
        raise typer.Exit(2) from None
    doc = {
        "protocol": frame.protocol,
        "kind": frame.kind,
        "message_type": frame.message_type,
        "device_id": frame.device_id,
        "positions": [
            {
                "time": p.time.isoformat(),
                "valid": p.valid,
                "latitude": p.latitude,
                "longitude": p.longitude,
                "speed_kmh": p.speed_kmh,
            }
            for p in frame.positions
        ],
        "seal_events": [
            {"event": e.event, "state": e.state, "battery_v": e.battery_v, "low_battery": e.low_battery}
            for e in frame.events
        ],
        "ack": frame.ack.hex() if frame.ack else None,
    }
    json.dump(doc, sys.stdout)
    sys.stdout.write("\n")


@app.command("listen")
def listen_cmd(
    host: str = typer.Option("0.0.0.0", help="Address to bind"),
    gt06_port: int = typer.Option(DEFAULT_PORTS["gt06"], help="GT06 port (0 = off)"),
    jt808_port: int = typer.Option(DEFAULT_PORTS["jt808"], help="JT/T 808 port (0 = off)"),
    osmand_port: int = typer.Option(DEFAULT_PORTS["osmand"], help="OsmAnd HTTP port (0 = off)"),
    eseal_port: int = typer.Option(DEFAULT_PORTS["eseal"], help="E-seal port (0 = off)"),
    teltonika_port: int = typer.Option(DEFAULT_PORTS["teltonika"], help="Teltonika port (0 = off)"),
    tick_s: float = typer.Option(30.0, help="Seconds between clock checks (signal lost, deadline passed)"),
) -> None:
    """Receive device messages over TCP, store them with their trips and raise alerts (runs until Ctrl-C).

    With SMARTCUSTOMS_TRACKING_NATS_URL set, readings go to NATS JetStream instead (devices are acked once
    the stream has them) and `smartcustoms tracking detect` processes store and evaluate them."""
    from smartcustoms.tracking import service, stream
    from smartcustoms.tracking.listener import DeviceListener

    ports = {
        p: n
        for p, n in (
            ("gt06", gt06_port),
            ("jt808", jt808_port),
            ("osmand", osmand_port),
            ("eseal", eseal_port),
            ("teltonika", teltonika_port),
        )
        if n
    }

    async def main() -> None:
        events = stream.get_stream()
        listener = DeviceListener(ports, events.publish_readings, host=host)
        bound = await listener.start()
        typer.echo(f"listening on {host}: {bound}", err=True)
        try:
            while True:
                await asyncio.sleep(tick_s)
                if isinstance(events, stream.InProcessStream):  # else the detector processes tick
                    await asyncio.to_thread(service.tick)
                st = listener.stats
                typer.echo(f"frames {dict(st.frames)} errors {dict(st.errors)} ingest {dict(st.ingest)}", err=True)
        finally:
            await listener.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@app.command("detect")
def detect_cmd(
    nats_url: str = typer.Option("", help="NATS server (default: SMARTCUSTOMS_TRACKING_NATS_URL)"),
    durable: str = typer.Option("tracking-detectors", help="Durable consumer name prefix (one consumer per shard)"),
    tick_s: float = typer.Option(30.0, help="Seconds between clock checks (signal lost, deadline passed)"),
    shard: list[int] = typer.Option([], help="Shard(s) this process evaluates (repeat; default: all)"),
    shards: int = typer.Option(0, help="Number of shards (default SMARTCUSTOMS_TRACKING_NATS_SHARDS, else 1)"),
    batch: int = typer.Option(500, help="Stream messages fetched per transaction"),
) -> None:
    """Store and evaluate device readings from NATS JetStream (runs until Ctrl-C or SIGTERM).

    Readings are partitioned by trip into N shards; run one detector process per shard
    (`--shard K --shards N`), or one for all shards. Never two processes on one shard: each would see only
    part of a trip's readings. Listeners must use the same N (SMARTCUSTOMS_TRACKING_NATS_SHARDS)."""
    import signal
    import threading

    from smartcustoms.tracking import service, stream

    events = stream.get_stream(nats_url or None, shards=shards or None)
    if not isinstance(events, stream.NatsStream):
        typer.echo("detect needs NATS: --nats-url or SMARTCUSTOMS_TRACKING_NATS_URL", err=True)
        raise typer.Exit(2)
    if any(not 0 <= k < events.shards for k in shard):
        typer.echo(f"--shard must be within 0..{events.shards - 1}", err=True)
        raise typer.Exit(2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ticker() -> None:
        while not stop.wait(tick_s):
            service.tick()

    threading.Thread(target=ticker, daemon=True).start()
    worker = threading.Thread(
        target=events.consume_readings,
        args=(service.ingest, stop),
        kwargs={"durable": durable, "batch": batch, "shards": shard or None},
        daemon=True,
    )
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:  # finish the batch in hand (it is acked after its commit), then disconnect
        stop.set()
        worker.join(10)
        events.close()
        typer.echo(json.dumps({"shards": shard or list(range(events.shards)), "trips": service.evaluated_trips()}))


@app.command("tick")
def tick_cmd(
    every: float = typer.Option(0.0, help="Repeat every N seconds (0 = once)"),
) -> None:
    """Clock-driven checks for open trips (signal lost, deadline passed) when no listener runs them."""
    import time

    from smartcustoms.tracking import service

    while True:
        changes = service.tick()
        for record in changes:
            typer.echo(json.dumps(record))
        if every <= 0:
            return
        time.sleep(every)
