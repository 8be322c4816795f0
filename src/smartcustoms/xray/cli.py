"""`smartcustoms xray ...`: synthesise scans, train and evaluate the detector, detect, export feedback, retrain."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.xray import datasets, imaging, synth
from smartcustoms.xray.detector import SHIPPED, XrayDetector, evaluate_predictions
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.model import THREATS

app = typer.Typer(no_args_is_help=True, help="X-ray image triage: synthetic scans, training, detection, feedback.")
T = TypeVar("T")


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body; problems are printed one per line and the command exits 2."""
    try:
        return fn()
    except DomainError as exc:
        for p in exc.problems:
            loc = ".".join(str(x) for x in p.path) or "-"
            typer.echo(f"error [{p.code}] {loc}: {p.message}", err=True)
        raise typer.Exit(2) from None


def _refuse(problem: Problem) -> None:
    def fail() -> None:
        raise XrayError(problem)

    _guard(fail)


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for images/ and annotations.json (COCO)"),
    n: int = typer.Option(100, "--n", min=1, max=1_000_000, help="Number of scans"),
    seed: int = typer.Option(0, "--seed", help="Same seed, same scans"),
    size: int = typer.Option(1024, "--size", min=128, max=4096, help="Side of the square scans in pixels"),
    difficulty: str = typer.Option(
        "normal", "--difficulty", help="easy, normal or hard (more clutter, hidden objects)"
    ),
) -> None:
    """Generate seeded synthetic dual-energy scans with COCO annotations."""
    if difficulty not in ("easy", "normal", "hard"):
        _refuse(Problem("bad_difficulty", ("difficulty",), t("easy, normal or hard")))
    started = time.perf_counter()
    path = synth.generate(out, n, seed, synth.Settings.named(difficulty, size), difficulty=difficulty)
    typer.echo(json.dumps({"annotations": str(path), "images": n, "seconds": round(time.perf_counter() - started, 1)}))


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Training data folder (or COCO JSON file)"),
    fmt: str = typer.Option("coco", "--format", help="coco, sixray or opixray"),
    out: Path = typer.Option(..., "--out", help="Model directory to write (detector.onnx + model.json)"),
    val: Path | None = typer.Option(None, "--val", help="Validation data in the same format (default: 15 % of --data)"),
    epochs: int = typer.Option(30, "--epochs", min=1),
    input_size: int = typer.Option(256, "--input-size", min=64, max=1024),
    width: int = typer.Option(16, "--width", min=4, max=128),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    learning_rate: float = typer.Option(4e-3, "--learning-rate"),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop training after this long"),
    seed: int = typer.Option(0, "--seed"),
    description: str = typer.Option("", "--description", help="Training data description for the model card"),
    init: Path | None = typer.Option(None, "--init", help="Start from this model's weights (fine-tune)"),
    hard_augment: bool = typer.Option(
        False, "--hard-augment", help="Also rescale, add noise and lay dense slabs over objects while training"
    ),
    hidden_weight: float = typer.Option(
        1.0, "--hidden-weight", min=1.0, help="Scans with a hidden target count N times"
    ),
) -> None:
    """Train the detector (PyTorch, CPU), export to ONNX, calibrate, and write a versioned model directory."""
    if input_size % 32:
        _refuse(Problem("bad_input_size", ("input_size",), t("A multiple of 32")))

    def run() -> dict[str, Any]:
        samples = datasets.load(data, fmt)
        val_samples = datasets.load(val, fmt) if val else []
        det = XrayDetector(
            input_size=input_size,
            width=width,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            max_minutes=max_minutes,
            init_from=str(init) if init else None,
            hard_augment=hard_augment,
            hidden_weight=hidden_weight,
        )
        det.fit(samples, val_samples, data_description=description or f"{fmt} data from {data}", log=_echo)
        det.save(out)
        card = det.card_
        return {"model": str(out), "version": det.version_, **card["metrics"]["validation"]} | {
            "training_seconds": card["metrics"]["training_seconds"]
        }

    typer.echo(json.dumps(_guard(run)))


@app.command("calibrate")
def calibrate_cmd(
    model: Path = typer.Option(..., "--model", help="Model directory to calibrate"),
    data: Path = typer.Option(..., "--data", help="Held-out annotated scans (not used to train it)"),
    fmt: str = typer.Option("coco", "--format", help="coco, sixray or opixray"),
    false_alarms: float = typer.Option(
        10.0, "--false-alarms", min=0.0, help="Threat false alarms allowed per 100 benign scans"
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the recalibrated model here (default: in place)"),
    description: str = typer.Option("", "--description", help="What the held-out scans are, for the model card"),
) -> None:
    """Fit per-class confidence calibration on held-out scans and store the alarm threshold that keeps false
    alarms within the budget; writes a new model version (same weights)."""

    def run() -> dict[str, Any]:
        det = XrayDetector.load(model)
        det.calibrate(datasets.load(data, fmt), false_alarm_budget=false_alarms, description=description or None)
        det.save(out or model)
        card = det.card_
        return {
            "model": str(out or model),
            "version": det.version_,
            "operating_point": card["operating_point"],
            **card["metrics"]["validation"],
        }

    typer.echo(json.dumps(_guard(run)))


@app.command("detect")
def detect_cmd(
    images: list[Path] = typer.Argument(..., help="Scans: PNG, JPEG or TIFF"),
    model: Path = typer.Option(SHIPPED, "--model", help="Model directory (default: the shipped model)"),
    out: Path = typer.Option(..., "--out", help="JSON Lines file, one line per scan"),
    min_score: float = typer.Option(0.3, "--min-score", min=0.0, max=1.0, help="Least calibrated confidence"),
) -> None:
    """Detect objects in scans with ONNX Runtime; exits 2 if any scan could not be read (others are written)."""
    det = _guard(lambda: XrayDetector.load(model))
    failed = 0
    with out.open("w", encoding="utf-8") as f:
        for path in images:
            try:
                scan = imaging.read_file(str(path))
                started = time.perf_counter()
                dets, _ = det.explain(scan, min_score=min_score)
                ms = (time.perf_counter() - started) * 1000
            except XrayError as exc:
                failed += 1
                for p in exc.problems:
                    typer.echo(f"error [{p.code}] {path}: {p.message}", err=True)
                continue
            line = {
                "image": str(path),
                "width": scan.width,
                "height": scan.height,
                "model_version": det.version_,
                "inference_ms": round(ms, 1),
                "alarm_threshold": det.alarm_threshold_,
                "detections": [
                    d.as_dict() | {"alarm": d.label in THREATS and d.score >= det.alarm_threshold_} for d in dets
                ],
            }
            f.write(json.dumps(line) + "\n")
    typer.echo(json.dumps({"scans": len(images) - failed, "failed": failed, "out": str(out), "model": det.version_}))
    if failed:
        raise typer.Exit(2)


@app.command("evaluate")
def evaluate_cmd(
    data: Path = typer.Option(..., "--data"),
    fmt: str = typer.Option("coco", "--format"),
    model: Path = typer.Option(SHIPPED, "--model"),
) -> None:
    """AP@0.5 per class and mAP of a model on annotated scans."""

    def run() -> dict[str, Any]:
        det = XrayDetector.load(model)
        samples = datasets.load(data, fmt)
        preds = [det.predict(imaging.read_file(str(s.image))) for s in samples]
        return {"model": det.version_, **evaluate_predictions(preds, samples, det.classes_)}

    typer.echo(json.dumps(_guard(run)))


@app.command("model-info")
def model_info(model: Path = typer.Option(SHIPPED, "--model")) -> None:
    """The model card: version, classes, training data, validation metrics, hash."""
    card = _guard(lambda: XrayDetector.load(model)).card_
    card = {**card, "metrics": {k: v for k, v in card.get("metrics", {}).items() if k != "history"}}
    typer.echo(json.dumps(card, indent=1))


@app.command("models")
def models_cmd() -> None:
    """Registered model versions, newest first, and the active one."""
    from smartcustoms.xray.registry import ModelRegistry

    reg = ModelRegistry()
    typer.echo(
        json.dumps({"active": reg.active_version(), "root": str(reg.root), "versions": reg.versions()}, indent=1)
    )


@app.command("register")
def register_cmd(
    model: Path = typer.Argument(..., help="Model directory to register"),
    activate: bool = typer.Option(True, "--activate/--no-activate"),
) -> None:
    """Copy a model directory into the registry (checked on the way) and, by default, put it in service."""
    from smartcustoms.xray.registry import ModelRegistry

    version = _guard(lambda: ModelRegistry().register(model, activate=activate))
    typer.echo(json.dumps({"registered": version, "active": activate}))


@app.command("activate")
def activate_cmd(version: str = typer.Argument(...)) -> None:
    """Put a registered version in service (or roll back to an earlier one)."""
    from smartcustoms.xray.registry import ModelRegistry

    _guard(lambda: ModelRegistry().activate(version))
    typer.echo(json.dumps({"active": version}))


@app.command("export-feedback")
def export_feedback_cmd(out: Path = typer.Option(..., "--out", help="COCO folder to write")) -> None:
    """Officer-reviewed scans (confirmed boxes; all-rejected scans as negatives) as COCO training data."""
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.xray import service

    def run() -> dict[str, Any]:
        with unit_of_work() as session:
            path, n = service.export_feedback(session, out)
        return {"annotations": str(path), "scans": n}

    typer.echo(json.dumps(_guard(run)))


@app.command("retrain")
def retrain_cmd(
    out: Path = typer.Option(..., "--out", help="New model directory"),
    base_data: Path | None = typer.Option(None, "--base-data", help="Earlier training data to keep (COCO)"),
    epochs: int = typer.Option(30, "--epochs", min=1),
    max_minutes: float | None = typer.Option(None, "--max-minutes"),
    input_size: int = typer.Option(256, "--input-size", min=64, max=1024),
    width: int = typer.Option(16, "--width", min=4, max=128),
    seed: int = typer.Option(0, "--seed"),
    init: Path | None = typer.Option(None, "--init", help="Start from this model's weights (fine-tune)"),
    activate: bool = typer.Option(False, "--activate", help="Register the new model and put it in service"),
) -> None:
    """One command: export reviewed scans, add the base data, train, write the model (and activate it)."""
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.xray import service

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            with unit_of_work() as session:
                path, n = service.export_feedback(session, Path(tmp) / "feedback")
            samples = datasets.load_coco(path) if n else []
            base = datasets.load_coco(base_data) if base_data else []
            if not samples and not base:
                raise XrayError(Problem("no_training_data", ("data",), t("No reviewed scans and no --base-data")))
            det = XrayDetector(
                input_size=input_size,
                width=width,
                epochs=epochs,
                max_minutes=max_minutes,
                seed=seed,
                init_from=str(init) if init else None,
            )
            det.fit(
                [*base, *samples],
                data_description=f"{n} officer-reviewed scans"
                + (f" + {len(base)} scans from {base_data}" if base else ""),
                log=_echo,
            )
            det.save(out)
            if activate:
                from smartcustoms.xray.registry import ModelRegistry

                ModelRegistry().register(out)
        return {"model": str(out), "version": det.version_, "feedback_scans": n, **det.card_["metrics"]["validation"]}

    typer.echo(json.dumps(_guard(run)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
