"""How long a group of filings holds SQLite's writer: WAL checkpoints inline (SQLite's default, the commit that
crosses 1,000 pages copies and syncs) against the background checkpointer (`platform.db._Checkpointer`).

Every filing of the API waits for its group's commit, so slow commits are its latency tail. The same filings
(20 a group, planned beforehand, like the API's group committer) are stored in each mode; modes alternate
run by run in fresh processes (the machine is shared: compare within a pair). Prints one JSON line and a
table; writes bench/results/clearance_commit.json.

    python bench/clearance_commit.py [--filings 6000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import machine, median, pct, save, scratch_dir  # noqa: E402

GROUP = 20


def one_run(filings: int) -> dict[str, Any]:
    """In this process (its mode fixed by SMARTCUSTOMS_SQLITE_CHECKPOINT): commit times of every group."""
    from bench.clearance import make_declaration, prepare

    tmp = scratch_dir("sc-commit-")
    prepare(f"sqlite:///{tmp / 'commit.db'}")
    from smartcustoms.clearance import checks, service
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.clearance.service import Context
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.platform.runtime import settle_heap

    with unit_of_work() as s:
        who = auth.principal_of(auth.find_user(s, "trader"))
        Context(s, date.today())
    checks.checks()
    settle_heap()
    decls = [DeclarationIn.model_validate(make_declaration(i, "c")) for i in range(filings)]
    with unit_of_work(read_only=True) as s:
        plans = [service.plan_batch(s, who, decls[i : i + GROUP]) for i in range(0, filings, GROUP)]
    ms: list[float] = []
    for plan in plans:
        t0 = time.perf_counter()
        with unit_of_work(immediate=True) as s:
            service.store_batch(s, who, plan)
        ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.002)  # the API's committer waits for the next filings between groups
    return {
        "groups": len(ms),
        "p50_ms": round(median(ms), 2),
        "p90_ms": round(pct(ms, 90), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "over_20ms": sum(m > 20 for m in ms),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filings", type=int, default=6000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args.filings)))
        return
    runs: dict[str, list[dict[str, Any]]] = {"inline": [], "background": []}
    for _ in range(args.pairs):
        for mode in runs:
            env = {**os.environ, "SMARTCUSTOMS_SQLITE_CHECKPOINT": mode, "PYTHONWARNINGS": "ignore"}
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--filings", str(args.filings)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {
        mode: {k: median([r[k] for r in rs]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "over_20ms")}
        for mode, rs in runs.items()
    }
    result = {
        "benchmark": "clearance_commit",
        "machine": machine(),
        "filings_per_run": args.filings,
        "group": GROUP,
        "median_of_runs": summary,
        "runs": runs,
    }
    print(f"{'checkpoints':12} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'groups > 20 ms':>15}")
    for mode, s in summary.items():
        print(
            f"{mode:12} {s['p50_ms']:8.1f} {s['p90_ms']:8.1f} {s['p99_ms']:8.1f} {s['max_ms']:8.1f} "
            f"{s['over_20ms']:15.0f}"
        )
    save("clearance_commit", result)


if __name__ == "__main__":
    main()
