"""The event stream between device listeners, detectors and consoles.

Two subjects: `tracking.readings` (decoded device readings, written by listeners) and `tracking.alerts`
(alert changes, written by detectors, read by every console's SSE stream). By default both stay in the
process: a listener's batch goes straight to `service.ingest` and alerts to the in-process bus. With
`SMARTCUSTOMS_TRACKING_NATS_URL` set they go through NATS JetStream instead, so listeners, detectors and
consoles run as separate processes:

- a listener publishes each batch and waits for JetStream's acknowledgement (the batch is on disk in the
  stream) before it acknowledges the devices; a message id per batch lets JetStream drop a re-sent batch;
- a detector reads through a durable pull consumer, stores and evaluates a fetched batch in one
  transaction, then acknowledges the messages. A detector that dies between commit and ack gets the
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
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol, TypeVar

import orjson

log = logging.getLogger("smartcustoms.tracking.stream")
ENV_URL = "SMARTCUSTOMS_TRACKING_NATS_URL"
ENV_PREFIX = "SMARTCUSTOMS_TRACKING_NATS_PREFIX"  # subjects `<prefix>.readings|alerts`, stream `<PREFIX>`
STREAM = "TRACKING"
READINGS = "tracking.readings"
ALERTS = "tracking.alerts"
DURABLE = "tracking-detectors"
T = TypeVar("T")


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


def reading_from_dict(d: dict[str, Any]) -> Any:
    from smartcustoms.tracking.service import Reading

    return Reading(
        str(d["device_id"]),
        datetime.fromisoformat(d["time"]),
        d.get("latitude"),
        d.get("longitude"),
        d.get("speed_kmh"),
        d.get("seal"),
        bool(d.get("low_battery")),
        str(d.get("source") or "stream"),
    )


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

    def __init__(self, url: str, prefix: str = "tracking", stream: str = STREAM, ack_wait_s: float | None = None):
        self.url = url
        self.readings_subject = f"{prefix}.readings"
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
            subjects=[self.readings_subject, self.alerts_subject],
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
        """Publish one batch; returns when JetStream has stored it (then the devices may be acked)."""
        if not readings:
            return 0
        payload = orjson.dumps([reading_to_dict(r) for r in readings])
        msg_id = hashlib.sha256(payload).hexdigest()
        self._call(self.js.publish(self.readings_subject, payload, headers={"Nats-Msg-Id": msg_id}))
        return len(readings)

    # ---- detectors -------------------------------------------------------------------------------
    def consume_readings(
        self,
        handle: Callable[[list[Any]], Any],
        stop: threading.Event,
        durable: str = DURABLE,
        batch: int = 500,
    ) -> int:
        """Run a durable pull consumer until `stop` is set: fetch, `handle(readings)` (store + detect in
        one transaction), then ack. Readings of redelivered messages that are already stored are skipped.
        If `handle` raises, nothing is acked and the loop ends (the messages come back after ack_wait)."""
        return self._call(self._consume(handle, stop, durable, batch), timeout=None)  # type: ignore[arg-type]

    async def _consume(
        self, handle: Callable[[list[Any]], Any], stop: threading.Event, durable: str, batch: int
    ) -> int:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig

        from smartcustoms.tracking import service

        sub = await self.js.pull_subscribe(
            self.readings_subject,
            durable=durable,
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
                decoded = [reading_from_dict(d) for d in orjson.loads(m.data)]
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


def get_stream(url: str | None = None) -> InProcessStream | NatsStream:
    """The configured stream: NATS JetStream when a URL is given or configured, else in-process."""
    url = url or nats_url()
    if not url:
        return _IN_PROCESS
    with _LOCK:
        prefix = os.environ.get(ENV_PREFIX) or "tracking"
        stream = _STREAMS.get(f"{url} {prefix}")
        if stream is None:
            stream = _STREAMS[f"{url} {prefix}"] = NatsStream(
                url, prefix=prefix, stream=prefix.upper().replace(".", "_")
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
