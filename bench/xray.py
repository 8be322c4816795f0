"""X-ray triage benchmark: accuracy on a harder synthetic test set, false alarms, speed, memory, baseline.

The test set is generated with another seed than the shipped model's training data (seed 1) and harder
settings (more clutter, 40 % of threats hidden under dense objects). Reports AP@0.5 per class and mAP,
the same on the hidden-object split, threat false alarms per 100 benign scans, calibration error, and the
inference time per 1024×1024 scan (decode + detect + heat map, ONNX Runtime on this machine's CPUs)
measured in a separate process that also reports its peak memory. A colour-threshold blob detector runs
beside it as the baseline.

The alarm threshold is the one stored with each model (its operating point, chosen on held-out validation
scans for a false-alarm budget; 0.5 for a format-1 model that stores none). `--compare DIR` measures other
models on the same test scans (accuracy, alarms at their own threshold, calibration) beside it.

    PYTHONPATH=src /work/main/.venv/bin/python bench/xray.py [--n 150] [--seed 2026] [--model DIR] [--compare DIR ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, pct, save

from smartcustoms.xray import baseline, imaging, metrics, synth
from smartcustoms.xray.datasets import Sample, load_coco
from smartcustoms.xray.detector import SHIPPED, XrayDetector
from smartcustoms.xray.model import THREATS, Detection

ALARM = 0.5
"""Alarm threshold of the baseline (and of a model that stores none)."""


def _infer_only(model: str, images: list[str], runs: int) -> None:
    """Child process: time the full per-scan pipeline and report peak memory (RSS)."""
    det = XrayDetector.load(Path(model))
    data = [Path(p).read_bytes() for p in images]
    imaging.decode(data[0])
    det.explain(imaging.decode(data[0]))  # warm-up
    per_run: list[list[float]] = []
    for _ in range(runs):
        times = []
        for raw in data:
            t = time.perf_counter()
            scan = imaging.decode(raw)
            det.explain(scan)
            times.append((time.perf_counter() - t) * 1000)
        per_run.append(times)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "p50_ms": [round(pct(t, 50), 1) for t in per_run],
                "p95_ms": [round(pct(t, 95), 1) for t in per_run],
                "peak_rss_mib": round(peak_mib, 1),
            }
        )
    )


def _scores(preds: list[list[Detection]], samples: list[Sample], classes: list[str]) -> dict[str, Any]:
    truths = [(s.boxes, s.labels) for s in samples]
    per_class = {}
    for c in classes:
        ap = metrics.average_precision(preds, truths, c)
        if ap is not None:
            per_class[c] = round(ap, 3)
    threat_aps = [v for k, v in per_class.items() if k in THREATS]
    return {
        "ap50": per_class,
        "map50": round(statistics.mean(per_class.values()), 3) if per_class else 0.0,
        "threat_map50": round(statistics.mean(threat_aps), 3) if threat_aps else 0.0,
    }


def _alarms(preds: list[list[Detection]], samples: list[Sample], alarm: float) -> dict[str, float]:
    return metrics.alarm_stats(preds, [(s.boxes, s.labels) for s in samples], alarm, THREATS)


def _threats_only(s: Sample) -> Sample:
    kept = [(b, x) for b, x in zip(s.boxes, s.labels, strict=True) if x in THREATS]
    return Sample(s.image, tuple(b for b, _ in kept), tuple(x for _, x in kept), hidden=s.hidden)


def _calibration(preds: list[list[Detection]], samples: list[Sample], classes: list[str]) -> dict[str, Any]:
    """Expected calibration error on the test scans, over all detections and per threat class."""
    scores: list[float] = []
    hits: list[bool] = []
    labels: list[str] = []
    for p, s in zip(preds, samples, strict=True):
        ordered = sorted(p, key=lambda d: -d.score)
        scores += [d.score for d in ordered]
        labels += [d.label for d in ordered]
        hits += metrics.match(ordered, s.boxes, s.labels)
    per_class = {}
    for c in classes:
        idx = [i for i, x in enumerate(labels) if x == c]
        if c in THREATS and idx:
            per_class[c] = round(
                metrics.expected_calibration_error([scores[i] for i in idx], [hits[i] for i in idx]), 4
            )
    high = [h for sc, h in zip(scores, hits, strict=True) if sc >= 0.5]
    return {
        "ece_test": round(metrics.expected_calibration_error(scores, hits), 4),
        "ece_test_threats": per_class,
        "precision_at_or_above_0.5": round(sum(high) / len(high), 3) if high else None,
        "detections_at_or_above_0.5": len(high),
    }


def _evaluate(
    preds: list[list[Detection]], samples: list[Sample], classes: list[str], alarm: float = ALARM
) -> dict[str, Any]:
    hidden = [i for i, s in enumerate(samples) if s.hidden]
    hidden_samples = [_threats_only(samples[i]) for i in hidden]
    hidden_preds = [[d for d in preds[i] if d.label in THREATS] for i in hidden]
    out: dict[str, Any] = {
        "all": _scores(preds, samples, classes),
        "alarm_threshold": alarm,
        **_alarms(preds, samples, alarm),
    }
    out["operating_points"] = {str(a): _alarms(preds, samples, a) for a in (0.1, 0.2, 0.3, 0.4, 0.5)}
    out["hidden"] = {
        "scans": len(hidden),
        **_scores(hidden_preds, hidden_samples, [c for c in classes if c in THREATS]),
        "alarms": _alarms([preds[i] for i in hidden], [samples[i] for i in hidden], alarm),
    }
    out.update(_calibration(preds, samples, classes))
    return out


def _model_summary(det: XrayDetector, directory: str) -> dict[str, Any]:
    card = det.card_
    return {
        "version": det.version_,
        "format_version": card.get("format_version"),
        "onnx_bytes": (Path(directory) / "detector.onnx").stat().st_size,
        "input_size": det.input_size,
        "training_seconds": card.get("metrics", {}).get("training_seconds"),
        "training_epochs": len(card.get("metrics", {}).get("history", [])),
        "training_data": card.get("training_data", {}).get("description"),
        "validation_map50": card.get("metrics", {}).get("validation", {}).get("map50"),
        "calibration": (card.get("calibration") or {}).get("method"),
        "operating_point": card.get("operating_point"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150, help="test scans")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--model", default=str(SHIPPED))
    ap.add_argument("--compare", action="append", default=[], help="other model directories to measure beside it")
    ap.add_argument("--timing-scans", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--infer-only", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.infer_only is not None:
        _infer_only(args.model, args.infer_only, args.runs)
        return

    det = XrayDetector.load(Path(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        synth.generate(root, args.n, args.seed, synth.Settings.named("hard", args.size), difficulty="hard")
        gen_s = time.perf_counter() - t
        samples = load_coco(root)
        others = [XrayDetector.load(Path(d)) for d in args.compare]
        model_preds: list[list[Detection]] = []
        base_preds: list[list[Detection]] = []
        other_preds: list[list[list[Detection]]] = [[] for _ in others]
        for s in samples:
            scan = imaging.read_file(str(s.image))
            model_preds.append(det.predict(scan))
            base_preds.append(baseline.detect(scan))
            for o, preds in zip(others, other_preds, strict=True):
                preds.append(o.predict(scan))
        classes = list(det.classes_)
        result_model = _evaluate(model_preds, samples, classes, det.alarm_threshold_)
        result_base = _evaluate(base_preds, samples, classes)
        compared = [
            {"model": _model_summary(o, d), **_evaluate(p, samples, classes, o.alarm_threshold_)}
            for o, d, p in zip(others, args.compare, other_preds, strict=True)
        ]
        timing_images = [str(s.image) for s in samples[: args.timing_scans]]
        child = subprocess.run(
            [sys.executable, __file__, "--model", args.model, "--runs", str(args.runs), "--infer-only", *timing_images],
            capture_output=True,
            text=True,
            check=True,
        )
        timing = json.loads(child.stdout.strip().splitlines()[-1])
        base_times = []
        for path in timing_images:
            t = time.perf_counter()
            baseline.detect(imaging.read_file(path))
            base_times.append((time.perf_counter() - t) * 1000)

    result: dict[str, Any] = {
        "benchmark": "xray",
        "machine": machine(),
        "model": _model_summary(det, args.model),
        "test_set": {
            "scans": args.n,
            "seed": args.seed,
            "size": args.size,
            "difficulty": "hard",
            "hidden_scans": sum(1 for s in samples if s.hidden),
            "generation_seconds": round(gen_s, 1),
        },
        "detector": result_model,
        "baseline_colour_blobs": result_base,
        "compared_models": compared,
        "inference": {
            "scan": f"{args.size}x{args.size} PNG, decode + detect + heat map",
            "scans_timed": len(timing_images),
            "runs": args.runs,
            "p50_ms_median_of_runs": round(median(timing["p50_ms"]), 1),
            "p95_ms_median_of_runs": round(median(timing["p95_ms"]), 1),
            "p95_ms_runs": timing["p95_ms"],
            "target_p95_ms": 300,
            "peak_rss_mib": timing["peak_rss_mib"],
            "baseline_p50_ms": round(median(base_times), 1),
        },
    }
    save("xray", result)
    print()
    columns = [("detector", result_model), *((f"cmp{i + 1}", c) for i, c in enumerate(compared))]
    columns.append(("baseline", result_base))
    print(f"{'':30}" + "".join(f"{name:>12}" for name, _ in columns))

    def row(name: str, get: Any) -> None:
        print(f"{name:30}" + "".join(f"{get(r)!s:>12}" for _, r in columns))

    row("alarm threshold (stored)", lambda r: r["alarm_threshold"])
    row("threat scans alarmed %", lambda r: r["threat_scans_alarmed_pct"])
    row("threat recall at alarm", lambda r: r["threat_recall_at_alarm"])
    row("false alarms /100 benign", lambda r: r["false_alarms_per_100_benign"])
    row("hidden: threat scans alarmed %", lambda r: r["hidden"]["alarms"]["threat_scans_alarmed_pct"])
    row("mAP@0.5 (all classes)", lambda r: r["all"]["map50"])
    row("mAP@0.5 (threats)", lambda r: r["all"]["threat_map50"])
    row("mAP@0.5 hidden split", lambda r: r["hidden"]["threat_map50"])
    row("ECE (test)", lambda r: r["ece_test"])
    for label in classes:
        row(f"  AP@0.5 {label}", lambda r, label=label: r["all"]["ap50"].get(label, "-"))
    for i, other in enumerate(compared):
        print(f"cmp{i + 1} = {other['model']['version']}")
    print(
        f"detector {det.version_}: p50 {result['inference']['p50_ms_median_of_runs']} ms, "
        f"p95 {result['inference']['p95_ms_median_of_runs']} ms (target 300), peak RSS {timing['peak_rss_mib']} MiB"
    )
    print("detector operating points (confidence: false alarms /100 benign, threat recall, threat scans alarmed %):")
    for a, v in result_model["operating_points"].items():
        print(
            f"  {a}: {v['false_alarms_per_100_benign']}, {v['threat_recall_at_alarm']}, {v['threat_scans_alarmed_pct']}"
        )


if __name__ == "__main__":
    main()
