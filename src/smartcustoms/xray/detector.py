"""The X-ray detector: an anchor-free CenterNet-style network trained with PyTorch, run with ONNX Runtime.

Scikit-learn shape: the constructor takes hyper-parameters; `fit` trains (PyTorch, imported only there),
exports to ONNX and calibrates confidences on held-out scans (Platt scaling on the peak logit), so a score
reads as the probability the box is right; `predict` / `explain` run ONNX Runtime only; `save` / `load`
write a versioned directory: detector.onnx + model.json (version, classes, data description, metrics,
calibration, SHA-256 of the weights). Every stored result carries `version_`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.xray import metrics
from smartcustoms.xray.datasets import Sample, describe
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.imaging import Scan, read_file
from smartcustoms.xray.model import THREATS, Box, Detection

FORMAT_VERSION = 2
"""Bumped when the network's inputs/outputs or the card change shape; older loaders refuse newer models.
2: per-class calibration and a stored alarm threshold (operating point)."""
READABLE_FORMATS = (1, 2)
"""Format 1 (one Platt scaling for every class, no operating point) still loads: alarm threshold 0.5."""
DEFAULT_ALARM = 0.5
"""Alarm threshold of a model that stores none (format 1)."""
FALSE_ALARM_BUDGET = 10.0
"""Threat false alarms per 100 benign scans the default operating point allows on the validation scans."""
MODEL_FILE = "detector.onnx"
CARD_FILE = "model.json"
TORCH_FILE = "weights.pt"
"""PyTorch weights kept beside the ONNX graph so a retraining can start from this model (not used to infer)."""
STRIDE = 4
SHIPPED = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw peak score, p = sigmoid(a · logit(raw) + b), per class where the validation
    scans hold enough of it (the classes differ: a raw 0.3 for a handgun is not a raw 0.3 for meat), else the
    scaling fitted on all classes together."""

    a: float = 1.0
    b: float = 0.0
    per_class: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __call__(self, raw: np.ndarray, labels: Sequence[str] | None = None) -> np.ndarray:
        r = np.clip(raw, 1e-6, 1 - 1e-6)
        if labels is None or not self.per_class:
            a, b = np.full(r.shape, self.a), np.full(r.shape, self.b)
        else:
            pairs = [self.per_class.get(label, (self.a, self.b)) for label in labels]
            a, b = np.array([x for x, _ in pairs]), np.array([y for _, y in pairs])
        z = a * np.log(r / (1 - r)) + b
        out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "platt-per-class" if self.per_class else "platt",
            "a": self.a,
            "b": self.b,
            "classes": {k: {"a": a, "b": b} for k, (a, b) in sorted(self.per_class.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        per_class = {k: (float(v["a"]), float(v["b"])) for k, v in (data.get("classes") or {}).items()}
        return cls(float(data["a"]), float(data["b"]), per_class)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Resize keeping aspect into size×size, padded white (empty belt); returns CHW float32 and the scale."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    im = Image.fromarray(rgb)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    canvas[:nh, :nw] = np.asarray(im)
    chw = np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32) / 255.0
    return chw, scale


def decode_peaks(
    peaks: np.ndarray, size: np.ndarray, offset: np.ndarray, *, floor: float, top_k: int
) -> list[tuple[int, float, float, float, float, float]]:
    """(class, raw score, cx, cy, w, h) in input pixels for the top-k local maxima above `floor`."""
    _, gh, gw = peaks.shape
    flat = peaks.reshape(-1)
    k = min(top_k, flat.size)
    idx = np.argpartition(-flat, k - 1)[:k]
    idx = idx[flat[idx] >= floor]
    idx = idx[np.argsort(-flat[idx])]
    out = []
    for i in idx:
        cls, rest = divmod(int(i), gh * gw)
        y, x = divmod(rest, gw)
        cx = (x + float(offset[0, y, x])) * STRIDE
        cy = (y + float(offset[1, y, x])) * STRIDE
        w = math.exp(min(float(size[0, y, x]), 8.0)) * STRIDE
        h = math.exp(min(float(size[1, y, x]), 8.0)) * STRIDE
        out.append((cls, float(flat[i]), cx, cy, w, h))
    return out


class XrayDetector:
    """Detect restricted goods and their benign look-alikes in a scan."""

    def __init__(
        self,
        input_size: int = 320,
        width: int = 16,
        epochs: int = 30,
        batch_size: int = 16,
        learning_rate: float = 3e-3,
        seed: int = 0,
        max_minutes: float | None = None,
        score_floor: float = 0.05,
        max_detections: int = 50,
        threads: int = 2,
        init_from: str | None = None,
        hard_augment: bool = False,
        hidden_weight: float = 1.0,
        false_alarm_budget: float = FALSE_ALARM_BUDGET,
    ) -> None:
        self.input_size = input_size
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.max_minutes = max_minutes
        self.score_floor = score_floor
        self.max_detections = max_detections
        self.threads = threads
        self.init_from = init_from
        self.hard_augment = hard_augment
        self.hidden_weight = hidden_weight
        self.false_alarm_budget = false_alarm_budget
        self.classes_: tuple[str, ...] = ()
        self.calibration_ = Calibration()
        self.alarm_threshold_ = DEFAULT_ALARM
        self.source_dir_: Path | None = None
        self.card_: dict[str, Any] = {}
        self.version_ = ""
        self.net_: Any = None
        self._onnx: bytes = b""
        self._session: Any = None

    def params(self) -> dict[str, Any]:
        keys = (
            "input_size",
            "width",
            "epochs",
            "batch_size",
            "learning_rate",
            "seed",
            "max_minutes",
            "score_floor",
            "init_from",
            "hard_augment",
            "hidden_weight",
            "false_alarm_budget",
        )
        return {k: getattr(self, k) for k in keys}

    # ------------------------------------------------------------------------------------------ training

    def fit(
        self,
        train: Sequence[Sample],
        val: Sequence[Sample] = (),
        *,
        data_description: str = "",
        log: Callable[[str], None] | None = None,
    ) -> XrayDetector:
        """Train on `train`, export to ONNX, calibrate and measure on `val` (a 15 % split of train if empty)."""
        from smartcustoms.xray import training  # PyTorch is only needed here

        if not train:
            raise XrayError(Problem("no_training_data", ("data",), t("No annotated scans to train on")))
        if not val:
            train, val = training.split(train, 0.15, self.seed)
        classes = tuple(sorted({label for s in [*train, *val] for label in s.labels}))
        if not classes:
            raise XrayError(Problem("no_objects", ("data",), t("The training scans contain no annotated objects")))
        init = None
        if self.init_from:
            init, base_classes, self.width = training.load_state(Path(self.init_from))
            if not set(classes) <= set(base_classes):
                extra = ", ".join(sorted(set(classes) - set(base_classes)))
                raise XrayError(
                    Problem(
                        "new_classes",
                        ("init_from",),
                        t("The data has classes the base model lacks ({classes}); train afresh", classes=extra),
                    )
                )
            classes = base_classes
        started = time.perf_counter()
        self.classes_ = classes
        self.net_, history = training.train(self, train, log=log, init=init)
        self._set_onnx(training.export_onnx(self.net_, self.input_size))
        self.card_ = {
            "format_version": FORMAT_VERSION,
            "architecture": "CenterNet-style anchor-free detector (stride 4, FPN neck), ONNX opset 17",
            "classes": list(classes),
            "input_size": self.input_size,
            "params": self.params(),
            "training_data": {"description": data_description, "train": describe(train)},
            "metrics": {"training_seconds": round(time.perf_counter() - started, 1), "history": history},
            "sha256": hashlib.sha256(self._onnx).hexdigest(),
        }
        return self.calibrate(val)

    def calibrate(
        self, val: Sequence[Sample], *, false_alarm_budget: float | None = None, description: str | None = None
    ) -> XrayDetector:
        """Fit the per-class calibration on held-out scans, then pick the alarm threshold: the lowest whose
        threat false alarms per 100 benign scans stay within the budget. Both go into the card (and the
        version, since they change what a score means); validation AP and calibration error are measured."""
        self._check_ready()
        if false_alarm_budget is not None:
            self.false_alarm_budget = false_alarm_budget
        raw = [self._predict_raw(read_file(str(s.image))) for s in val]
        truths = [(s.boxes, s.labels) for s in val]
        scores: list[float] = []
        hits: list[bool] = []
        labels: list[str] = []
        for dets, s in zip(raw, val, strict=True):
            ordered = sorted(dets, key=lambda d: -d.score)
            scores += [d.score for d in ordered]
            labels += [d.label for d in ordered]
            hits += metrics.match(ordered, s.boxes, s.labels)
        glob = _platt(scores, hits)
        per_class = {}
        for c in self.classes_:
            idx = [i for i, label in enumerate(labels) if label == c]
            fitted = _platt([scores[i] for i in idx], [hits[i] for i in idx], fallback=None)
            if fitted is not None:
                per_class[c] = (fitted.a, fitted.b)
        self.calibration_ = Calibration(glob.a, glob.b, per_class)
        calibrated = [self._calibrate(d) for d in raw]
        cal_scores = [d.score for dets in calibrated for d in sorted(dets, key=lambda d: -d.score)]
        threats = [c for c in self.classes_ if c in THREATS]
        point = metrics.choose_threshold(calibrated, truths, threats, self.false_alarm_budget)
        self.alarm_threshold_ = float(point["threshold"])
        val_metrics = evaluate_predictions(calibrated, val, self.classes_)
        val_metrics["ece_raw"] = round(metrics.expected_calibration_error(scores, hits), 4)
        val_metrics["ece_calibrated"] = round(metrics.expected_calibration_error(cal_scores, hits), 4)
        operating = {
            "alarm_threshold": self.alarm_threshold_,
            "false_alarm_budget_per_100_benign": self.false_alarm_budget,
            "chosen_on": "validation scans",
            "validation": point,
        }
        calibration = self.calibration_.as_dict()
        digest = hashlib.sha256(self._onnx + json.dumps([calibration, operating], sort_keys=True).encode()).hexdigest()
        created = datetime.now(UTC)
        self.version_ = f"xray-centernet-{FORMAT_VERSION}-{created:%Y%m%d}-{digest[:8]}"
        card = dict(self.card_)
        card["training_data"] = dict(card.get("training_data", {}))
        card["training_data"]["validation"] = describe(val)
        if description is not None:
            card["training_data"]["validation"]["description"] = description
        card["metrics"] = {**card.get("metrics", {}), "validation": val_metrics}
        card.update(
            format_version=FORMAT_VERSION,
            version=self.version_,
            params={**card.get("params", self.params()), "false_alarm_budget": self.false_alarm_budget},
            calibration=calibration,
            operating_point=operating,
            sha256=hashlib.sha256(self._onnx).hexdigest(),
            created_at=created.isoformat(timespec="seconds"),
        )
        self.card_ = card
        return self

    # ------------------------------------------------------------------------------------------ inference

    def _set_onnx(self, data: bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise XrayError(
                Problem(
                    "bad_model",
                    ("model", MODEL_FILE),
                    t("ONNX Runtime cannot load the model ({error})", error=str(exc)),
                )
            ) from None
        self._onnx = data

    def _check_ready(self) -> None:
        if self._session is None:
            raise XrayError(Problem("not_fitted", ("model",), t("The detector is neither trained nor loaded")))

    def run(self, chw: np.ndarray) -> dict[str, np.ndarray]:
        """Raw network outputs for one letterboxed CHW input (heat, peaks, size, offset)."""
        self._check_ready()
        names = [o.name for o in self._session.get_outputs()]
        outs = self._session.run(names, {"image": chw[None]})
        return {n: o[0] for n, o in zip(names, outs, strict=True)}

    def _forward(self, scan: Scan) -> tuple[list[Detection], np.ndarray, float]:
        chw, scale = letterbox(scan.rgb, self.input_size)
        out = self.run(chw)
        back = scan.scale / scale  # input pixels → original scan pixels
        dets = []
        for cls, score, cx, cy, w, h in decode_peaks(
            out["peaks"], out["size"], out["offset"], floor=self.score_floor, top_k=self.max_detections
        ):
            box = Box(
                max(0.0, (cx - w / 2) * back),
                max(0.0, (cy - h / 2) * back),
                min(float(scan.width), (cx + w / 2) * back),
                min(float(scan.height), (cy + h / 2) * back),
            )
            dets.append(Detection(self.classes_[cls], score, box))
        return dets, out["heat"], scale

    def _predict_raw(self, scan: Scan) -> list[Detection]:
        return self._forward(scan)[0]

    def _calibrate(self, dets: Sequence[Detection]) -> list[Detection]:
        if not dets:
            return []
        cal = self.calibration_(np.array([d.score for d in dets]), [d.label for d in dets])
        return [Detection(d.label, float(p), d.box) for d, p in zip(dets, cal, strict=True)]

    def predict(self, scan: Scan, *, min_score: float = 0.0) -> list[Detection]:
        """Detections with calibrated confidence, in original scan pixels, most confident first."""
        dets = self._calibrate(self._predict_raw(scan))
        return sorted((d for d in dets if d.score >= min_score), key=lambda d: -d.score)

    def explain(self, scan: Scan, *, min_score: float = 0.0) -> tuple[list[Detection], np.ndarray]:
        """Detections and a heat map (0..1, the strongest class per cell) covering the scan, at grid size."""
        raw, heat, scale = self._forward(scan)
        dets = sorted((d for d in self._calibrate(raw) if d.score >= min_score), key=lambda d: -d.score)
        h, w = scan.rgb.shape[:2]
        gh = max(1, math.ceil(h * scale / STRIDE))
        gw = max(1, math.ceil(w * scale / STRIDE))
        return dets, np.asarray(heat.max(axis=0)[:gh, :gw], dtype=np.float32)

    # ------------------------------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> Path:
        self._check_ready()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(self._onnx)
        if self.net_ is not None:
            from smartcustoms.xray import training

            self.card_["torch_weights"] = {
                "file": TORCH_FILE,
                "sha256": training.save_state(self.net_, directory / TORCH_FILE),
            }
        elif self.source_dir_ is not None and (self.source_dir_ / TORCH_FILE).is_file():
            source = self.source_dir_ / TORCH_FILE  # recalibrated: the PyTorch weights come along unchanged
            if source.resolve() != (directory / TORCH_FILE).resolve():
                (directory / TORCH_FILE).write_bytes(source.read_bytes())
        (directory / CARD_FILE).write_text(json.dumps(self.card_, indent=1, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path | str = SHIPPED, *, threads: int = 2) -> XrayDetector:
        """Load a model directory, refusing other format versions and weights that do not match their hash."""
        directory = Path(directory)
        path: tuple[str | int, ...] = ("model", str(directory))
        card_file, onnx_file = directory / CARD_FILE, directory / MODEL_FILE
        if not card_file.is_file() or not onnx_file.is_file():
            raise XrayError(
                Problem(
                    "missing_model",
                    path,
                    t(
                        "A model directory holds {model_file} and {card_file}",
                        model_file=MODEL_FILE,
                        card_file=CARD_FILE,
                    ),
                )
            )
        try:
            card = json.loads(card_file.read_text())
            assert isinstance(card, dict)
        except (ValueError, AssertionError, OSError):
            raise XrayError(
                Problem("bad_model_card", path, t("{card_file} is not a JSON object", card_file=CARD_FILE))
            ) from None
        problems = []
        if card.get("format_version") not in READABLE_FORMATS:
            readable = ", ".join(str(v) for v in READABLE_FORMATS)
            problems.append(
                Problem(
                    "model_version",
                    (*path, "format_version"),
                    t(
                        "Model format {found} is not supported; this version reads formats {readable}",
                        found=repr(card.get("format_version")),
                        readable=readable,
                    ),
                )
            )
        for key in ("version", "classes", "input_size", "sha256", "calibration"):
            if key not in card:
                problems.append(
                    Problem(
                        "bad_model_card", (*path, key), t("{card_file} lacks '{key}'", card_file=CARD_FILE, key=key)
                    )
                )
        if problems:
            raise XrayError(problems)
        data = onnx_file.read_bytes()
        if hashlib.sha256(data).hexdigest() != card["sha256"]:
            raise XrayError(
                Problem("model_hash", (*path, MODEL_FILE), t("The weights do not match the hash in model.json"))
            )
        params = card.get("params", {})
        det = cls(
            input_size=int(card["input_size"]),
            width=int(params.get("width", 16)),
            score_floor=float(params.get("score_floor", 0.05)),
            threads=threads,
        )
        det.classes_ = tuple(card["classes"])
        try:
            det.calibration_ = Calibration.from_dict(card["calibration"])
            det.alarm_threshold_ = float((card.get("operating_point") or {}).get("alarm_threshold", DEFAULT_ALARM))
        except (KeyError, TypeError, ValueError):
            raise XrayError(
                Problem(
                    "bad_model_card",
                    (*path, "calibration"),
                    t("{card_file} has a bad calibration", card_file=CARD_FILE),
                )
            ) from None
        det.false_alarm_budget = float(
            (card.get("operating_point") or {}).get("false_alarm_budget_per_100_benign", FALSE_ALARM_BUDGET)
        )
        det.source_dir_ = directory
        det.card_ = card
        det.version_ = str(card["version"])
        det._set_onnx(data)
        return det


def _platt(scores: Sequence[float], hits: Sequence[bool], fallback: Calibration | None = Calibration()) -> Any:
    """Fit p(hit | raw score); `fallback` (identity) when the scans hold too few hits or misses to say."""
    if sum(hits) < 5 or len(hits) - sum(hits) < 5:
        return fallback
    from sklearn.linear_model import LogisticRegression

    r = np.clip(np.asarray(scores, dtype=float), 1e-6, 1 - 1e-6)
    x = np.log(r / (1 - r)).reshape(-1, 1)
    lr = LogisticRegression(C=100.0).fit(x, np.asarray(hits, dtype=int))
    return Calibration(float(lr.coef_[0, 0]), float(lr.intercept_[0]))


def evaluate_predictions(
    predictions: Sequence[Sequence[Detection]], samples: Sequence[Sample], classes: Sequence[str]
) -> dict[str, Any]:
    """AP@0.5 per class and their mean over classes present in the ground truth."""
    truths = [(s.boxes, s.labels) for s in samples]
    per_class = {}
    for c in classes:
        ap = metrics.average_precision(predictions, truths, c)
        if ap is not None:
            per_class[c] = round(ap, 4)
    mean = round(float(np.mean(list(per_class.values()))), 4) if per_class else 0.0
    return {"ap50": per_class, "map50": mean, "images": len(samples)}
