"""Where a filing's CPU goes, server side: filings through the ASGI application in this process (no network,
no load generator competing for the cores), on SQLite and on PostgreSQL (fsync on).

For each database: filings per second with `--concurrency` filings in flight, CPU milliseconds per filing of
this process and of its threads (event loop, filing threads, group planner, group writer, SQLite
checkpointer), of PostgreSQL's server processes, and statements and connection checkouts per filing. Used
for the A/B figures in the issue 2 notes: run it on two checkouts back to back (the VM's speed drifts).
Prints one JSON line and a table; writes bench/results/clearance_inprocess.json (or `--out`).

    python bench/clearance_inprocess.py [--filings 2000] [--concurrency 16] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import glob
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import machine, save, scratch_dir  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_ms(stat_path: str) -> float:
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICK


def thread_cpu() -> dict[str, float]:
    """CPU ms so far per kind of thread of this process (names up to ':' or '_')."""
    per: collections.Counter[str] = collections.Counter()
    for th in threading.enumerate():
        with contextlib.suppress(OSError, TypeError):
            per[th.name.split(":")[0].split("_")[0]] += _cpu_ms(f"/proc/self/task/{th.native_id}/stat")
    return dict(per)


def postgres_cpu() -> float:
    """CPU ms so far of every PostgreSQL server process on this machine (the harness starts its own)."""
    total = 0.0
    for path in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if "(postgres)" in Path(path).read_text():
                total += _cpu_ms(path)
    return total


def run(url: str, label: str, filings: int, concurrency: int) -> dict[str, Any]:
    os.environ["SMARTCUSTOMS_DATABASE_URL"] = url
    os.environ["SMARTCUSTOMS_WARM_START"] = "1"
    import orjson
    from sqlalchemy import event

    from bench.clearance import make_declaration, prepare
    from smartcustoms.api import create_app
    from smartcustoms.platform.db import get_engine

    tokens = prepare(url)
    app = create_app()
    counts: collections.Counter[str] = collections.Counter()
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
    auth = (b"authorization", f"Bearer {tokens['trader']}".encode())

    async def file(body: bytes) -> int:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/declarations",
            "raw_path": b"/declarations",
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode()), auth],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)  # type: ignore[arg-type]
        return status[0]

    async def main() -> dict[str, Any]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(app.router.lifespan_context(app))
            engine = get_engine()
            event.listen(engine.pool, "checkout", lambda *_a: counts.update(["checkouts"]))
            event.listen(engine, "before_cursor_execute", lambda *_a: counts.update(["statements"]))
            out: dict[str, Any] = {}
            for phase, count in (("warm", 300), ("run", filings)):
                queue: asyncio.Queue[bytes] = asyncio.Queue()
                tag = f"{phase[0]}{label[0]}{int(time.time() * 1000) % 10**8}"  # LRNs unique across runs
                for i in range(count):
                    queue.put_nowait(orjson.dumps(make_declaration(i, tag)))
                refused = 0

                async def client(queue: asyncio.Queue[bytes] = queue) -> None:
                    nonlocal refused
                    while not queue.empty():
                        if await file(queue.get_nowait()) != 201:
                            refused += 1

                counts.clear()
                threads0, pg0 = thread_cpu(), postgres_cpu()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                await asyncio.gather(*(client() for _ in range(concurrency)))
                cpu1, wall1 = time.process_time(), time.perf_counter()
                threads1, pg1 = thread_cpu(), postgres_cpu()
                if refused:
                    raise SystemExit(f"{label}: {refused} of {count} filings refused; the figures would be meaningless")
                out = {
                    "database": label,
                    "filings": count,
                    "concurrency": concurrency,
                    "filings_per_s": round(count / (wall1 - wall0), 1),
                    "refused": refused,
                    "cpu_ms_per_filing": round((cpu1 - cpu0) * 1000 / count, 3),
                    "thread_cpu_ms_per_filing": {
                        k: round((v - threads0.get(k, 0.0)) / count, 3) for k, v in sorted(threads1.items())
                    },
                    "postgres_cpu_ms_per_filing": round((pg1 - pg0) / count, 3) if label == "postgresql" else None,
                    "statements_per_filing": round(counts["statements"] / count, 2),
                    "checkouts_per_filing": round(counts["checkouts"] / count, 2),
                }
            return out

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filings", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--out", default="clearance_inprocess")
    args = ap.parse_args()
    from tests import pg_harness

    from smartcustoms.platform import db, settings

    results = []
    tmp = scratch_dir("sc-inproc-")
    results.append(run(f"sqlite:///{tmp / 'inproc.db'}", "sqlite", args.filings, args.concurrency))
    if not args.no_postgres and pg_harness.find_bindir():
        pg = pg_harness.start(durable=True)
        try:
            settings.get_settings.cache_clear()
            db.reset_engines()
            results.append(
                run(pg_harness.create_database(pg.url, "inproc"), "postgresql", args.filings, args.concurrency)
            )
        finally:
            pg.stop()
    print(
        f"{'db':10} {'filings/s':>9} {'CPU ms':>7} {'PG ms':>6} {'stmts':>6} {'checkouts':>9}  threads (CPU ms/filing)"
    )
    for r in results:
        pg_ms = r["postgres_cpu_ms_per_filing"]
        print(
            f"{r['database']:10} {r['filings_per_s']:9.0f} {r['cpu_ms_per_filing']:7.3f} "
            f"{'' if pg_ms is None else f'{pg_ms:6.3f}':>6} {r['statements_per_filing']:6.2f} "
            f"{r['checkouts_per_filing']:9.2f}  {r['thread_cpu_ms_per_filing']}"
        )
    save(args.out, {"benchmark": "clearance_inprocess", "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
