"""Benchmark of manifest matching: a 10,000-line sea manifest against 10,000 declarations already filed.

Target: matching a manifest of 10,000 lines to declarations in under 2 s (`rematch_s`). Per run (fresh B/Ls):
- 10,000 declarations are filed through `clearance.service.submit_batch` (setup, not timed), each on its
  own B/L; about 3 % of the manifest lines then disagree (weight, consignee) so findings are raised;
- `file_manifest` is timed (parse, description chapters from the tariff classifier, insert, match,
  raise findings; the time inside `clearance.service.raise_findings` is reported on its own), and
  `rematch` alone (load lines and declarations, match, store coverage; nothing new to raise);
- the pure `model.match` on the same data in memory;
- baseline: the naive way, one indexed SQL look-up per manifest line, then the same comparison.

    PYTHONPATH=src python bench/singlewindow_manifests.py [--lines 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.clearance.conftest import BASE  # noqa: E402

from bench._common import machine, median, save, scratch_dir  # noqa: E402

TARGET_S = 2.0
GOODS = [
    ("851713", "Smartphones, 128 GB"),
    ("610910", "Men's T-shirts of cotton, knitted"),
    ("847130", "Laptop computers"),
    ("940360", "Wooden furniture, chairs"),
    ("420221", "Handbags of leather"),
    ("330499", "Cosmetics, skin care creams"),
    ("950300", "Toys, plastic building blocks"),
    ("020230", "Frozen boneless beef"),
]


def _declaration(i: int, run: str, arrival: date) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["lrn"] = f"MB-{run}-{i}"
    code, text = GOODS[i % len(GOODS)]
    d["items"] = [dict(d["items"][0], tariff_code=code, description=text, gross_mass_kg="15", net_mass_kg="12.5")]
    d["invoice_total"] = d["items"][0]["value"]
    d["transport"]["arrival_date"] = arrival.isoformat()
    d["transport_documents"] = [{"type": "BL", "reference": f"B{run}{i:07d}"}]
    return d


def _line(i: int, run: str) -> dict[str, Any]:
    _, text = GOODS[i % len(GOODS)]
    odd = i % 33 == 0
    return {
        "doc_ref": f"B{run}{i:07d}",
        "shipper": {"name": "Shenzhen Phones Ltd"},
        "consignee": {"name": "Kaohsiung Other Co." if i % 97 == 0 else "Formosa Trading Co.", "id": None},
        "description": f"STC 10 cartons {text.lower()}",
        "packages": 10,
        "gross_weight_kg": "40" if odd else "15",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    tmp = scratch_dir("bench-manifests-")
    url = f"sqlite:///{tmp}/bench.db"
    os.environ["SMARTCUSTOMS_DATABASE_URL"] = url
    from smartcustoms.platform import db, settings
    from smartcustoms.platform.migrate import upgrade

    settings.get_settings.cache_clear()
    db.reset_engines()
    upgrade(url)
    from sqlalchemy import select
    from tests.clearance.conftest import prepare_database

    from smartcustoms.clearance import service as clearance
    from smartcustoms.clearance.schema import DeclarationIn
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.singlewindow.manifests import chapters, service
    from smartcustoms.singlewindow.manifests.model import match
    from smartcustoms.singlewindow.manifests.store import DeclaredRefRow, DeclaredRow, LineRow, ManifestRow

    prepare_database()
    with unit_of_work() as s:
        trader = auth.principal_of(auth.find_user(s, "trader"))
        carrier = auth.principal_of(auth.find_user(s, "carrier"))

    t0 = time.perf_counter()
    chapters.chapters_of([f"STC 10 cartons {t.lower()}" for _, t in GOODS])
    classifier_cold_s = time.perf_counter() - t0

    runs: list[dict[str, Any]] = []
    for run_no in range(args.runs):
        run = f"{run_no}{int(time.time()) % 10000:04d}"
        arrival = date.today() + timedelta(days=2)
        t0 = time.perf_counter()
        for start in range(0, args.lines, 1000):
            decls = [
                DeclarationIn.model_validate(_declaration(i, run, arrival))
                for i in range(start, min(args.lines, start + 1000))
            ]
            with unit_of_work() as s:
                result = clearance.submit_batch(s, trader, decls)
                assert not result.rejected, result.rejected[:2]
        setup_s = time.perf_counter() - t0
        body = {
            "voyage": f"V{run}",
            "mode": "sea",
            "port": "TWKHH",
            "expected_arrival": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "lines": [_line(i, run) for i in range(args.lines)],
        }
        raising = [0.0, 0]
        original = clearance.raise_findings

        def timed_raise(*a: Any, raising: list[Any] = raising, original: Any = original, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                raising[0] += time.perf_counter() - t
                raising[1] += 1

        clearance.raise_findings = timed_raise  # type: ignore[assignment]
        t0 = time.perf_counter()
        try:
            with unit_of_work() as s:
                row, summary = service.file_manifest(s, carrier, body)
                manifest_id = row.id
        finally:
            clearance.raise_findings = original  # type: ignore[assignment]
        file_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with unit_of_work() as s:
            again = service.rematch(s, s.get(ManifestRow, manifest_id))
        rematch_s = time.perf_counter() - t0

        with unit_of_work() as s:
            m = s.get(ManifestRow, manifest_id)
            assert m is not None
            facts = service.lines_for_docs(
                s, s.scalars(select(LineRow.doc_ref).where(LineRow.manifest_id == manifest_id)).all()
            )
            declared = service.declarations_for_docs(s, {ln.doc_ref for ln in facts})
            goods = [service.goods_from_facts(r, d.facts) for r, d in declared.items()]
            rules = service.current_rules(s)
        t0 = time.perf_counter()
        pure = match(facts, goods, rules)
        model_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        naive_found = 0
        with unit_of_work() as s:
            for ln in facts:
                refs = list(s.scalars(select(DeclaredRefRow.reference).where(DeclaredRefRow.doc_ref == ln.doc_ref)))
                decls_rows = list(s.scalars(select(DeclaredRow).where(DeclaredRow.reference.in_(refs))))
                gs = [service.goods_from_facts(d.reference, d.facts) for d in decls_rows]
                naive_found += len(match([ln], gs, rules).discrepancies)
        baseline_s = time.perf_counter() - t0
        assert naive_found == len(pure.discrepancies)
        runs.append(
            {
                "setup_file_declarations_s": round(setup_s, 2),
                "file_manifest_s": round(file_s, 3),
                "of_which_raise_findings_s": round(raising[0], 3),
                "raise_findings_calls": raising[1],
                "rematch_s": round(rematch_s, 3),
                "model_match_s": round(model_s, 3),
                "baseline_per_line_queries_s": round(baseline_s, 3),
                "matched_lines": summary.matched_lines,
                "discrepancies": len(summary.discrepancies),
                "declarations_with_findings": len(summary.raised),
                "rematch_raised": len(again.raised),
            }
        )
        print(runs[-1], flush=True)

    def med(key: str) -> float:
        return round(median([r[key] for r in runs]), 3)

    result = {
        "benchmark": "singlewindow_manifests",
        "machine": machine(),
        "database": "sqlite",
        "lines": args.lines,
        "declarations": args.lines,
        "target_s": TARGET_S,
        "classifier_cold_s": round(classifier_cold_s, 2),
        "medians": {
            "file_manifest_s": med("file_manifest_s"),
            "of_which_raise_findings_s": med("of_which_raise_findings_s"),
            "rematch_s": med("rematch_s"),
            "model_match_s": med("model_match_s"),
            "baseline_per_line_queries_s": med("baseline_per_line_queries_s"),
        },
        "target_measure": "rematch_s: load the manifest's lines and the declarations naming them, match, store coverage",
        "meets_target": med("rematch_s") < TARGET_S,
        "runs": runs,
    }
    save("singlewindow_manifests", result)
    print()
    print(f"{'step (median of ' + str(len(runs)) + ' runs)':<44}{'seconds':>10}")
    for key, value in result["medians"].items():
        print(f"{key:<44}{value:>10.3f}")
    print(f"{'target (rematch_s, 10,000 lines)':<44}{TARGET_S:>10.3f}")


if __name__ == "__main__":
    main()
