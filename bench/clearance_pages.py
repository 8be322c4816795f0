"""What storing filings costs the database file: page writes and reads per filing as the database grows,
with time-ordered movement references (the platform's) beside fully random ones (the scheme before
d231b8f), side by side in one run on SQLite.

Filings are planned and stored in groups (`service.plan_batch` / `service.store_batch`, as `declarations
ingest` does) in this process; for the store step of each group the script counts write and read system calls
(`/proc/self/io`: SQLite writes and reads one page per call) and CPU time, and reports them per filing for each
tenth of the run, so a growing database shows. Prints one JSON line and a table; writes
bench/results/clearance_pages.json (or `--out`).

    python bench/clearance_pages.py [--filings 30000] [--group 500]
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import machine, median, save, scratch_dir  # noqa: E402


def _io() -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["syscw"]), int(fields["syscr"])


def random_references(at: datetime, count: int, country: str = "TW") -> list[str]:
    """The scheme before d231b8f: year, country and 14 random base32 characters."""
    return [f"{at:%y}{country}" + base64.b32encode(secrets.token_bytes(10)).decode()[:14] for _ in range(count)]


def run(scheme: str, args: argparse.Namespace) -> dict[str, Any]:
    from bench.clearance import make_declaration, prepare
    from smartcustoms.clearance import checks, service
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.platform import auth, db
    from smartcustoms.platform.runtime import settle_heap

    prepare(f"sqlite:///{scratch_dir('sc-pages-')}/pages-{scheme}.db")
    ordered = service.new_references
    service.new_references = random_references if scheme == "random" else ordered
    try:
        with db.unit_of_work() as session:
            who = auth.principal_of(auth.find_user(session, "trader"))
            service.Context(session, date.today())
        checks.checks()
        settle_heap()
        tenths: list[dict[str, float]] = []
        per_tenth = max(args.filings // 10, args.group)
        writes = reads = 0
        cpu = 0.0
        done = 0
        for start in range(0, args.filings, args.group):
            count = min(args.group, args.filings - start)
            decls = [DeclarationIn.model_validate(make_declaration(start + i, scheme)) for i in range(count)]
            with db.unit_of_work(read_only=True) as session:
                plan = service.plan_batch(session, who, decls)
            w0, r0 = _io()
            c0 = time.process_time()
            with db.unit_of_work(immediate=True) as session:
                stored = service.store_batch(session, who, plan)
            cpu += time.process_time() - c0
            w1, r1 = _io()
            assert len(stored.accepted) == count, stored.rejected
            writes += w1 - w0
            reads += r1 - r0
            done += count
            if done % per_tenth == 0 or done == args.filings:
                tenths.append(
                    {
                        "stored": start + count,
                        "writes_per_filing": round(writes / done, 2),
                        "reads_per_filing": round(reads / done, 2),
                        "store_cpu_ms_per_filing": round(cpu * 1000 / done, 3),
                    }
                )
                writes = reads = done = 0
                cpu = 0.0
    finally:
        service.new_references = ordered
    return {
        "references": scheme,
        "filings": args.filings,
        "group": args.group,
        "writes_per_filing_median": round(median([t["writes_per_filing"] for t in tenths]), 2),
        "reads_per_filing_median": round(median([t["reads_per_filing"] for t in tenths]), 2),
        "store_cpu_ms_per_filing_median": round(median([t["store_cpu_ms_per_filing"] for t in tenths]), 3),
        "last_tenth": tenths[-1],
        "tenths": tenths,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filings", type=int, default=30000)
    ap.add_argument("--group", type=int, default=500)
    ap.add_argument("--out", default="clearance_pages")
    args = ap.parse_args()
    results = [run(scheme, args) for scheme in ("random", "ordered")]
    print(
        f"{'references':<10} {'writes/filing':>14} {'reads/filing':>13} {'store CPU ms':>13}  last tenth (w / r / ms)"
    )
    for r in results:
        last = r["last_tenth"]
        print(
            f"{r['references']:<10} {r['writes_per_filing_median']:>14} {r['reads_per_filing_median']:>13} "
            f"{r['store_cpu_ms_per_filing_median']:>13}  {last['writes_per_filing']} / {last['reads_per_filing']}"
            f" / {last['store_cpu_ms_per_filing']}"
        )
    save(args.out, {"benchmark": "clearance_pages", "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
