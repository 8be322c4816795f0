"""PyTorch side of the detector: network, targets, loss, training loop and ONNX export (CPU, minutes).

Only `XrayDetector.fit` and the tests import this module; the product runs the exported ONNX graph.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F  # noqa: N812

from smartcustoms.xray.datasets import Sample
from smartcustoms.xray.detector import STRIDE, letterbox
from smartcustoms.xray.imaging import read_file

if TYPE_CHECKING:
    from smartcustoms.xray.detector import XrayDetector


def split(samples: Sequence[Sample], share: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Seeded train/validation split (at least one validation scan)."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = max(1, round(len(samples) * share)) if len(samples) > 1 else 0
    val = [samples[i] for i in order[:n_val]]
    train = [samples[i] for i in order[n_val:]]
    return train, val


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CenterNet(nn.Module):
    """Small backbone (strides 2..16), top-down neck to stride 4, heads for class heat, log size, offset."""

    def __init__(self, classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.c2 = _block(w, 2 * w, 2)
        self.c3 = _block(2 * w, 3 * w, 2)
        self.c4 = _block(3 * w, 4 * w, 2)
        n = 2 * w
        self.top = nn.Conv2d(4 * w, n, 1)
        self.lat3 = nn.Conv2d(3 * w, n, 1)
        self.lat2 = nn.Conv2d(2 * w, n, 1)
        self.smooth3 = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1, bias=False), nn.BatchNorm2d(n), nn.ReLU(inplace=True))
        self.smooth2 = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1, bias=False), nn.BatchNorm2d(n), nn.ReLU(inplace=True))

        self.shared = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1), nn.ReLU(inplace=True))
        self.heat = nn.Conv2d(n, classes, 1)
        self.size = nn.Conv2d(n, 2, 1)
        self.offset = nn.Conv2d(n, 2, 1)
        assert self.heat.bias is not None
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1: stable focal loss at the start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = (x - 0.5) / 0.25
        c2 = self.c2(self.stem(x))
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p3 = self.smooth3(self.lat3(c3) + F.interpolate(self.top(c4), scale_factor=2.0, mode="nearest"))
        p2 = self.smooth2(self.lat2(c2) + F.interpolate(p3, scale_factor=2.0, mode="nearest"))
        f = self.shared(p2)
        return self.heat(f), self.size(f), self.offset(f)


class Exported(nn.Module):
    """What goes into the ONNX file: probabilities, 3×3 local maxima (peaks), log size, offset."""

    def __init__(self, net: CenterNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, size, offset = self.net(image)
        heat = torch.sigmoid(logits)
        peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat).to(heat.dtype)
        return heat, peaks, size, offset


def export_onnx(net: CenterNet, input_size: int) -> bytes:
    net.eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "detector.onnx"
        torch.onnx.export(
            Exported(net),
            (torch.zeros(1, 3, input_size, input_size),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["heat", "peaks", "size", "offset"],
            opset_version=17,
        )
        return path.read_bytes()


def torch_outputs(net: CenterNet, chw: np.ndarray) -> dict[str, np.ndarray]:
    """The same outputs as the ONNX graph, from PyTorch (for parity tests)."""
    net.eval()
    with torch.no_grad():
        outs = Exported(net)(torch.from_numpy(chw[None]))
    return {n: o[0].numpy() for n, o in zip(("heat", "peaks", "size", "offset"), outs, strict=True)}


# ---------------------------------------------------------------------------------------------- data


def _prepare(samples: Sequence[Sample], size: int, classes: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Letterboxed uint8 CHW images and their boxes (x1, y1, x2, y2, class) in input pixels."""
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for s in samples:
        scan = read_file(str(s.image))
        chw, scale = letterbox(scan.rgb, size)
        f = scale / scan.scale
        boxes = np.array(
            [
                [b.x1 * f, b.y1 * f, b.x2 * f, b.y2 * f, index[label]]
                for b, label in zip(s.boxes, s.labels, strict=True)
            ],
            dtype=np.float32,
        ).reshape(-1, 5)
        out.append(((chw * 255).astype(np.uint8), boxes))
    return out


def _zoom(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rescale by 0.7..1.3 and crop or pad (white belt) back to the input size: objects at other scales."""
    size = img.shape[1]
    s = rng.uniform(0.7, 1.3)
    n = max(8, round(size * s))
    hwc = np.asarray(Image.fromarray(img.transpose(1, 2, 0)).resize((n, n), Image.Resampling.BILINEAR))
    b = boxes.copy()
    b[:, :4] *= n / size
    if n >= size:
        ox, oy = int(rng.integers(0, n - size + 1)), int(rng.integers(0, n - size + 1))
        hwc = hwc[oy : oy + size, ox : ox + size]
        b[:, [0, 2]] -= ox
        b[:, [1, 3]] -= oy
    else:
        ox, oy = int(rng.integers(0, size - n + 1)), int(rng.integers(0, size - n + 1))
        canvas = np.full((size, size, 3), 255, dtype=np.uint8)
        canvas[oy : oy + n, ox : ox + n] = hwc
        hwc = canvas
        b[:, [0, 2]] += ox
        b[:, [1, 3]] += oy
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    b[:, :4] = np.clip(b[:, :4], 0, size)
    kept = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) >= 0.6 * np.maximum(area, 1e-6)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)), b[kept]


def _augment(
    img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, *, hard: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Flips, quarter turns, greyscale (single-energy scanners) and exposure jitter; boxes follow.

    `hard` adds what the hard scans do to a target: rescaling, sensor noise, and a dense slab laid over part
    of an object (transmission multiplies, so a slab darkens and tints what lies under it) - hidden objects.
    """
    size = img.shape[1]
    b = boxes.copy()
    if hard and rng.random() < 0.5:
        img, b = _zoom(img, b, rng)
    if rng.random() < 0.5:
        img = img[:, :, ::-1]
        b[:, [0, 2]] = size - b[:, [2, 0]]
    if rng.random() < 0.5:
        img = img[:, ::-1, :]
        b[:, [1, 3]] = size - b[:, [3, 1]]
    if rng.random() < 0.5:  # transpose = quarter turn combined with the flips above
        img = img.transpose(0, 2, 1)
        b[:, [0, 1, 2, 3]] = b[:, [1, 0, 3, 2]]
    x = img.astype(np.float32) / 255.0
    if hard and len(b) and rng.random() < 0.4:
        x1, y1, x2, y2 = b[int(rng.integers(0, len(b))), :4]
        w, h = max(4.0, x2 - x1), max(4.0, y2 - y1)
        sx1 = int(np.clip(x1 + rng.uniform(-0.5, 0.5) * w, 0, size - 1))
        sy1 = int(np.clip(y1 + rng.uniform(-0.5, 0.5) * h, 0, size - 1))
        sx2 = int(np.clip(sx1 + rng.uniform(0.4, 1.0) * w, sx1 + 1, size))
        sy2 = int(np.clip(sy1 + rng.uniform(0.4, 1.0) * h, sy1 + 1, size))
        tint = rng.uniform(0.45, 0.85, size=(3, 1, 1)).astype(np.float32)
        x[:, sy1:sy2, sx1:sx2] *= tint
    if rng.random() < 0.15:
        x = np.repeat(x.mean(axis=0, keepdims=True), 3, axis=0)
    gamma = rng.uniform(0.8, 1.25)
    x = np.clip(x, 0, 1) ** gamma
    if hard:
        x = x * rng.uniform(0.92, 1.08, size=(3, 1, 1)).astype(np.float32)
        if rng.random() < 0.5:
            x = x + rng.normal(0.0, rng.uniform(0.005, 0.04), size=x.shape).astype(np.float32)
        x = np.clip(x, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32), b


def _targets(boxes: np.ndarray, classes: int, grid: int) -> tuple[np.ndarray, ...]:
    """Elliptic Gaussian heat per class (peak 1 at each centre), log size and offset at the centre cells."""
    heat = np.zeros((classes, grid, grid), dtype=np.float32)
    size = np.zeros((2, grid, grid), dtype=np.float32)
    offset = np.zeros((2, grid, grid), dtype=np.float32)
    mask = np.zeros((grid, grid), dtype=np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    for x1, y1, x2, y2, c in boxes:
        w, h = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
        if w < 0.5 or h < 0.5:
            continue
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ix, iy = min(grid - 1, max(0, int(cx))), min(grid - 1, max(0, int(cy)))
        sx, sy = max(0.8, w / 6), max(0.8, h / 6)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        heat[int(c)] = np.maximum(heat[int(c)], g)
        heat[int(c), iy, ix] = 1.0
        size[:, iy, ix] = (math.log(w), math.log(h))
        offset[:, iy, ix] = (cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return heat, size, offset, mask


def _loss(
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], tgt: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, dict[str, float]]:
    logits, size, offset = out
    heat_t, size_t, off_t, mask = tgt
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat_t.eq(1).float()
    neg = 1 - pos
    pos_loss = (torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = (torch.log(1 - p) * p**2 * (1 - heat_t) ** 4 * neg).sum()
    n = pos.sum().clamp(min=1)
    focal = -(pos_loss + neg_loss) / n
    m = mask.unsqueeze(1)
    size_l = (F.l1_loss(size * m, size_t * m, reduction="sum")) / (m.sum() * 2).clamp(min=1)
    off_l = (F.l1_loss(offset * m, off_t * m, reduction="sum")) / (m.sum() * 2).clamp(min=1)
    total = focal + 0.5 * size_l + off_l
    return total, {"focal": focal.item(), "size": size_l.item(), "offset": off_l.item()}


def _lr(base: float, progress: float) -> float:
    if progress < 0.05:
        return base * (0.1 + 0.9 * progress / 0.05)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (progress - 0.05) / 0.95)))


def save_state(net: CenterNet, path: Path) -> str:
    """Write the PyTorch weights; returns their SHA-256."""
    torch.save(net.state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_state(model_dir: Path) -> tuple[dict[str, torch.Tensor], tuple[str, ...], int]:
    """Weights, classes and width of a saved model, to start a retraining from it."""
    import json

    from smartcustoms.platform.errors import Problem
    from smartcustoms.platform.i18n import t
    from smartcustoms.xray.detector import CARD_FILE, TORCH_FILE
    from smartcustoms.xray.errors import XrayError

    path = model_dir / TORCH_FILE
    card_file = model_dir / CARD_FILE
    if not path.is_file() or not card_file.is_file():
        raise XrayError(
            Problem(
                "no_weights",
                ("init_from",),
                t("{model} has no {weights_file} to start from", model=str(model_dir), weights_file=TORCH_FILE),
            )
        )
    card = json.loads(card_file.read_text())
    expected = (card.get("torch_weights") or {}).get("sha256")
    if expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise XrayError(
            Problem("model_hash", ("init_from",), t("{weights_file} does not match its hash", weights_file=TORCH_FILE))
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, tuple(card["classes"]), int(card.get("params", {}).get("width", 16))


def train(
    est: XrayDetector,
    samples: Sequence[Sample],
    *,
    log: Callable[[str], None] | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[CenterNet, list[dict[str, Any]]]:
    """Train the network for `est.epochs` (or until `est.max_minutes`); returns it and per-epoch losses."""
    torch.manual_seed(est.seed)
    torch.set_num_threads(est.threads)
    rng = np.random.default_rng(est.seed)
    classes = est.classes_
    data = _prepare(samples, est.input_size, classes)
    grid = est.input_size // STRIDE
    net = CenterNet(len(classes), est.width)
    if init is not None:
        net.load_state_dict(init)
    opt = torch.optim.AdamW(net.parameters(), lr=est.learning_rate * 0.1, weight_decay=1e-4)
    n_epoch = sum(max(1, round(est.hidden_weight)) if s.hidden else 1 for s in samples)
    steps_per_epoch = max(1, math.ceil(n_epoch / est.batch_size))
    total_steps = est.epochs * steps_per_epoch
    budget = est.max_minutes * 60 if est.max_minutes else None
    step = 0
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    for epoch in range(est.epochs):
        net.train()
        # hidden-object emphasis: scans with a hidden target come round `hidden_weight` times per epoch
        repeats = np.array([max(1, round(est.hidden_weight)) if s.hidden else 1 for s in samples])
        order = rng.permutation(np.repeat(np.arange(len(data)), repeats))
        sums: dict[str, float] = {}
        for start in range(0, len(order), est.batch_size):
            batch = [
                _augment(data[i][0], data[i][1], rng, hard=est.hard_augment)
                for i in order[start : start + est.batch_size]
            ]
            x = torch.from_numpy(np.stack([b[0] for b in batch]))
            tg = [_targets(b[1], len(classes), grid) for b in batch]
            tgt = tuple(torch.from_numpy(np.stack([t[k] for t in tg])) for k in range(4))
            loss, parts = _loss(net(x), tgt)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            step += 1
            # warm-up then cosine decay over whichever runs out first: the epochs or the time budget
            progress = step / total_steps
            if budget:
                progress = max(progress, (time.perf_counter() - started) / budget)
            for group in opt.param_groups:
                group["lr"] = _lr(est.learning_rate, min(1.0, progress))
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v / steps_per_epoch
        elapsed = time.perf_counter() - started
        history.append({"epoch": epoch + 1, **{k: round(v, 4) for k, v in sums.items()}, "seconds": round(elapsed, 1)})
        if log:
            log(
                f"epoch {epoch + 1}/{est.epochs} "
                + " ".join(f"{k}={v:.3f}" for k, v in sums.items())
                + f" {elapsed:.0f}s"
            )
        if budget is not None and elapsed >= budget:
            break
    net.eval()
    return net, history
