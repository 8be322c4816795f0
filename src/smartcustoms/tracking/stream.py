"""The event stream between device listeners, detectors and consoles.

Subjects: `tracking.readings.<k>` (decoded device readings, written by listeners, partitioned into N shards
by trip: k = crc32(trip, or the device when it has no active trip) mod N) and `tracking.alerts` (alert
changes, written by detectors, read by every console's SSE stream). By default both stay in the
process: a listener's batch goes straight to `service.ingest` and alerts to the in-process bus. With
`SMARTCUSTOMS_TRACKING_NATS_URL` set they go through NATS JetStream instead, so listeners, detectors and
consoles run as separate processes:

- a listener publishes each batch and waits for JetStream's acknowledgement (the batch is on disk in the
  stream) before it acknowledges the devices; a message id per batch lets JetStream drop a re-sent batch;
- a detector reads one shard (or all) through a durable pull consumer per shard, stores and evaluates a
  fetched batch in one transaction, then acknowledges the messages. One detector per shard sees every
  reading of its trips, in order (several detectors on one consumer would each see part of a trip). A detector that dies between commit and ack gets the
  messages again (after `ack_wait`); readings already stored are skipped, so nothing is lost or doubled;
- alert changes are published on `tracking.alerts`; each console process subscribes and fans them out to
  its own SSE clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import zlib
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import orjson

log = logging.getLogger("smartcustoms.tracking.stream")
ENV_URL = "SMARTCUSTOMS_TRACKING_NATS_URL"
ENV_PREFIX = "SMARTCUSTOMS_TRACKING_NATS_PREFIX"  # subjects `<prefix>.readings.<k>|alerts`, stream `<PREFIX>`
ENV_SHARDS = "SMARTCUSTOMS_TRACKING_NATS_SHARDS"  # readings partitions; the same value for listeners and detectors
STREAM = "TRACKING"
READINGS = "tracking.readings"
ALERTS = "tracking.alerts"
DURABLE = "tracking-detectors"
T = TypeVar("T")


def shard_of(key: str, shards: int) -> int:
    """Stable across processes and restarts (Python's own `hash` of a str is salted per process)."""
    return zlib.crc32(key.encode()) % shards if shards > 1 else 0


def _shards_from_env() -> int:
    return max(1, int(os.environ.get(ENV_SHARDS) or "1"))


class EventStream(Protocol):
    def publish_readings(self, readings: list[Any]) -> Any: ...

    def publish_alert(self, event: dict[str, Any]) -> None: ...


def reading_to_dict(r: Any) -> dict[str, Any]:
    return {
        "device_id": r.device_id,
        "time": r.time.isoformat(),
        "latitude": r.latitude,
        "longitude": r.longitude,
        "speed_kmh": r.speed_kmh,
        "seal": r.seal,
        "low_battery": r.low_battery,
        "source": r.source,
    }


def readings_from_dicts(ds: list[dict[str, Any]]) -> list[Any]:
    """A stream message's readings (one import for the batch: an import statement per reading, even of a
    loaded module, was a tenth of a JetStream detector's time)."""
    from smartcustoms.tracking.service import Reading

    parse = datetime.fromisoformat
    return [
        Reading(
            str(d["device_id"]),
            parse(d["time"]),
            d.get("latitude"),
            d.get("longitude"),
            d.get("speed_kmh"),
            d.get("seal"),
            bool(d.get("low_battery")),
            str(d.get("source") or "stream"),
        )
        for d in ds
    ]


class InProcessStream:
    """Default: readings go straight to the detectors of this process, alerts to its own bus."""

    def publish_readings(self, readings: list[Any]) -> Any:
        from smartcustoms.tracking import service

        return service.ingest(readings)

    def publish_alert(self, event: dict[str, Any]) -> None:
        from smartcustoms.tracking import service

        service.BUS.fan_out(event)


class NatsStream:
    """NATS JetStream, driven from synchronous code: the client runs on its own event loop thread."""

    def __init__(
        self,
        url: str,
        prefix: str = "tracking",
        stream: str = STREAM,
        ack_wait_s: float | None = None,
        shards: int | None = None,
        partition: Callable[[set[str]], dict[str, str]] | None = None,
    ):
        self.url = url
        self.readings_subject = f"{prefix}.readings"
        self.shards = shards or _shards_from_env()
        self._partition = partition
        self.alerts_subject = f"{prefix}.alerts"
        self.stream = stream
        self.ack_wait_s = ack_wait_s or float(os.environ.get("SMARTCUSTOMS_TRACKING_NATS_ACK_WAIT_S", "30"))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tracking-nats", daemon=True)
        self._thread.start()
        self._alert_sub: Any = None
        self.redelivered = 0  # readings that came back after a detector died before its ack
        self._call(self._connect())

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig

        self.nc = await nats.connect(self.url, name="smartcustoms-tracking", max_reconnect_attempts=-1)
        self.js = self.nc.jetstream()
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.readings_subject}.*", self.alerts_subject],
            storage=StorageType.FILE,
            duplicate_window=120.0,
            max_age=7 * 24 * 3600.0,
        )
        try:
            await self.js.stream_info(self.stream)
            await self.js.update_stream(config)
        except Exception:  # not there yet
            await self.js.add_stream(config)

    def close(self) -> None:
        async def _close() -> None:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:
                await self.nc.close()

        try:
            self._call(_close(), timeout=10)
        except Exception:  # a server gone or a slow drain must not hang the shutdown
            log.warning("NATS connection did not close cleanly", exc_info=True)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    # ---- listeners -----------------------------------------------------------------------------
    def publish_readings(self, readings: list[Any]) -> int:
        """Publish one batch, one message per shard it touches; returns when JetStream has stored them all
        (then the devices may be acked)."""
        if not readings:
            return 0
        groups: dict[int, list[Any]] = {}
        if self.shards == 1:
            groups[0] = readings
        else:
            if self._partition is None:
                from smartcustoms.tracking.service import partition_keys

                self._partition = partition_keys
            keys = self._partition({r.device_id for r in readings})
            for r in readings:
                groups.setdefault(shard_of(keys.get(r.device_id, r.device_id), self.shards), []).append(r)

        async def publish_all() -> None:
            sends = []
            for k, group in groups.items():
                payload = orjson.dumps([reading_to_dict(r) for r in group])
                msg_id = hashlib.sha256(payload).hexdigest()
                sends.append(self.js.publish(f"{self.readings_subject}.{k}", payload, headers={"Nats-Msg-Id": msg_id}))
            await asyncio.gather(*sends)

        self._call(publish_all())
        return len(readings)

    # ---- detectors -------------------------------------------------------------------------------
    def consume_readings(
        self,
        handle: Callable[[list[Any]], Any],
        stop: threading.Event,
        durable: str = DURABLE,
        batch: int = 500,
        shards: Iterable[int] | None = None,
    ) -> int:
        """Run a durable pull consumer per shard (default: all shards) until `stop` is set: fetch,
        `handle(readings)` (store + detect in one transaction), then ack. Readings of redelivered messages
        that are already stored are skipped. If `handle` raises, nothing is acked and the loop ends (the
        messages come back after ack_wait). Run one process per shard, or one for all: never two on a shard
        (each would see part of a trip's readings)."""
        wanted = list(range(self.shards)) if shards is None else list(shards)
        if any(not 0 <= k < self.shards for k in wanted):
            raise ValueError(f"shards must be within 0..{self.shards - 1}")

        async def run_all() -> int:
            tasks = [asyncio.ensure_future(self._consume(handle, stop, durable, batch, k)) for k in wanted]
            try:
                return sum(await asyncio.gather(*tasks))
            except BaseException:  # one shard's handler failed: stop the others too, nothing more is acked
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        return self._call(run_all(), timeout=None)  # type: ignore[arg-type]

    async def _consume(
        self, handle: Callable[[list[Any]], Any], stop: threading.Event, durable: str, batch: int, shard: int
    ) -> int:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig

        from smartcustoms.tracking import service

        sub = await self.js.pull_subscribe(
            f"{self.readings_subject}.{shard}",
            durable=f"{durable}-{shard}",
            stream=self.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s, max_ack_pending=20_000),
        )
        done = 0
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch, timeout=0.5)
            except (NatsTimeout, TimeoutError):
                continue
            readings: list[Any] = []
            replayed: list[Any] = []
            for m in msgs:
                decoded = readings_from_dicts(orjson.loads(m.data))
                (replayed if m.metadata.num_delivered > 1 else readings).extend(decoded)
            if replayed:
                self.redelivered += len(replayed)
                readings += await asyncio.to_thread(service.not_yet_stored, replayed)
            await asyncio.to_thread(handle, readings)
            for m in msgs:
                await m.ack()
            done += len(msgs)
        with contextlib.suppress(Exception):  # the connection may already be draining at shutdown
            await sub.unsubscribe()
        return done

    # ---- alerts ------------------------------------------------------------------------------------
    def publish_alert(self, event: dict[str, Any]) -> None:
        payload = orjson.dumps(event, default=str)
        asyncio.run_coroutine_threadsafe(self.js.publish(self.alerts_subject, payload), self.loop)

    def subscribe_alerts(self, deliver: Callable[[dict[str, Any]], None]) -> None:
        """Every alert change published by any detector process is handed to `deliver` (core NATS
        subscription on the subject: live fan-out to consoles; the stream keeps the history)."""

        async def _sub() -> None:
            async def cb(msg: Any) -> None:
                try:
                    deliver(orjson.loads(msg.data))
                except Exception:
                    log.exception("alert delivery failed")

            self._alert_sub = await self.nc.subscribe(self.alerts_subject, cb=cb)

        if self._alert_sub is None:
            self._call(_sub())


_LOCK = threading.Lock()
_STREAMS: dict[str, NatsStream] = {}
_IN_PROCESS = InProcessStream()


def nats_url() -> str | None:
    return os.environ.get(ENV_URL) or None


def get_stream(url: str | None = None, shards: int | None = None) -> InProcessStream | NatsStream:
    """The configured stream: NATS JetStream when a URL is given or configured, else in-process."""
    url = url or nats_url()
    if not url:
        return _IN_PROCESS
    with _LOCK:
        prefix = os.environ.get(ENV_PREFIX) or "tracking"
        shards = shards or _shards_from_env()
        key = f"{url} {prefix} {shards}"
        stream = _STREAMS.get(key)
        if stream is None:
            stream = _STREAMS[key] = NatsStream(
                url, prefix=prefix, stream=prefix.upper().replace(".", "_"), shards=shards
            )
        return stream


def reset_streams() -> None:
    """Close NATS connections (tests)."""
    with _LOCK:
        for stream in _STREAMS.values():
            try:
                stream.close()
            except Exception:
                log.exception("closing stream")
        _STREAMS.clear()
