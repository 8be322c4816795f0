"""Tariff benchmark: import time of the US HTS (~30k lines) on SQLite, index load, and code look-ups from the
in-memory index against a plain SQL query per look-up (the baseline). Prints one JSON line and a table and
writes bench/results/tariff.json.

    PYTHONPATH=src /work/main/.venv/bin/python bench/tariff.py [PATH_TO_htsdata.csv]
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from _common import scratch_dir
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "hs" / "us_hts_2025_usitc" / "htsdata.csv"


def main() -> None:
    csv_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    tmp = scratch_dir("tariff-bench-")
    os.environ["SMARTCUSTOMS_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.platform.migrate import upgrade
    from smartcustoms.tariff import service
    from smartcustoms.tariff.store import LineRow

    upgrade()
    imports = []
    report = None
    for _ in range(3):
        t0 = time.perf_counter()
        with unit_of_work() as s:
            report = service.import_schedule(s, "us-hts", csv_path)
        imports.append(time.perf_counter() - t0)
    assert report is not None
    loads = []
    for _ in range(3):
        service.invalidate_cache()
        t0 = time.perf_counter()
        index = service.get_index("us-hts", date(2025, 6, 1))
        loads.append(time.perf_counter() - t0)
    codes = [c for c in index.codes if not c.startswith("S")]
    rng = random.Random(7)
    sample = [rng.choice(codes) for _ in range(20000)]
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for code in sample:
            idx = service.get_index("us-hts", date(2025, 6, 1))
            line = idx.get(code)
            assert line is not None
        runs.append(len(sample) / (time.perf_counter() - t0))
    base_sample = sample[:2000]
    base_runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        with unit_of_work() as s:
            sid = index.schedule.id
            for code in base_sample:
                row = s.execute(
                    select(LineRow.code, LineRow.rates).where(LineRow.schedule_id == sid, LineRow.code == code)
                ).first()
                assert row is not None
        base_runs.append(len(base_sample) / (time.perf_counter() - t0))
    result = {
        "bench": "tariff",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg": os.getloadavg(),
        },
        "us_hts_lines": report.lines,
        "us_hts_rates_parsed_share": round(report.parse_share, 5),
        "import_s_median_of_3": round(statistics.median(imports), 3),
        "index_load_s_median_of_3": round(statistics.median(loads), 3),
        "lookups_per_s_index_median_of_5": round(statistics.median(runs)),
        "lookups_per_s_sql_baseline_median_of_3": round(statistics.median(base_runs)),
    }
    print(json.dumps(result))
    out = ROOT / "bench" / "results" / "tariff.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'measure':45} value")
    for key in (
        "us_hts_lines",
        "import_s_median_of_3",
        "index_load_s_median_of_3",
        "lookups_per_s_index_median_of_5",
        "lookups_per_s_sql_baseline_median_of_3",
    ):
        print(f"{key:45} {result[key]}")


if __name__ == "__main__":
    main()
