"""A colour-threshold blob detector: the simple baseline the learned detector must beat.

It does what an operator's eye does first: dense blue (metal) blobs are firearms or knives by elongation,
dense orange (organic) blobs are drugs when compact and uniform, meat otherwise. No learning.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from smartcustoms.xray.imaging import Scan
from smartcustoms.xray.model import Box, Detection

WORK = 256


def _blobs(mask: np.ndarray, min_area: int) -> list[tuple[slice, slice, np.ndarray]]:
    labels, _ = ndimage.label(ndimage.binary_opening(mask, iterations=1))
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == i
        if m.sum() >= min_area:
            out.append((sl[0], sl[1], m))
    return out


def detect(scan: Scan) -> list[Detection]:
    rgb = scan.rgb
    step = max(1, max(rgb.shape[:2]) // WORK)
    small = rgb[::step, ::step].astype(np.float32)
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    bright = small.mean(axis=2)
    metal = (b > r + 25) & (b > g) & (bright < 120)
    organic = (r > b + 40) & (r > g) & (bright < 150)
    back = scan.scale * step
    out: list[Detection] = []
    for mask, kind in ((metal, "metal"), (organic, "organic")):
        for ys, xs, m in _blobs(mask, 20):
            h, w = ys.stop - ys.start, xs.stop - xs.start
            if max(h, w) > 0.35 * max(mask.shape):  # bag frame rods, container walls: structure, not goods
                continue
            fill = m.mean()
            elong = max(h, w) / max(1, min(h, w))
            darkness = float(1 - bright[ys, xs][m].mean() / 255)
            if kind == "metal":
                label = "knife" if elong > 3 else "handgun"
            else:
                uniform = float(bright[ys, xs][m].std()) < 18
                label = "drugs" if fill > 0.75 and uniform else "meat"
            box = Box(xs.start * back, ys.start * back, xs.stop * back, ys.stop * back)
            out.append(Detection(label, min(0.99, darkness), box))
    return sorted(out, key=lambda d: -d.score)
