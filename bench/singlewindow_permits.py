"""Benchmark: what the permit check and allowance draw add to a declaration's submission.

In-process `clearance.service.submit` on an SQLite file database, after warm-up, with a realistic
registry (the illustrative CSV plus synthetic requirements: several hundred) and thousands of permits;
every declaration has lines that need permits and cite them (so the check runs, locks, draws and
writes usage rows). The same filings are timed with the permits check and hook switched off, in
alternating rounds so both modes see the same machine load. Target: p99 difference under 5 ms.
Prints one JSON line and a table; writes bench/results/singlewindow_permits.json.

    python bench/singlewindow_permits.py [--filings 300] [--rounds 4] [--requirements 400] [--permits 4000]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import machine, median, pct, save, scratch_dir  # noqa: E402

AGENCIES = [
    ("BAPHIQ", "quarantine_certificate"),
    ("TFDA", "food_import_permit"),
    ("MOENV", "toxic_chemical_permit"),
    ("FANCA", "cites_permit"),
    ("MOENV", "waste_import_permit"),
    ("TFDA", "drug_import_permit"),
]


def prepare(url: str, n_requirements: int, n_permits: int, seed: int) -> list[tuple[str, list[str]]]:
    """Migrate, load tariff, users, rates, the registry and permits; return (code, permit numbers) to file."""
    os.environ["SMARTCUSTOMS_DATABASE_URL"] = url
    from smartcustoms.platform import db, settings
    from smartcustoms.platform.migrate import upgrade

    settings.get_settings.cache_clear()
    db.reset_engines()
    upgrade(url)
    from sqlalchemy import insert
    from tests.clearance.conftest import prepare_database

    from smartcustoms.clearance.service import tariff_index
    from smartcustoms.platform import auth
    from smartcustoms.singlewindow.permits import service
    from smartcustoms.singlewindow.permits.store import PermitRow

    prepare_database()
    rng = random.Random(seed)
    index = tariff_index(date.today())
    leaves = sorted(line.code for line in index.leaves() if line.general_rate is not None and line.code[:2] != "99")
    headings = sorted({c[:4] for c in leaves})
    chosen = rng.sample(headings, min(n_requirements, len(headings)))
    rows = []
    for i, prefix in enumerate(chosen):
        agency, ptype = AGENCIES[i % len(AGENCIES)]
        rows.append(f"{prefix},import,{agency},{ptype},Synthetic requirement {i},2020-01-01,,")
    csv_text = service.DEMO_REQUIREMENTS.read_text(encoding="utf-8") + "\n".join(rows) + "\n"
    with db.unit_of_work() as s:
        service.import_requirements(s, auth.SYSTEM, csv_text, source="bench")
        _v, req_index = service.requirement_index(s)
    today = date.today()
    parties = ["TW10000001", *(f"TW{10000000 + n}" for n in range(2, 200))]
    now = datetime.now(UTC)
    permits: list[dict[str, Any]] = []
    cite: dict[str, list[str]] = {}
    usable = [c for c in leaves if req_index.find(c, "import", today)]
    for n in range(n_permits):
        party = parties[n % len(parties)]
        code = rng.choice(usable)
        reqs = req_index.find(code, "import", today)
        req = reqs[n % len(reqs)]
        number = f"B-{n:06d}"
        permits.append(
            {
                "number": number,
                "agency": req.agency,
                "permit_type": req.permit_type,
                "direction": "import",
                "holder": party,
                "holder_name": None,
                "codes": [req.code_prefix],
                "quantity_allowance": Decimal(10**9),
                "quantity_unit": "kg",
                "quantity_used": Decimal(0),
                "value_allowance": None,
                "value_currency": None,
                "value_used": Decimal(0),
                "valid_from": today - timedelta(days=100),
                "valid_to": today + timedelta(days=300),
                "conditions": None,
                "status": "active",
                "version": 1,
                "issued_at": now,
                "issued_by": "bench",
                "updated_at": now,
            }
        )
        if party == "TW10000001":
            cite.setdefault(code, [])
    # the trader holds one permit per requirement of the codes it files
    for code in list(cite)[:40]:
        for j, req in enumerate(req_index.find(code, "import", today)):
            number = f"T-{code}-{j}"
            permits.append(
                {
                    **permits[0],
                    "number": number,
                    "agency": req.agency,
                    "permit_type": req.permit_type,
                    "holder": "TW10000001",
                    "codes": [req.code_prefix],
                }
            )
            cite[code].append(number)
    with db.unit_of_work() as s:
        s.execute(insert(PermitRow.__table__), permits)  # type: ignore[arg-type]
    return [(code, numbers) for code, numbers in cite.items() if numbers][:40]


def declaration(i: int, mode: str, lines: list[tuple[str, list[str]]]) -> dict[str, Any]:
    from tests.clearance.conftest import BASE

    d = copy.deepcopy(BASE)
    d["lrn"] = f"BENCH-{mode}-{i}"
    d["transport"]["arrival_date"] = date.today().isoformat()
    code, numbers = lines[i % len(lines)]
    d["items"][0].update(tariff_code=code, quantity_unit="kg", quantity="10", net_mass_kg="10", permits=numbers)
    d["items"][1]["tariff_code"] = "610910"
    return d


def run(filings: int, rounds: int, n_requirements: int, n_permits: int, manifests: bool = True) -> dict[str, Any]:
    tmp = scratch_dir("bench-swpermits-")
    url = f"sqlite:///{tmp}/bench.db"
    t0 = time.perf_counter()
    lines = prepare(url, n_requirements, n_permits, seed=11)
    setup_s = time.perf_counter() - t0
    from smartcustoms.clearance import checks, service
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.singlewindow.permits import service as permits
    from smartcustoms.singlewindow.permits.store import PermitRow, RequirementRow, UsageRow

    all_checks, all_hooks = checks.checks(), checks.hooks()
    mine = {"singlewindow-permits", "singlewindow-permits-allowance"}
    if manifests:  # the target is for permit AND manifest checks together
        mine |= {"singlewindow-manifests", "singlewindow-manifests-index"}
    with unit_of_work() as s:
        who = auth.principal_of(auth.find_user(s, "trader"))
        from sqlalchemy import func, select

        n_req = s.scalar(select(func.count()).select_from(RequirementRow))
        n_perm = s.scalar(select(func.count()).select_from(PermitRow))
    times: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    inside: list[float] = []
    """Wall time spent in the permits check and allowance hook, per filing (instrumented in place)."""
    spent = [0.0]
    originals = (permits.check_declaration, permits.reserve)

    def timed(fn: Any) -> Any:
        def run_timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += (time.perf_counter() - t) * 1000

        return run_timed

    permits.check_declaration, permits.reserve = timed(originals[0]), timed(originals[1])
    statuses: dict[str, dict[str, int]] = {"with": {}, "without": {}}
    seq = 0

    def file(mode: str, count: int, record: bool) -> None:
        nonlocal seq
        if mode == "with":
            checks._checks[:] = all_checks
            checks._hooks[:] = all_hooks
        else:
            checks._checks[:] = [c for c in all_checks if c.name not in mine]
            checks._hooks[:] = [h for h in all_hooks if h.name not in mine]
        for _ in range(count):
            seq += 1
            decl = DeclarationIn.model_validate(declaration(seq, mode, lines))
            spent[0] = 0.0
            start, start_cpu = time.perf_counter(), time.thread_time()
            with unit_of_work() as s:
                row, _created = service.submit(s, who, decl)
                status = row.status
            elapsed = (time.perf_counter() - start) * 1000
            elapsed_cpu = (time.thread_time() - start_cpu) * 1000
            if record:
                times[mode].append(elapsed)
                cpu[mode].append(elapsed_cpu)
                if mode == "with":
                    inside.append(spent[0])
                statuses[mode][status] = statuses[mode].get(status, 0) + 1

    file("with", 60, False)
    file("without", 60, False)
    per_round = max(1, filings // rounds)
    for r in range(rounds):
        for mode in ("with", "without") if r % 2 == 0 else ("without", "with"):
            file(mode, per_round, True)
    checks._checks[:] = all_checks
    checks._hooks[:] = all_hooks
    permits.check_declaration, permits.reserve = originals
    with unit_of_work() as s:
        from sqlalchemy import func, select

        usage_rows = s.scalar(select(func.count()).select_from(UsageRow))
    permits.forget_caches()
    w, wo = times["with"], times["without"]
    result = {
        "bench": "singlewindow_permits",
        "what": "clearance.service.submit in-process, SQLite file DB, with vs without the single window's checks and hooks",
        "toggled": sorted(mine),
        "requirements": n_req,
        "permits": n_perm,
        "filings_per_mode": len(w),
        "rounds": rounds,
        "statuses": statuses,
        "usage_rows_written": usage_rows,
        "with_ms": {"median": round(median(w), 3), "p90": round(pct(w, 90), 3), "p99": round(pct(w, 99), 3)},
        "without_ms": {"median": round(median(wo), 3), "p90": round(pct(wo, 90), 3), "p99": round(pct(wo, 99), 3)},
        "added_ms": {
            "median": round(median(w) - median(wo), 3),
            "p99": round(pct(w, 99) - pct(wo, 99), 3),
        },
        "cpu_with_ms": {"median": round(median(cpu["with"]), 3), "p99": round(pct(cpu["with"], 99), 3)},
        "cpu_without_ms": {"median": round(median(cpu["without"]), 3), "p99": round(pct(cpu["without"], 99), 3)},
        "cpu_added_ms": {
            "median": round(median(cpu["with"]) - median(cpu["without"]), 3),
            "p99": round(pct(cpu["with"], 99) - pct(cpu["without"], 99), 3),
        },
        "in_permits_code_ms": {
            "median": round(median(inside), 3),
            "p90": round(pct(inside, 90), 3),
            "p99": round(pct(inside, 99), 3),
        },
        "target_added_p99_ms": 5.0,
        "setup_s": round(setup_s, 1),
        "machine": machine(),
    }
    result["meets_target"] = {
        "wall_difference_p99": result["added_ms"]["p99"] < 5.0,
        "wall_inside_permits_code_p99": result["in_permits_code_ms"]["p99"] < 5.0,
        "cpu_difference_p99": result["cpu_added_ms"]["p99"] < 5.0,
    }
    result["load_average"] = os.getloadavg()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filings", type=int, default=400, help="timed filings per mode")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--requirements", type=int, default=400, help="synthetic requirements added to the CSV's")
    ap.add_argument("--permits", type=int, default=4000)
    ap.add_argument("--permits-only", action="store_true", help="toggle only the permits check, not the manifests one")
    args = ap.parse_args()
    result = run(args.filings, args.rounds, args.requirements, args.permits, manifests=not args.permits_only)
    save("singlewindow_permits", result)
    print()
    print(f"{'':24}{'median ms':>12}{'p90 ms':>10}{'p99 ms':>10}")
    for label, key in (("with single-window checks", "with_ms"), ("without", "without_ms")):
        m = result[key]
        print(f"{label:24}{m['median']:>12.3f}{m['p90']:>10.3f}{m['p99']:>10.3f}")
    a = result["added_ms"]
    print(f"{'difference':24}{a['median']:>12.3f}{'':>10}{a['p99']:>10.3f}")
    for label, key in (
        ("CPU with", "cpu_with_ms"),
        ("CPU without", "cpu_without_ms"),
        ("CPU difference", "cpu_added_ms"),
    ):
        m = result[key]
        print(f"{label:24}{m['median']:>12.3f}{'':>10}{m['p99']:>10.3f}")
    m = result["in_permits_code_ms"]
    print(f"{'inside permits code':24}{m['median']:>12.3f}{m['p90']:>10.3f}{m['p99']:>10.3f}")
    met = ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["meets_target"].items())
    print(
        f"registry {result['requirements']} requirements, {result['permits']} permits; "
        f"{result['filings_per_mode']} filings per mode; load average {result['load_average'][0]:.1f}; "
        f"target p99 < 5 ms: {met}"
    )


if __name__ == "__main__":
    main()
