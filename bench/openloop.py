"""Open-loop HTTP load at a fixed offered rate: the measure behind "N requests/s with p99 under X ms".

A closed loop (wrk, N clients each waiting for its answer) measures the most a server can take, and its
latency there is queueing by construction (mean = clients / throughput). A latency target at a rate needs
the rate held whatever the server does: request i is due at start + i / rate and its latency is counted
from that moment, so time spent waiting for a free connection counts too (no coordinated omission).

Runs as its own process (its CPU is not the server's, nor the harness's): plain asyncio streams,
pre-built request bytes, keep-alive connections opened as needed up to `--connections`.

    python bench/openloop.py --port 8000 --rate 500 --seconds 10 --bodies BODIES.jsonl --token TOKEN
prints one JSON line: offered and achieved rate, completed, errors, p50/p90/p99/max latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path


def _request(path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one response; its status. Bodies are read by Content-Length (the API never chunks these)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run(port: int, rate: float, requests: list[bytes], connections: int) -> dict[str, float | int]:
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = 0
    latencies: list[float] = []
    errors = 0
    done = asyncio.Event()
    pending = len(requests)

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal opened
        if idle.empty() and opened < connections:
            opened += 1
            return await asyncio.open_connection("127.0.0.1", port)
        return await idle.get()

    async def one(due: float, data: bytes) -> None:
        nonlocal errors, pending
        try:
            reader, writer = await connection()
            writer.write(data)
            status = await _answer(reader)
            latencies.append((time.perf_counter() - due) * 1000)
            if status >= 300:
                errors += 1
            idle.put_nowait((reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors += 1
        finally:
            pending -= 1
            if pending == 0:
                done.set()

    start = time.perf_counter() + 0.05
    tasks = []
    for i, data in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, data)))
    sent_for = time.perf_counter() - start
    await done.wait()
    elapsed = time.perf_counter() - start
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, round(p / 100 * (len(lat) - 1)))], 1) if lat else float("nan")

    return {
        "offered_per_s": rate,
        "sent_per_s": round(len(requests) / sent_for, 1),
        "completed_per_s": round(len(lat) / elapsed, 1),
        "requests": len(requests),
        "completed": len(lat),
        "errors": errors,
        "connections": opened,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": pct(100),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True, help="requests per second offered")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--bodies", type=Path, required=True, help="JSON Lines: one request body per line, used in order")
    ap.add_argument("--token", required=True)
    ap.add_argument("--path", default="/declarations")
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    n = int(args.rate * args.seconds)
    if len(bodies) < n:
        raise SystemExit(f"need {n} bodies, {args.bodies} has {len(bodies)}")
    requests = [_request(args.path, args.token, b) for b in bodies[:n]]
    print(json.dumps(asyncio.run(run(args.port, args.rate, requests, args.connections))))


if __name__ == "__main__":
    main()
