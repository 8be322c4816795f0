"""TCP listeners for the device protocols (asyncio), on Traccar's default ports unless configured.

Each connection keeps its own buffer and session (GT06 learns its IMEI from the login frame), cuts
the stream into frames, decodes them, writes the acknowledgement the protocol requires, and hands the
readings to a sink (by default `service.ingest`, run in a worker thread); acknowledgements go out only
after the sink has written the readings (a crash before that leaves the device to send them again). A frame that cannot be
decoded is logged and counted; it never takes the listener down. A connection that sends more than
`max_buffer` bytes without a complete frame is closed (garbage or a flood).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols import eseal, gt06, jt808, osmand, teltonika
from smartcustoms.tracking.protocols.base import Frame

log = logging.getLogger("smartcustoms.tracking.listener")
Sink = Callable[[list[Any]], Any]


@dataclass
class ListenerStats:
    """Counters per protocol: what arrived, what decoded, what failed and why."""

    frames: Counter[str] = field(default_factory=Counter)
    positions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acks: Counter[str] = field(default_factory=Counter)
    dropped_connections: Counter[str] = field(default_factory=Counter)
    ingest: Counter[str] = field(default_factory=Counter)  # unknown devices, rate-limited floods


def _split_eseal(buffer: bytes) -> tuple[list[bytes], bytes]:
    frames: list[bytes] = []
    while True:
        end = buffer.find(b"E##")
        if end < 0:
            return frames, buffer
        frames.append(buffer[: end + 3].strip())
        buffer = buffer[end + 3 :]


SPLITTERS: dict[str, Callable[[bytes], tuple[list[bytes], bytes]]] = {
    "gt06": gt06.split_frames,
    "jt808": jt808.split_frames,
    "eseal": _split_eseal,
    "teltonika": teltonika.split_frames,
}


def _readings_from_frame() -> Callable[..., list[Any]]:
    global _READINGS_FROM_FRAME
    if _READINGS_FROM_FRAME is None:  # imported late: the service imports the database layer
        from smartcustoms.tracking.service import readings_from_frame

        _READINGS_FROM_FRAME = readings_from_frame
    return _READINGS_FROM_FRAME


_READINGS_FROM_FRAME: Callable[..., list[Any]] | None = None


class DeviceListener:
    """One asyncio server per protocol; `start()` binds, `close()` stops them."""

    def __init__(self, ports: dict[str, int], sink: Sink, host: str = "0.0.0.0", max_buffer: int = 64 * 1024):
        unknown = set(ports) - {"gt06", "jt808", "eseal", "osmand", "teltonika"}
        if unknown:
            raise ValueError(f"no listener for {sorted(unknown)}")
        self.ports = ports
        self.sink = sink
        self.host = host
        self.max_buffer = max_buffer
        self.stats = ListenerStats()
        self.servers: dict[str, asyncio.Server] = {}
        self.batch_window_s = 0.02
        self.batch_max = 2000
        self.delivered = 0
        self._queue: asyncio.Queue[tuple[list[Any], asyncio.Future[bool]]] = asyncio.Queue()
        self._pump_task: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, int]:
        """Bind every configured port (0 = any free port); returns the bound ports."""
        self._pump_task = asyncio.create_task(self._pump())
        for protocol, port in self.ports.items():
            handler = self._http if protocol == "osmand" else self._binary(protocol)
            self.servers[protocol] = await asyncio.start_server(handler, self.host, port, limit=self.max_buffer)
        return {p: s.sockets[0].getsockname()[1] for p, s in self.servers.items()}

    async def close(self) -> None:
        """Stop accepting, let queued readings reach the sink, then stop the pump."""
        for server in self.servers.values():
            server.close()
        for _ in range(500):
            if self._queue.empty() and self.delivered >= sum(self.stats.positions.values()):
                break
            await asyncio.sleep(0.01)
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task

    def _readings(self, protocol: str, frame: Frame, device_id: str | None) -> list[Any]:
        readings = _readings_from_frame()(frame, device_id)
        self.stats.positions[protocol] += len(readings)
        return readings

    async def _deliver(self, protocol: str, readings: list[Any]) -> bool:
        """Hand readings to the sink and wait until it has written them: the caller acknowledges the
        device only then, so a fix the device was told is received is never lost with the process.
        One pump batches all connections into few transactions (a short window, `batch_window_s`)."""
        if not readings:
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((readings, done))
        return await done

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first, fut = await self._queue.get()
            batch: list[Any] = list(first)
            waiting = [fut]
            deadline = loop.time() + self.batch_window_s
            while len(batch) < self.batch_max:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    more, fut = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                batch += more
                waiting.append(fut)
            ok = False
            try:
                result = await asyncio.to_thread(self.sink, batch)
                ok = True
                for name in ("unknown_device", "rate_limited"):  # IngestStats from service.ingest
                    count = getattr(result, name, 0)
                    if isinstance(count, int) and count:
                        self.stats.ingest[name] += count
            except Exception:  # the store failing must not kill the listener; devices are not acked
                log.exception("sink failed for %d readings", len(batch))
                self.stats.errors["sink"] += 1
            finally:
                self.delivered += len(batch)
                for f in waiting:
                    if not f.done():
                        f.set_result(ok)

    def _binary(self, protocol: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        split = SPLITTERS[protocol]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            buffer = b""
            device_id: str | None = None
            try:
                while True:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    buffer += chunk
                    frames, buffer = split(buffer)
                    batch: list[Any] = []
                    acks: list[bytes] = []
                    for raw in frames:
                        self.stats.frames[protocol] += 1
                        try:
                            if protocol == "gt06":
                                frame = gt06.decode(raw, device_id)
                            elif protocol == "jt808":
                                frame = jt808.decode(raw)
                            elif protocol == "teltonika":
                                frame = teltonika.decode(raw, device_id)
                            else:
                                frame = eseal.decode(raw)
                        except DecodeError as exc:
                            self.stats.errors[f"{protocol}:{exc.reason}"] += 1
                            log.info("%s: undecodable frame %s: %s", protocol, raw[:64].hex(), exc)
                            continue
                        if frame.kind == "login" or (frame.device_id and device_id is None):
                            device_id = frame.device_id
                        if frame.ack:
                            acks.append(frame.ack)
                        batch += self._readings(protocol, frame, device_id)
                    if await self._deliver(protocol, batch) and acks:
                        writer.write(b"".join(acks))  # after the write: an unacked device sends again
                        self.stats.acks[protocol] += len(acks)
                        await writer.drain()
                    if len(buffer) > self.max_buffer:
                        self.stats.dropped_connections[protocol] += 1
                        break
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        return handle

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Minimal HTTP/1.1 for OsmAnd: request line + headers, optional Content-Length body, keep-alive."""
        protocol = "osmand"
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    self.stats.dropped_connections[protocol] += 1
                    break
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and value.strip().isdigit():
                        length = int(value.strip())
                if length > self.max_buffer:
                    self.stats.dropped_connections[protocol] += 1
                    break
                body = await reader.readexactly(length) if length else None
                self.stats.frames[protocol] += 1
                try:
                    frame = osmand.decode(head.decode("latin-1"), body)
                except DecodeError as exc:
                    self.stats.errors[f"{protocol}:{exc.reason}"] += 1
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                if await self._deliver(protocol, self._readings(protocol, frame, None)):
                    writer.write(osmand.ACK)
                    self.stats.acks[protocol] += 1
                else:
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
