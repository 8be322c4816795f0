"""Benchmark of the documents slice: issuance and verification throughput, log proofs as the log grows.

Run: PYTHONPATH=src /work/main/.venv/bin/python bench/documents.py [--max-leaves 1000000] [--quick]
Prints one JSON line and a table; writes bench/results/documents.json. Medians of several runs,
each next to a simple baseline (unbatched issuance, integrity-only verification, recomputing the
root from all leaves).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from smartcustoms.documents import exchange, merkle, model, service, signing, store
from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.migrate import upgrade

RESULTS = Path(__file__).resolve().parent / "results" / "documents.json"


def coo(n: int) -> dict[str, Any]:
    return {
        "certificateNumber": f"CO-2026-{n:07d}",
        "exporter": {"name": "Formosa Bikes Ltd", "country": "TW", "address": "No. 1, Sec. 2, Zhongshan Rd, Taichung"},
        "importer": {"name": "Kiwi Cycles Ltd", "country": "NZ", "address": "12 Queen St, Auckland"},
        "fta": "ANZTEC",
        "invoice": {"number": f"INV-{n}", "date": "2026-11-20"},
        "goods": [
            {"description": "Bicycles, aluminium frame", "hsCode": "8712.00", "quantity": 40, "originCriterion": "PSR"},
            {"description": "Bicycle frames", "hsCode": "8714.91", "quantity": 120, "originCriterion": "WO"},
        ],
    }


CPU_RATES: dict[str, float] = {}
"""Items per CPU-second of this process, per measure: robust to other tenants loading the shared cores."""


def median_rate(fn: Callable[[], int], runs: int) -> tuple[float, list[float]]:
    """Median items/s (wall clock) of `runs` calls of fn (which returns how many items it processed);
    also records the median items per CPU-second of this process in CPU_RATES[fn name]."""
    rates, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
        cpu.append(n / max(time.process_time() - c, 1e-9))
    CPU_RATES[fn.__name__] = round(statistics.median(cpu))
    return statistics.median(rates), rates


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def use_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    os.environ["SMARTCUSTOMS_DATABASE_URL"] = url
    platform_settings.get_settings.cache_clear()
    platform_db.reset_engines()
    store.forget_trees()
    upgrade(url)
    return url


def bench_issue_verify(tmp: Path, runs: int, batch: int) -> dict[str, Any]:
    use_database(tmp / "bench.db")
    service.register_issuer(SYSTEM, "chamber-tw", "Taiwan Chamber of Commerce", "chamber_of_commerce")
    counter = iter(range(10**9))
    issued: list[dict[str, Any]] = []

    def issue_batch() -> int:
        docs = service.issue_documents(
            SYSTEM, "chamber-tw", "certificate_of_origin", [coo(next(counter)) for _ in range(batch)]
        )
        issued.extend(docs)
        return len(docs)

    def issue_one_by_one() -> int:
        n = max(batch // 10, 20)
        for _ in range(n):
            issued.extend(service.issue_documents(SYSTEM, "chamber-tw", "certificate_of_origin", [coo(next(counter))]))
        return n

    def wrap_only() -> int:
        model.wrap_documents([coo(i) for i in range(batch)])
        return batch

    issue_rate, issue_runs = median_rate(issue_batch, runs)
    single_rate, _ = median_rate(issue_one_by_one, runs)
    wrap_rate, _ = median_rate(wrap_only, runs)
    registry = signing.KeyRegistry.from_dict(service.key_registry())
    sample = [json.loads(json.dumps(d)) for d in issued[: min(len(issued), 2000)]]

    def verify_offline() -> int:
        for d in sample:
            assert service.verify_document(d, registry=registry)["valid"]
        return len(sample)

    def verify_integrity_only() -> int:
        for d in sample:
            assert model.check_integrity(d).status == "valid"
        return len(sample)

    db_sample = sample[:500]

    def verify_with_log() -> int:
        for d in db_sample:
            assert service.verify_document(d, use_db=True)["checks"]["status"]["status"] == "valid"
        return len(db_sample)

    pool = ProcessPoolExecutor(max_workers=2)
    list(pool.map(_verify_chunk, [sample[:2], sample[2:4]], [registry.as_dict()] * 2))  # start the workers

    def verify_two_processes() -> int:
        chunks = [sample[i::2] for i in range(2)]
        return sum(pool.map(_verify_chunk, chunks, [registry.as_dict()] * 2))

    verify_rate, verify_runs = median_rate(verify_offline, runs)
    parallel_rate, _ = median_rate(verify_two_processes, runs)
    pool.shutdown()
    integrity_rate, _ = median_rate(verify_integrity_only, runs)
    db_verify_rate, _ = median_rate(verify_with_log, runs)
    return {
        "batch_size": batch,
        "issue_batched_docs_per_s": round(issue_rate),
        "issue_batched_runs": [round(r) for r in issue_runs],
        "baseline_issue_one_per_transaction_docs_per_s": round(single_rate),
        "wrap_only_docs_per_s": round(wrap_rate),
        "verify_offline_docs_per_s": round(verify_rate),
        "verify_offline_runs": [round(r) for r in verify_runs],
        "verify_offline_2_processes_docs_per_s": round(parallel_rate),
        "baseline_integrity_only_docs_per_s": round(integrity_rate),
        "verify_with_db_log_docs_per_s": round(db_verify_rate),
        "documents_in_log": len(issued),
        "per_cpu_second": {k: v for k, v in CPU_RATES.items() if k != "verify_two_processes"},
    }


def _verify_chunk(docs: list[dict[str, Any]], registry: dict[str, Any]) -> int:
    reg = signing.KeyRegistry.from_dict(registry)
    for d in docs:
        assert service.verify_document(d, registry=reg)["valid"]
    return len(docs)


def _root_from_leaves(leaves: list[bytes]) -> bytes:
    return merkle.MerkleTree(leaves).root()


def bench_log_growth(max_leaves: int, budget_s: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tree = merkle.MerkleTree()
    started = time.perf_counter()
    size = 1
    while size <= max_leaves and time.perf_counter() - started < budget_s:
        prev = tree.size
        t = time.perf_counter()
        for i in range(prev, size):
            tree.append(i.to_bytes(8, "big"))
        append_s = time.perf_counter() - t
        root = tree.root()
        idx = size // 3
        proof = tree.inclusion_proof(idx, size)
        leaf = tree.leaf(idx)
        gen = median_time(partial(tree.inclusion_proof, idx, size), 50)
        ver = median_time(partial(merkle.verify_inclusion, idx, size, leaf, proof, root), 200)
        row: dict[str, Any] = {
            "leaves": size,
            "append_us_per_leaf": round(append_s / (size - prev) * 1e6, 2),
            "inclusion_proof_hashes": len(proof),
            "inclusion_proof_bytes": 32 * len(proof),
            "inclusion_proof_gen_us": round(gen * 1e6, 1),
            "inclusion_verify_us": round(ver * 1e6, 1),
        }
        if size > 1:
            old = max(size // 2 + 1, 1)
            cons = tree.consistency_proof(old, size)
            old_root = tree.root(old)
            row["consistency_proof_hashes"] = len(cons)
            row["consistency_verify_us"] = round(
                median_time(partial(merkle.verify_consistency, old, size, cons, old_root, root), 200) * 1e6, 1
            )
        if size <= 100_000:
            leaves = tree.levels[0][:size]
            row["baseline_root_from_leaves_ms"] = round(median_time(partial(_root_from_leaves, leaves), 3) * 1e3, 2)
        rows.append(row)
        size *= 10
    return rows


def bench_db_log(tmp: Path, leaves: int) -> dict[str, Any]:
    """Node A appends `leaves` entries in one transaction; cold tree load on restart; node B mirrors them."""
    a_url = use_database(tmp / "node-a.db")
    service.register_issuer(SYSTEM, "carrier-x", "Carrier X", "carrier")
    now = datetime.now(UTC).isoformat()
    entries = [
        (
            "issue",
            f"{i:064x}",
            json.dumps({"kind": "issue", "issuer": "carrier-x", "targetHash": f"{i:064x}", "at": now}),
        )
        for i in range(leaves)
    ]
    t = time.perf_counter()
    with platform_db.unit_of_work() as session:
        service._append(session, session.get_one(store.IssuerRow, "carrier-x"), entries)
    append_s = time.perf_counter() - t
    store.forget_trees()
    t = time.perf_counter()
    with platform_db.unit_of_work() as session:
        tree = store.tree_for(session, "carrier-x")
    cold = time.perf_counter() - t
    t = time.perf_counter()
    with platform_db.unit_of_work() as session:
        store.tree_for(session, "carrier-x").inclusion_proof(leaves // 2)
    warm = time.perf_counter() - t
    registry = service.key_registry("carrier-x")
    use_database(tmp / "node-b.db")
    exchange.follow_partner(SYSTEM, "carrier-x", "Carrier X", "carrier", registry)
    t = time.perf_counter()
    synced = exchange.sync_partner(SYSTEM, "carrier-x", exchange.LocalPartner(a_url))
    sync_s = time.perf_counter() - t
    http = _http_sync(tmp, a_url, registry)
    return {
        "leaves": tree.size,
        "append_one_transaction_s": round(append_s, 2),
        "cold_load_s": round(cold, 3),
        "warm_proof_ms": round(warm * 1e3, 2),
        "partner_sync_entries": synced["new"],
        "partner_sync_s": round(sync_s, 2),
        "partner_sync_entries_per_s": round(synced["new"] / sync_s),
        "partner_sync_transport": "in-process (LocalPartner reads node A's database; no HTTP)",
        "partner_sync_http": http,
    }


def _append_entries(issuer: str, start: int, count: int) -> None:
    now = datetime.now(UTC).isoformat()
    entries = [
        ("issue", f"{i:064x}", json.dumps({"kind": "issue", "issuer": issuer, "targetHash": f"{i:064x}", "at": now}))
        for i in range(start, start + count)
    ]
    with platform_db.unit_of_work() as session:
        service._append(session, session.get_one(store.IssuerRow, issuer), entries)


def bench_incremental_sync(tmp: Path, new: int, runs: int) -> dict[str, Any]:
    """Node B already mirrors node A's log; A appends `new` entries; B syncs them (signed checkpoint,
    RFC 9162 consistency proof from B's last checkpoint, entries re-hashed to the new root, stored).
    Baseline: a mirror without consistency proofs that re-reads A's whole log and recomputes the root."""
    a_url = use_database(tmp / "sync-a.db")
    service.register_issuer(SYSTEM, "customs-a", "Customs A", "customs")
    _append_entries("customs-a", 0, new)
    registry = service.key_registry("customs-a")
    b_url = use_database(tmp / "sync-b.db")
    exchange.follow_partner(SYSTEM, "customs-a", "Customs A", "customs", registry)
    exchange.sync_partner(SYSTEM, "customs-a", exchange.LocalPartner(a_url))  # the existing mirror
    partner = exchange.LocalPartner(a_url)
    times, baseline, proof_ms, sizes = [], [], [], []
    for r in range(runs):
        use_database(tmp / "sync-a.db")
        _append_entries("customs-a", new * (r + 1), new)
        use_database(tmp / "sync-b.db")
        t = time.perf_counter()
        done = exchange.sync_partner(SYSTEM, "customs-a", partner)
        times.append(time.perf_counter() - t)
        assert done["new"] == new, done
        sizes.append(done["treeSize"])
        old = done["treeSize"] - new
        t = time.perf_counter()
        note = partner.checkpoint("customs-a")
        cp, _ = signing.parse_checkpoint(note)
        proof = partner.consistency("customs-a", old, cp.size)
        with platform_db.unit_of_work(b_url) as session:
            old_root = bytes(store.checkpoint_at(session, "customs-a", old).root_hash)  # type: ignore[union-attr]
        merkle.verify_consistency(old, cp.size, proof, old_root, cp.root)
        proof_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()  # baseline: everything from entry 0, root recomputed from all leaves
        tree = merkle.MerkleTree()
        for start in range(0, cp.size, exchange.PAGE):
            for e in partner.entries("customs-a", start, min(start + exchange.PAGE, cp.size)):
                tree.append(str(e["payload"]).encode())
        assert tree.root() == cp.root
        baseline.append(time.perf_counter() - t)
    med = statistics.median(times)
    base = statistics.median(baseline)
    return {
        "new_entries_per_sync": new,
        "runs": runs,
        "mirror_sizes_after": sizes,
        "sync_s_median": round(med, 2),
        "sync_s_runs": [round(x, 2) for x in times],
        "sync_entries_per_s": round(new / med),
        "consistency_check_ms_median": round(statistics.median(proof_ms), 2),
        "baseline_full_refetch_s_median": round(base, 2),
        "baseline_full_refetch_s_runs": [round(x, 2) for x in baseline],
        "transport": "in-process (LocalPartner reads node A's database; B writes its own SQLite)",
    }


def _http_sync(tmp: Path, a_url: str, registry: dict[str, Any]) -> dict[str, Any]:
    """The same sync over HTTP: node A served by uvicorn in another process, node C mirrors it on loopback."""
    import socket
    import subprocess

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "SMARTCUSTOMS_DATABASE_URL": a_url, "PYTHONPATH": src}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "smartcustoms.api:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/documents/registry", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        use_database(tmp / "node-c.db")
        exchange.follow_partner(SYSTEM, "carrier-x", "Carrier X", "carrier", registry)
        t = time.perf_counter()
        partner = exchange.HttpPartner(base, timeout=120)
        synced = exchange.sync_partner(SYSTEM, "carrier-x", partner)
        sync_s = time.perf_counter() - t
        partner.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"entries": synced["new"], "seconds": round(sync_s, 2), "entries_per_s": round(synced["new"] / sync_s)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-leaves", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--db-leaves", type=int, default=100_000)
    parser.add_argument("--sync-new", type=int, default=100_000, help="new entries per incremental partner sync")
    parser.add_argument("--sync-runs", type=int, default=3)
    parser.add_argument("--only-sync", action="store_true", help="run only the incremental sync (results not saved)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.max_leaves, args.runs, args.batch, args.db_leaves = 10_000, 1, 50, 1_000
        args.sync_new, args.sync_runs = 1_000, 2
    # throw-away master key for the sealed issuer keys of the benchmark's temporary databases
    os.environ.setdefault("SMARTCUSTOMS_DOCUMENTS_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    if args.only_sync:
        with tempfile.TemporaryDirectory() as tmpdir:
            print(json.dumps(bench_incremental_sync(Path(tmpdir), args.sync_new, args.sync_runs)))
        return
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        incremental = bench_incremental_sync(tmp, args.sync_new, args.sync_runs)
        throughput = bench_issue_verify(tmp, args.runs, args.batch)
        growth = bench_log_growth(args.max_leaves, budget_s=90)
        db_load = bench_db_log(tmp, args.db_leaves)
    platform_db.reset_engines()
    result = {
        "bench": "documents",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": {"issue_docs_per_s": 2000, "verify_docs_per_s": 5000},
        "throughput": throughput,
        "log_growth": growth,
        "db_tree_load": db_load,
        "incremental_partner_sync": incremental,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, separators=(",", ":")))
    t = throughput
    print()
    print(f"{'measure':<48}{'docs/s':>10}{'docs/CPU-s':>12}")
    cpu = t["per_cpu_second"]
    for label, key, fn in [
        (f"issue, batches of {t['batch_size']} (SQLite, one tx per batch)", "issue_batched_docs_per_s", "issue_batch"),
        (
            "  baseline: one document per transaction",
            "baseline_issue_one_per_transaction_docs_per_s",
            "issue_one_by_one",
        ),
        ("  wrap only (no DB, no signing)", "wrap_only_docs_per_s", "wrap_only"),
        ("verify offline (integrity+receipt+signature)", "verify_offline_docs_per_s", "verify_offline"),
        ("  same, 2 worker processes", "verify_offline_2_processes_docs_per_s", "-"),
        ("  baseline: integrity only", "baseline_integrity_only_docs_per_s", "verify_integrity_only"),
        ("verify against the DB log (status valid)", "verify_with_db_log_docs_per_s", "verify_with_log"),
    ]:
        print(f"{label:<48}{t[key]:>10}{cpu.get(fn, '-')!s:>12}")
    print()
    header = [
        "leaves",
        "incl.hashes",
        "incl.bytes",
        "gen us",
        "verify us",
        "cons.hashes",
        "cons.verify us",
        "naive root ms",
    ]
    print("".join(f"{h:>15}" for h in header))
    for r in growth:
        vals = [
            r["leaves"],
            r["inclusion_proof_hashes"],
            r["inclusion_proof_bytes"],
            r["inclusion_proof_gen_us"],
            r["inclusion_verify_us"],
            r.get("consistency_proof_hashes", "-"),
            r.get("consistency_verify_us", "-"),
            r.get("baseline_root_from_leaves_ms", "-"),
        ]
        print("".join(f"{v!s:>15}" for v in vals))
    print(
        f"\n{db_load['leaves']} log entries: appended in one transaction in {db_load['append_one_transaction_s']} s; "
        f"cold load {db_load['cold_load_s']} s; warm proof {db_load['warm_proof_ms']} ms; "
        f"partner sync {db_load['partner_sync_s']} s ({db_load['partner_sync_entries_per_s']} entries/s), "
        f"over HTTP {db_load['partner_sync_http']['seconds']} s ({db_load['partner_sync_http']['entries_per_s']} entries/s)"
    )
    inc = incremental
    print(
        f"incremental partner sync of {inc['new_entries_per_sync']} new entries (median of {inc['runs']}): "
        f"{inc['sync_s_median']} s ({inc['sync_entries_per_s']} entries/s), consistency check "
        f"{inc['consistency_check_ms_median']} ms; baseline full re-fetch {inc['baseline_full_refetch_s_median']} s"
    )
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
