"""Benchmark of the clearance core: submission → validation → assessment → lane → stored.

Two paths, each on SQLite and (when Debian's PostgreSQL is installed) on PostgreSQL:
- API: a real uvicorn server filing unique declarations, measured twice: a closed loop (wrk, `--clients`
  connections each waiting for its answer: the most the server takes) and an open loop at a fixed offered
  rate (`--rate`, bench/openloop.py: the latency target's own terms, latency counted from when each
  request was due);
- batch: `service.submit_batch` in chunks inside one process (the sequential baseline);
- ingest: `declarations ingest`'s parallel path from JSON Lines text, one forked worker per core.
Prints one JSON line and a table; writes bench/results/clearance.json.

    python bench/clearance.py [--requests 3000] [--clients 32] [--batch 10000] [--runs 3] [--workers 2]
        [--only api|batch|ingest] [--no-postgres | --no-sqlite] [--out clearance]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests import pg_harness  # noqa: E402
from tests.clearance.conftest import BASE  # noqa: E402

from bench._common import machine, median, pct, save, scratch_dir  # noqa: E402

CODES = ["851713", "610910", "847130", "950300", "392690", "940360", "330499", "420221"]


def make_declaration(i: int, run: str) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["lrn"] = f"BENCH-{run}-{i}"
    d["items"][0]["tariff_code"] = CODES[i % len(CODES)]
    d["items"][1]["tariff_code"] = CODES[(i * 7 + 3) % len(CODES)]
    d["transport"]["arrival_date"] = date.today().isoformat()
    return d


def prepare(url: str) -> dict[str, str]:
    os.environ["SMARTCUSTOMS_DATABASE_URL"] = url
    from smartcustoms.platform import db, settings
    from smartcustoms.platform.migrate import upgrade

    settings.get_settings.cache_clear()
    db.reset_engines()
    upgrade(url)
    from tests.clearance.conftest import prepare_database

    return prepare_database()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        return [int(x) for x in out]
    except OSError:
        return []


def _stat(path: Path) -> list[str]:
    """The fields of a /proc/<pid>/stat after the command name (state, ppid, ...)."""
    return path.read_text().rsplit(")", 1)[1].split()


def _cpu_s(fields: list[str], *, reaped: bool) -> float:
    """User + system CPU seconds in `_stat` fields (and, with `reaped`, of the children that have exited)."""
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu_s(datadir: str | None) -> float | None:
    """CPU seconds the PostgreSQL server has used so far: its postmaster, the backends of connections that
    closed (reaped by it) and those still open. None for SQLite."""
    if datadir is None:
        return None
    try:
        postmaster = int(Path(datadir, "postmaster.pid").read_text().split()[0])
        own = Path(f"/proc/{postmaster}/stat")
        for _ in range(5):  # a backend reaped during the scan is in neither sum: scan again
            before = _cpu_s(_stat(own), reaped=True)
            children = 0.0
            for path in Path("/proc").glob("[0-9]*/stat"):  # not pgrep: it skips exited, unreaped backends
                try:
                    fields = _stat(path)
                except OSError:
                    continue
                if int(fields[1]) == postmaster:
                    children += _cpu_s(fields, reaped=False)
            if _cpu_s(_stat(own), reaped=True) == before:
                break
        return before + children
    except (OSError, ValueError, IndexError):
        return None


def client_cpu_s() -> float:
    """CPU seconds of this process and its children that have exited (the ingest workers, once joined)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


async def _load(port: int, token: str, n: int, clients: int, run: str) -> tuple[float, list[float], int]:
    lat: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        bodies = [make_declaration(i, run) for i in range(n)]

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await client.post("/declarations", json=bodies[i])
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 201:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return elapsed, lat, errors


def _unit_ms(text: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _wrk(port: int, token: str, args: argparse.Namespace, run: str, seconds: int) -> dict[str, Any]:
    """Drive the server with wrk (C, little CPU) posting unique declarations; parse its latency report."""
    body = Path(tempfile.mkstemp(suffix=".json")[1])
    body.write_text(json.dumps(make_declaration(0, "x") | {"lrn": "__LRN__"}))
    env = os.environ | {"SC_BENCH_BODY": str(body), "SC_BENCH_TOKEN": token, "SC_BENCH_RUN": run}
    cmd = [
        "wrk",
        "-t",
        "2",
        "-c",
        str(args.clients),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(Path(__file__).with_name("submit.lua")),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    body.unlink()
    res: dict[str, Any] = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            res["throughput_per_s"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            res[f"p{parts[0][:-1]}_ms"] = _unit_ms(parts[1])
        elif "Non-2xx" in line:
            res["errors"] = int(parts[-1])
        elif "requests in" in line:
            res["requests"] = int(parts[0])
    return res


def _open_loop(port: int, token: str, args: argparse.Namespace, run: str) -> dict[str, Any]:
    """Latency at a fixed offered rate (bench/openloop.py, its own process): the target's own terms."""
    import orjson

    n = int(args.rate * args.seconds)
    bodies = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    bodies.write_bytes(b"\n".join(orjson.dumps(make_declaration(i, run)) for i in range(n)))
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("openloop.py")),
        "--port",
        str(port),
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--bodies",
        str(bodies),
        "--token",
        token,
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 120, check=True).stdout
    finally:
        bodies.unlink()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def bench_api(url: str, args: argparse.Namespace, label: str, workers: int) -> dict[str, Any]:
    tokens = prepare(url)
    port = free_port()
    env = os.environ | {
        "SMARTCUSTOMS_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT / "src"),
        "SMARTCUSTOMS_WARM_START": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "smartcustoms.api:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(cmd, env=env)
    use_wrk = shutil.which("wrk") is not None
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(_load(port, tokens["trader"], 200, 8, f"warm{label}"))
        runs = []
        for r in range(args.runs):
            if use_wrk:
                runs.append(_wrk(port, tokens["trader"], args, f"{label}{r}", args.seconds))
            else:
                elapsed, lat, errors = asyncio.run(
                    _load(port, tokens["trader"], args.requests, args.clients, f"{label}{r}")
                )
                runs.append(
                    {
                        "throughput_per_s": args.requests / elapsed,
                        "p50_ms": pct(lat, 50),
                        "p99_ms": pct(lat, 99),
                        "errors": errors,
                        "requests": args.requests,
                    }
                )
        open_loop = [_open_loop(port, tokens["trader"], args, f"o{label}{r}") for r in range(args.runs) if args.rate]
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "path": "api",
        "database": label,
        "client": "wrk" if use_wrk else "httpx",
        "clients": args.clients,
        "workers": workers,
        "throughput_per_s_median": median([x["throughput_per_s"] for x in runs]),
        "p50_ms_median": median([x["p50_ms"] for x in runs]),
        "p99_ms_median": median([x["p99_ms"] for x in runs]),
        "errors": sum(x["errors"] for x in runs),
        "server_peak_rss_mb": round(rss, 1),
        "runs": runs,
        "open_loop": {
            "offered_per_s": args.rate,
            "completed_per_s_median": median([x["completed_per_s"] for x in open_loop]),
            "p50_ms_median": median([x["p50_ms"] for x in open_loop]),
            "p99_ms_median": median([x["p99_ms"] for x in open_loop]),
            "errors": sum(x["errors"] for x in open_loop),
            "runs": open_loop,
        }
        if open_loop
        else None,
    }


def bench_batch(url: str, args: argparse.Namespace, label: str) -> dict[str, Any]:
    prepare(url)
    from smartcustoms.clearance import checks, service
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.service import Context
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.platform.runtime import settle_heap

    with unit_of_work() as s:
        who = auth.principal_of(auth.find_user(s, "trader"))
        Context(s, date.today())  # load the tariff index once, as a running server has it
    checks.checks()
    settle_heap()  # as `declarations ingest` and the server do after loading
    runs = []
    chunk = 1000
    for r in range(args.runs):
        docs = [make_declaration(i, f"b{label}{r}") for i in range(args.batch)]
        t0 = time.perf_counter()
        decls = [DeclarationIn.model_validate(d) for d in docs]
        accepted = 0
        for start in range(0, len(decls), chunk):
            with unit_of_work() as s:
                res = service.submit_batch(s, who, decls[start : start + chunk])
            accepted += len(res.accepted)
        elapsed = time.perf_counter() - t0
        runs.append({"throughput_per_s": args.batch / elapsed, "accepted": accepted})
    return {
        "path": "batch",
        "database": label,
        "declarations_per_run": args.batch,
        "chunk": chunk,
        "throughput_per_s_median": median([x["throughput_per_s"] for x in runs]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": runs,
    }


def bench_ingest(url: str, args: argparse.Namespace, label: str, pg_datadir: str | None = None) -> dict[str, Any]:
    """Parallel batch ingest from JSON Lines text (what `declarations ingest` reads), forked workers; with the
    CPU each filing cost the ingest processes and, on PostgreSQL, the database server (both share the two
    cores, so their sum bounds the throughput)."""
    prepare(url)
    import orjson

    from smartcustoms.clearance import ingest
    from smartcustoms.clearance.service import Context
    from smartcustoms.platform.db import unit_of_work

    with unit_of_work() as s:
        Context(s, date.today())  # the tariff index is loaded once and shared by the forked workers
    runs = []
    for r in range(args.runs):
        lines = [orjson.dumps(make_declaration(i, f"i{label}{r}")) for i in range(args.batch)]
        t0, c0, s0 = time.perf_counter(), client_cpu_s(), server_cpu_s(pg_datadir)
        report = ingest.ingest(lines, "trader", workers=args.ingest_workers, chunk=args.chunk)
        elapsed = time.perf_counter() - t0
        c1, s1 = client_cpu_s(), server_cpu_s(pg_datadir)
        run: dict[str, Any] = {
            "throughput_per_s": args.batch / elapsed,
            "accepted": len(report.accepted),
            "retries": report.retries,
            "client_cpu_ms_per_filing": round((c1 - c0) * 1000 / args.batch, 3),
        }
        if s0 is not None and s1 is not None:
            run["server_cpu_ms_per_filing"] = round((s1 - s0) * 1000 / args.batch, 3)
        runs.append(run)
    return {
        "path": "ingest",
        "database": label,
        "declarations_per_run": args.batch,
        "chunk": args.chunk,
        "workers": args.ingest_workers,
        "throughput_per_s_median": median([x["throughput_per_s"] for x in runs]),
        "client_cpu_ms_per_filing_median": median([x["client_cpu_ms_per_filing"] for x in runs]),
        **(
            {"server_cpu_ms_per_filing_median": median([x["server_cpu_ms_per_filing"] for x in runs])}
            if all("server_cpu_ms_per_filing" in x for x in runs)
            else {}
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    ap.add_argument("--rate", type=float, default=500, help="open-loop offered rate for the latency runs (0: none)")
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="server worker processes, comma-separated: one API run each")
    ap.add_argument("--ingest-workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--only", choices=["api", "batch", "ingest"], default=None)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (A/B runs of its paths)")
    ap.add_argument("--out", default="clearance", help="results file name under bench/results/ (without .json)")
    args = ap.parse_args()
    tmp = scratch_dir("sc-bench-")
    dbs: list[tuple[str, Any, str | None]] = []
    if not args.no_sqlite:
        dbs.append(("sqlite", lambda name: f"sqlite:///{tmp / name}.db", None))
    pg = None
    if not args.no_postgres and pg_harness.find_bindir():
        pg = pg_harness.start(durable=True)  # fsync on: every acknowledged filing is on disk
        dbs.append(("postgresql", lambda name: pg_harness.create_database(pg.url, name), pg.datadir))
    results = []
    try:
        for label, make_url, datadir in dbs:
            if args.only in (None, "batch"):
                results.append(bench_batch(make_url("batch"), args, label))
            if args.only in (None, "ingest"):
                results.append(bench_ingest(make_url("ingest"), args, label, datadir))
            if args.only in (None, "api"):
                for n in (int(w) for w in str(args.workers).split(",")):
                    results.append(bench_api(make_url(f"api{n}"), args, label, n))
    finally:
        if pg:
            pg.stop()
    out = {
        "benchmark": "clearance",
        "machine": machine(),
        "targets": {"api_per_s": 500, "api_p99_ms": 100, "batch_per_s": 5000, "ingest_per_s": 5000},
        "results": results,
    }
    print(f"{'path':6} {'db':10} {'workers':>7} {'decl/s (median)':>16} {'p50 ms':>8} {'p99 ms':>8} {'peak MB':>8}")
    for r in results:
        print(
            f"{r['path']:6} {r['database']:10} {r.get('workers', 1):7} {r['throughput_per_s_median']:16.0f} "
            f"{r.get('p50_ms_median', float('nan')):8.1f} "
            f"{r.get('p99_ms_median', float('nan')):8.1f} {r.get('server_peak_rss_mb', r.get('peak_rss_mb')):8.0f}"
        )
    for r in results:
        if "client_cpu_ms_per_filing_median" in r:
            server = r.get("server_cpu_ms_per_filing_median")
            print(
                f"ingest {r['database']:10} CPU per filing: {r['client_cpu_ms_per_filing_median']:.3f} ms ingest"
                + (f" + {server:.3f} ms database server" if server is not None else "")
            )
    for r in results:
        if r.get("open_loop"):
            o = r["open_loop"]
            print(
                f"open-loop {r['database']:10} {r['workers']} worker(s): {o['offered_per_s']:.0f}/s offered, "
                f"{o['completed_per_s_median']:.0f}/s done, p50 {o['p50_ms_median']:.1f} ms, "
                f"p99 {o['p99_ms_median']:.1f} ms, errors {o['errors']}"
            )
    save(args.out, out)


if __name__ == "__main__":
    main()
