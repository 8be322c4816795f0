"""TCP listeners on ephemeral ports: acks, readings to the sink, garbage counted without a crash."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from smartcustoms.tracking.listener import DeviceListener
from smartcustoms.tracking.protocols import gt06
from tests.tracking import scenario as sc

LOGIN = bytes.fromhex("78780D01012345678901234500018CDD0D0A")
ESEAL = b"##S,eSeal,1000821,256,3.0.6,Normal,34,2017-08-31,08:14:40,15,A,25.708828N 100.372870W,10,0,Open,0.71,0:0:3:0,3.8,-73,E##\r\n"


async def _exchange(port: int, payload: bytes, read: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.readexactly(read), timeout=60) if read else b""
    writer.write_eof()
    # until the listener closes its side: it has then handled everything sent (no sleeping and hoping)
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(reader.read(), timeout=60)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return data


def test_listeners_ack_and_deliver() -> None:
    received: list[Any] = []

    async def main() -> DeviceListener:
        listener = DeviceListener({"gt06": 0, "eseal": 0, "osmand": 0, "jt808": 0}, received.extend, host="127.0.0.1")
        ports = await listener.start()
        fix = sc.drive()[10]
        pos = gt06.encode_position(fix.latitude, fix.longitude, fix.time, serial=2)
        hb = bytes.fromhex("78780a13440604000201baaf540d0a")
        # login, garbage, a position split across writes is fine too: send all in one stream
        ack = await _exchange(ports["gt06"], LOGIN + b"\x00\x01garbage" + pos + hb, 20)
        assert ack[:10] == bytes.fromhex("787805010001d9dc0d0a")
        assert ack[13] == 0x13
        assert await _exchange(ports["eseal"], ESEAL, len(b"##S,eSeal,1000821,256,3.0.6,Normal ACK,34,E##")) == (
            b"##S,eSeal,1000821,256,3.0.6,Normal ACK,34,E##"
        )
        http = b"GET /?id=123456&lat=60.0&lon=30.0&timestamp=1377177267 HTTP/1.1\r\nHost: x\r\n\r\n"
        bad = b"GET /?lat=60.0&lon=30.0 HTTP/1.1\r\nHost: x\r\n\r\n"
        reply = await _exchange(
            ports["osmand"], bad + http, len(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") + 17
        )
        assert reply.startswith(b"HTTP/1.1 400") and b"HTTP/1.1 200 OK" in reply
        await _exchange(ports["jt808"], b"\x7e\x01\x02\x7e" + bytes(range(256)), 0)
        await listener.close()
        return listener

    listener = asyncio.run(main())
    devices = sorted(r.device_id for r in received)
    assert devices == ["1000821", "123456", "123456789012345"]
    seal = next(r for r in received if r.device_id == "1000821")
    assert seal.seal == "open"
    assert listener.stats.errors["osmand:no-device-id"] == 1
    assert sum(v for k, v in listener.stats.errors.items() if k.startswith("jt808")) >= 1
    assert listener.stats.acks["gt06"] == 2
