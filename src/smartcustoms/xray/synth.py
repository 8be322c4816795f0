"""Seeded synthetic X-ray scans with COCO annotations, for training, tests and the benchmark.

Rendering follows dual-energy scanners: every object adds attenuation per material (organic, inorganic,
metal); transmission is exp(-total) and the hue is the attenuation-weighted mix of the scanner false
colours (orange organic, green inorganic, blue metal), darker where thicker. Objects are drawn in their own
coordinates and rotated, scaled and overlapped in baggage or cargo clutter; "hidden" targets sit under a
dense occluder. Each image has its own generator seeded with (seed, index): reproducible and resumable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartcustoms.xray.imaging import to_png
from smartcustoms.xray.model import CLASSES, THREATS

GENERATOR_VERSION = "xray-synth-1"
ORANGE = np.array([235, 135, 35], dtype=np.float32)
GREEN = np.array([60, 170, 70], dtype=np.float32)
BLUE = np.array([35, 75, 205], dtype=np.float32)
ORG, INORG, METAL = 0, 1, 2

Layers = dict[int, np.ndarray]
"""Material → attenuation over a patch."""
ShapeFn = Callable[[np.ndarray, np.ndarray, np.random.Generator], Layers]


@dataclass(frozen=True)
class Settings:
    """How hard the scenes are: clutter per scan, chance a target is hidden, share of benign-only scans."""

    size: int = 1024
    clutter: tuple[int, int] = (4, 9)
    hidden_prob: float = 0.15
    benign_share: float = 0.3
    noise: float = 0.03
    lookalikes: tuple[int, int] = (1, 3)

    @classmethod
    def named(cls, difficulty: str, size: int = 1024) -> Settings:
        if difficulty == "hard":
            return cls(size=size, clutter=(8, 15), hidden_prob=0.4, benign_share=0.3, noise=0.05, lookalikes=(2, 4))
        if difficulty == "easy":
            return cls(size=size, clutter=(1, 3), hidden_prob=0.0, benign_share=0.2, noise=0.02, lookalikes=(0, 2))
        return cls(size=size)


# ---------------------------------------------------------------------------------------------- primitives


def _ellipse(u: np.ndarray, v: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    return ((u - cx) / a) ** 2 + ((v - cy) / b) ** 2 <= 1.0


def _rect(u: np.ndarray, v: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)


def _poly(u: np.ndarray, v: np.ndarray, pts: list[tuple[float, float]]) -> np.ndarray:
    """Convex polygon (counter-clockwise or clockwise) by half-planes."""
    inside_pos = np.ones(u.shape, dtype=bool)
    inside_neg = np.ones(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        cross = (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0)
        inside_pos &= cross >= 0
        inside_neg &= cross <= 0
    return inside_pos | inside_neg


def _blob(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, a: float, b: float, wobble: float) -> np.ndarray:
    """Radius in (0..1] of a lumpy ellipse; <= 1 inside."""
    phi = np.arctan2(v / b, u / a)
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    mod = np.ones_like(phi)
    for k in (2, 3, 5):
        mod += wobble / k * math.cos(rng.uniform(0, 6.3)) * np.cos(k * phi + rng.uniform(0, 6.3))
    return r / mod


def _texture(shape: tuple[int, ...], rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """Smooth random field in [0, 1] (bilinear upsampled noise): marbling, folds, page density."""
    h, w = shape
    g = rng.random((cells + 1, cells + 1)).astype(np.float32)
    ys = np.linspace(0, cells, h, dtype=np.float32)
    xs = np.linspace(0, cells, w, dtype=np.float32)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = g[y0][:, x0]
    b = g[y0][:, x0 + 1]
    c = g[y0 + 1][:, x0]
    d = g[y0 + 1][:, x0 + 1]
    out: np.ndarray = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    return out


# ---------------------------------------------------------------------------------------------- objects
# Each shape takes local coordinates (u along the object's length, v across, about -1..1) and returns
# attenuation per material. Values are high-energy attenuation (1.0 ≈ 63 % absorbed).


def meat(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    r = _blob(u, v, rng, 1.0, rng.uniform(0.55, 0.8), 0.35)
    inside = r <= 1
    dome = np.sqrt(np.clip(1 - r**2, 0, 1))
    marbling = 0.75 + 0.5 * _texture(u.shape, rng, 8)
    org = np.where(inside, rng.uniform(0.9, 1.6) * (0.35 + 0.65 * dome) * marbling, 0)
    inorg = np.zeros_like(org)
    if rng.random() < 0.7:  # bone: a rod with knuckles, calcium shows green
        t = rng.uniform(-0.3, 0.3)
        bone = _rect(u, v, -0.75, t - 0.07, 0.55, t + 0.07) | _ellipse(u, v, 0.6, t, 0.16, 0.14)
        if rng.random() < 0.4:  # T-bone
            bone |= _rect(u, v, -0.1, t - 0.5, 0.0, t + 0.05)
        inorg = np.where(bone & inside, rng.uniform(0.5, 0.9), 0)
    return {ORG: org, INORG: inorg}


def cheese(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    kind = rng.integers(3)
    if kind == 0:  # wheel
        inside = _ellipse(u, v, 0, 0, 1.0, 1.0)
    elif kind == 1:  # wedge
        inside = _poly(u, v, [(-0.9, -0.8), (0.95, 0.0), (-0.9, 0.8)])
    else:  # block
        inside = _rect(u, v, -1, -0.6, 1, 0.6)
    thick = rng.uniform(0.9, 1.4)
    org = np.where(inside, thick, 0.0)
    if rng.random() < 0.6:  # eyes
        for _ in range(int(rng.integers(3, 9))):
            org = np.where(_ellipse(u, v, rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.5), 0.09, 0.09), org * 0.55, org)
    inorg = np.where(inside, thick * 0.12, 0.0)  # salt and calcium tint
    return {ORG: org.astype(np.float32), INORG: inorg.astype(np.float32)}


def drugs(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    if rng.random() < 0.6:  # brick, taped
        inside = _rect(u, v, -1, -0.62, 1, 0.62)
        tape = inside & ~_rect(u, v, -0.93, -0.55, 0.93, 0.55)
        org = np.where(inside, rng.uniform(1.5, 2.2), 0.0) + np.where(tape, 0.35, 0.0)
        for x in rng.uniform(-0.7, 0.7, int(rng.integers(0, 3))):
            org += np.where(inside & (np.abs(u - x) < 0.05), 0.3, 0.0)
    else:  # packets (pellets, condoms) packed together
        org = np.zeros(u.shape, dtype=np.float32)
        for _ in range(int(rng.integers(4, 10))):
            cx, cy = rng.uniform(-0.75, 0.75), rng.uniform(-0.5, 0.5)
            e = _ellipse(u, v, cx, cy, rng.uniform(0.18, 0.26), rng.uniform(0.1, 0.14))
            org = np.maximum(org, np.where(e, rng.uniform(1.3, 1.9), 0.0))
    return {ORG: org.astype(np.float32), INORG: np.where(org > 0, 0.05, 0.0).astype(np.float32)}


def book(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    inside = _rect(u, v, -1, -0.72, 1, 0.72)
    pages = 0.85 + 0.15 * np.cos(v * rng.uniform(60, 120))
    org = np.where(inside, rng.uniform(0.7, 1.3) * pages, 0.0)
    org += np.where(inside & (u < -0.9), 0.3, 0.0)  # spine
    inorg = np.where(inside, 0.12, 0.0)  # clay-coated paper
    return {ORG: org.astype(np.float32), INORG: inorg.astype(np.float32)}


def handgun(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    slide = _rect(u, v, -0.9, -0.35, 1.0, -0.05)
    barrel = _rect(u, v, -0.2, -0.25, 1.0, -0.15)
    rake = rng.uniform(0.15, 0.35)
    grip = _poly(u, v, [(-0.85, -0.05), (-0.45, -0.05), (-0.45 - rake, 0.9), (-0.85 - rake, 0.9)])
    guard = _ellipse(u, v, -0.2, 0.15, 0.22, 0.2) & ~_ellipse(u, v, -0.2, 0.15, 0.16, 0.14) & (v > -0.05)
    mag = _poly(u, v, [(-0.75, 0.0), (-0.55, 0.0), (-0.55 - rake, 0.85), (-0.75 - rake, 0.85)])
    metal = np.where(slide, rng.uniform(1.8, 2.6), 0.0) + np.where(barrel, 0.8, 0.0) + np.where(guard, 1.0, 0.0)
    metal += np.where(mag, 1.2, 0.0)
    polymer = rng.random() < 0.5
    grip_att = np.where(grip, 1.0 if polymer else 1.6, 0.0)
    org = grip_att if polymer else np.zeros_like(grip_att)
    if not polymer:
        metal += grip_att
    return {METAL: metal.astype(np.float32), ORG: org.astype(np.float32)}


def gun_part(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    kind = rng.integers(4)
    if kind == 0:  # slide with ejection port
        m = _rect(u, v, -1, -0.3, 1, 0.3) & ~_rect(u, v, -0.1, -0.3, 0.35, -0.05)
        metal = np.where(m, rng.uniform(1.8, 2.5), 0.0)
    elif kind == 1:  # barrel: bore shows brighter
        m = _rect(u, v, -1, -0.2, 1, 0.2)
        metal = np.where(m, 2.2, 0.0) - np.where(_rect(u, v, -1, -0.06, 1, 0.06), 1.0, 0.0)
        metal += np.where(_rect(u, v, -1, -0.3, -0.7, 0.3), 1.0, 0.0)
    elif kind == 2:  # magazine with cartridges
        m = _poly(u, v, [(-1, -0.3), (1, -0.45), (1, 0.05), (-1, 0.3)])
        metal = np.where(m, 1.0, 0.0)
        for x in np.linspace(-0.8, 0.8, 6):
            metal += np.where(_ellipse(u, v, x, -0.1 * x, 0.12, 0.14), 1.2, 0.0)
    else:  # loose cartridges
        metal = np.zeros(u.shape, dtype=np.float32)
        for _ in range(int(rng.integers(3, 8))):
            cx, cy = rng.uniform(-0.75, 0.75), rng.uniform(-0.6, 0.6)
            metal += np.where(_rect(u, v, cx - 0.22, cy - 0.08, cx + 0.22, cy + 0.08), 2.0, 0.0)
    return {METAL: np.asarray(metal, dtype=np.float32)}


def knife(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    w = rng.uniform(0.1, 0.18)
    belly = rng.uniform(-0.05, 0.08)
    blade = _poly(u, v, [(-0.15, -w), (0.6, -w), (1.0, w * 0.2 + belly), (-0.15, w)])
    blade |= _poly(u, v, [(0.6, -w), (1.0, w * 0.2 + belly), (0.6, w)]) & (v > -w)
    handle = _rect(u, v, -1.0, -w * 0.9, -0.15, w * 0.9)
    metal = np.where(blade, rng.uniform(0.9, 1.5), 0.0)
    metal += np.where(_rect(u, v, -0.2, -w * 1.4, -0.12, w * 1.4), 1.5, 0.0)  # guard
    if rng.random() < 0.5:  # wooden/plastic handle with rivets
        org = np.where(handle, rng.uniform(0.6, 1.0), 0.0)
        for x in (-0.75, -0.4):
            metal += np.where(_ellipse(u, v, x, 0, 0.04, 0.04), 1.5, 0.0)
    else:
        org = np.zeros(u.shape)
        metal += np.where(handle, 1.8, 0.0)
    return {METAL: metal.astype(np.float32), ORG: np.asarray(org, dtype=np.float32)}


def tool(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    kind = rng.integers(3)
    org = np.zeros(u.shape, dtype=np.float32)
    if kind == 0:  # open-end wrench
        m = _rect(u, v, -0.75, -0.1, 0.75, 0.1)
        for x in (-0.82, 0.82):
            m |= _ellipse(u, v, x, 0, 0.2, 0.22) & ~_rect(u, v, x - 0.08, -0.08, x + 0.08 + 0.2 * np.sign(x), 0.08)
        metal = np.where(m, 2.0, 0.0)
    elif kind == 1:  # screwdriver: thin shaft, fat organic handle (looks like a knife)
        metal = np.where(_rect(u, v, -0.1, -0.04, 1.0, 0.04), 2.2, 0.0)
        org = np.where(_ellipse(u, v, -0.55, 0, 0.48, 0.16), 1.0, 0.0).astype(np.float32)
    else:  # pliers: two crossed arms and jaws
        a = _poly(u, v, [(-1, 0.12), (-1, 0.22), (0.2, 0.02), (0.2, -0.08)])
        b = _poly(u, v, [(-1, -0.12), (-1, -0.22), (0.2, -0.02), (0.2, 0.08)])
        jaw = _poly(u, v, [(0.1, -0.12), (0.9, -0.04), (0.9, 0.04), (0.1, 0.12)])
        metal = np.where(a | b | jaw, 2.0, 0.0) + np.where(_ellipse(u, v, 0.1, 0, 0.08, 0.08), 1.0, 0.0)
    return {METAL: metal.astype(np.float32), ORG: org}


def electronics(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    kind = rng.integers(3)
    if kind == 0:  # laptop: board grid, battery cells, hinge
        body = _rect(u, v, -1, -0.68, 1, 0.68)
        inorg = np.where(body, 0.45, 0.0) + np.where(body & (np.cos(u * 40) * np.cos(v * 40) > 0.7), 0.25, 0.0)
        cells = _rect(u, v, -0.8, 0.25, 0.8, 0.6)
        metal = np.where(cells, 1.0, 0.0) + np.where(_rect(u, v, -0.9, -0.68, 0.9, -0.6), 1.2, 0.0)
        metal += np.where(_rect(u, v, -0.5, -0.45, 0.1, -0.05), 0.9, 0.0)  # heat sink
    elif kind == 1:  # phone
        body = _rect(u, v, -1, -0.5, 1, 0.5)
        inorg = np.where(body, 0.6, 0.0)
        metal = np.where(_rect(u, v, -0.6, -0.4, 0.6, 0.4), 1.3, 0.0) + np.where(
            _ellipse(u, v, 0.8, 0.3, 0.08, 0.08), 1.5, 0.0
        )
    else:  # power bank: cylindrical cells
        body = _rect(u, v, -1, -0.55, 1, 0.55)
        inorg = np.where(body, 0.35, 0.0)
        metal = np.zeros(u.shape)
        for y in (-0.28, 0.28):
            cyl = _rect(u, v, -0.9, y - 0.22, 0.9, y + 0.22)
            metal += np.where(cyl, 1.0 + 0.6 * np.sqrt(np.clip(1 - ((v - y) / 0.22) ** 2, 0, 1)), 0.0)
    org = np.where(body, 0.2, 0.0)  # plastic casing
    return {INORG: inorg.astype(np.float32), METAL: np.asarray(metal, dtype=np.float32), ORG: org.astype(np.float32)}


# clutter: never annotated


def clothes(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    r = _blob(u, v, rng, 1.0, rng.uniform(0.5, 0.9), 0.5)
    folds = _texture(u.shape, rng, 10)
    return {ORG: np.where(r <= 1, 0.15 + 0.45 * folds, 0.0).astype(np.float32)}


def bottle(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    m = _rect(u, v, -1, -0.35, 0.55, 0.35) | _rect(u, v, 0.55, -0.12, 1.0, 0.12)
    depth = np.sqrt(np.clip(1 - (v / 0.35) ** 2, 0, 1))
    glass = rng.random() < 0.4
    att = np.where(m, 0.5 + 0.5 * depth, 0.0).astype(np.float32)
    return {INORG: att * (1.0 if glass else 0.25), ORG: att * (0.2 if glass else 0.9)}


def shoe(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    r = _blob(u, v, rng, 1.0, 0.38, 0.15)
    metal = np.where(_rect(u, v, -0.2, -0.1, 0.2, 0.1), 0.6, 0.0) if rng.random() < 0.3 else np.zeros(u.shape)
    return {ORG: np.where(r <= 1, 0.9, 0.0).astype(np.float32), METAL: np.asarray(metal, dtype=np.float32)}


def carton(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    m = _rect(u, v, -1, -0.8, 1, 0.8)
    fill = rng.uniform(0.15, 0.8) * (0.7 + 0.6 * _texture(u.shape, rng, 5))
    mat = int(rng.integers(0, 2))
    return {mat: np.where(m, fill, 0.0).astype(np.float32)}


def occluder(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Layers:
    """What smugglers hide things under: a dense tray, a stack of plates, a car battery."""
    m = _rect(u, v, -1, -0.9, 1, 0.9)
    mat = int(rng.choice([INORG, METAL, ORG]))
    att = rng.uniform(1.0, 1.8) if mat != METAL else rng.uniform(0.8, 1.3)
    return {mat: np.where(m, att, 0.0).astype(np.float32)}


SHAPES: dict[str, ShapeFn] = {
    "meat": meat,
    "drugs": drugs,
    "handgun": handgun,
    "gun_part": gun_part,
    "knife": knife,
    "cheese": cheese,
    "book": book,
    "electronics": electronics,
    "tool": tool,
}
SIZES: dict[str, tuple[float, float]] = {
    "meat": (0.07, 0.13),
    "drugs": (0.06, 0.11),
    "handgun": (0.07, 0.11),
    "gun_part": (0.045, 0.08),
    "knife": (0.06, 0.11),
    "cheese": (0.05, 0.09),
    "book": (0.06, 0.1),
    "electronics": (0.07, 0.14),
    "tool": (0.05, 0.09),
}
CLUTTER: list[tuple[ShapeFn, tuple[float, float]]] = [
    (clothes, (0.1, 0.22)),
    (bottle, (0.05, 0.09)),
    (shoe, (0.07, 0.11)),
    (carton, (0.08, 0.16)),
]


# ---------------------------------------------------------------------------------------------- scene


class _Canvas:
    def __init__(self, size: int) -> None:
        self.size = size
        self.att = np.zeros((3, size, size), dtype=np.float32)

    def place(
        self,
        fn: ShapeFn,
        rng: np.random.Generator,
        cx: float,
        cy: float,
        half: float,
        angle: float,
        aspect: float = 1.0,
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Draw a shape; return its patch window and its own total attenuation there (for the box)."""
        reach = half * 1.5 * max(1.0, aspect)
        x0, x1 = max(0, int(cx - reach)), min(self.size, int(cx + reach) + 1)
        y0, y1 = max(0, int(cy - reach)), min(self.size, int(cy + reach) + 1)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xs - cx, ys - cy
        c, s = math.cos(angle), math.sin(angle)
        u = (c * dx + s * dy) / (half * aspect)
        v = (-s * dx + c * dy) / half
        layers = fn(u, v, rng)
        own = np.zeros(u.shape, dtype=np.float32)
        for mat, a in layers.items():
            a = np.clip(np.asarray(a, dtype=np.float32), 0, None)
            self.att[mat, y0:y1, x0:x1] += a
            own += a
        return (x0, y0, x1, y1), own

    def render(self, rng: np.random.Generator, noise: float) -> np.ndarray:
        att = self.att
        total = att.sum(axis=0)
        total = np.clip(total + rng.normal(0, noise, total.shape).astype(np.float32) * (0.3 + total), 0, None)
        total += rng.normal(0, noise * 0.3, (self.size, 1)).astype(np.float32)  # detector-line stripes
        total = np.clip(total, 0, None)
        weight = att / np.maximum(att.sum(axis=0), 1e-3)
        hue = weight[ORG, :, :, None] * ORANGE + weight[INORG, :, :, None] * GREEN + weight[METAL, :, :, None] * BLUE
        t = np.exp(-total)[:, :, None]
        rgb = 255.0 * t + hue * (1 - t)
        rgb *= np.exp(-0.35 * np.clip(total - 1.0, 0, None))[:, :, None]
        return np.clip(rgb, 0, 255).astype(np.uint8)


def _baggage_frame(canvas: _Canvas, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A suitcase: shell, telescopic handle rods, wheels; returns the inner area where things lie."""
    n = canvas.size
    m = int(n * rng.uniform(0.04, 0.1))
    x0, y0, x1, y1 = m, m, n - m, n - m
    shell = np.zeros((n, n), dtype=np.float32)
    shell[y0:y1, x0:x1] = 0.12
    canvas.att[ORG] += shell
    rod = max(2, n // 150)
    for x in (x0 + (x1 - x0) // 3, x0 + 2 * (x1 - x0) // 3):
        canvas.att[METAL, y0:y1, x - rod : x + rod] += 1.2
    for cx, cy in ((x0 + 10, y1 - 10), (x1 - 10, y1 - 10)):
        r = n // 40
        canvas.att[METAL, max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] += 1.5
    return x0, y0, x1, y1


def _cargo_frame(canvas: _Canvas, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A container side view: corrugated walls, floor cross-members, pallets."""
    n = canvas.size
    period = rng.uniform(20, 40) * n / 1024
    xs = np.arange(n, dtype=np.float32)
    canvas.att[METAL] += (0.25 + 0.1 * np.sin(xs / period * 2 * np.pi))[None, :]
    canvas.att[METAL, int(n * 0.92) :, :] += 1.0
    for x in range(0, n, max(1, int(n * rng.uniform(0.15, 0.25)))):
        canvas.att[INORG, int(n * 0.85) : int(n * 0.92), x : x + n // 8] += 0.6  # pallets
    return int(n * 0.02), int(n * 0.05), int(n * 0.98), int(n * 0.85)


def _box_of(window: tuple[int, int, int, int], own: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(own > 0.05)
    if len(xs) == 0:
        return None
    x0, y0 = window[0], window[1]
    return x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1


def scene(seed: int, index: int, settings: Settings) -> tuple[np.ndarray, dict[str, Any], list[dict[str, Any]]]:
    """One scan: pixels, image record (scene, hidden) and annotations (label, box xyxy, occluded share)."""
    rng = np.random.default_rng([seed, index])
    n = settings.size
    canvas = _Canvas(n)
    cargo = rng.random() < 0.3
    ix0, iy0, ix1, iy1 = _cargo_frame(canvas, rng) if cargo else _baggage_frame(canvas, rng)

    def spot(half: float) -> tuple[float, float]:
        return rng.uniform(ix0 + half, max(ix0 + half + 1, ix1 - half)), rng.uniform(
            iy0 + half, max(iy0 + half + 1, iy1 - half)
        )

    for _ in range(int(rng.integers(settings.clutter[0], settings.clutter[1] + 1))):
        fn, (lo, hi) = CLUTTER[int(rng.integers(len(CLUTTER)))]
        if cargo and fn is clothes:
            fn = carton
        half = rng.uniform(lo, hi) * n
        canvas.place(fn, rng, *spot(half), half, rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 1.6))
    benign = rng.random() < settings.benign_share
    labels: list[str] = []
    if not benign:
        labels += [str(rng.choice(THREATS)) for _ in range(int(rng.integers(1, 3)))]
    lookalikes = [c for c in CLASSES if c not in THREATS]
    labels += [
        str(rng.choice(lookalikes))
        for _ in range(int(rng.integers(settings.lookalikes[0], settings.lookalikes[1] + 1)))
    ]
    anns: list[dict[str, Any]] = []
    placed: list[tuple[str, tuple[int, int, int, int], np.ndarray, tuple[int, int, int, int]]] = []
    for label in labels:
        lo, hi = SIZES[label]
        half = rng.uniform(lo, hi) * n
        aspect = rng.uniform(1.0, 1.25)
        cx, cy = spot(half * 1.2)
        got = canvas.place(SHAPES[label], rng, cx, cy, half, rng.uniform(0, 2 * np.pi), aspect)
        if got is None:
            continue
        window, own = got
        box = _box_of(window, own)
        if box is None or (box[2] - box[0]) < 6 or (box[3] - box[1]) < 6:
            continue
        if label in THREATS and rng.random() < settings.hidden_prob:  # hide it under something dense
            b = box
            ocx = (b[0] + b[2]) / 2 + rng.uniform(-0.15, 0.15) * (b[2] - b[0])
            ocy = (b[1] + b[3]) / 2 + rng.uniform(-0.15, 0.15) * (b[3] - b[1])
            ohalf = 0.5 * max(b[2] - b[0], b[3] - b[1]) * rng.uniform(0.75, 1.05)
            canvas.place(occluder, rng, ocx, ocy, ohalf, rng.uniform(-0.3, 0.3), 1.0)
        placed.append((label, window, own, box))
    total = canvas.att.sum(axis=0)
    hidden = False
    for label, window, own, box in placed:
        x0, y0, x1, y1 = window
        mask = own > 0.05
        others = total[y0:y1, x0:x1] - own
        occluded = float((others[mask] > 0.8).mean()) if mask.any() else 0.0
        if label in THREATS and occluded >= 0.4:
            hidden = True
        anns.append({"label": label, "box": list(box), "occluded": round(occluded, 3)})
    rgb = canvas.render(rng, settings.noise)
    image = {"width": n, "height": n, "scene": "cargo" if cargo else "baggage", "hidden": hidden, "benign": benign}
    return rgb, image, anns


def generate(out: Path, n: int, seed: int, settings: Settings | None = None, *, difficulty: str = "normal") -> Path:
    """Write `n` scans to out/images and their COCO annotations to out/annotations.json; returns that file."""
    settings = settings or Settings.named(difficulty)
    (out / "images").mkdir(parents=True, exist_ok=True)
    categories = [
        {"id": i + 1, "name": c, "supercategory": "threat" if c in THREATS else "benign"} for i, c in enumerate(CLASSES)
    ]
    cat_id = {c["name"]: c["id"] for c in categories}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(n):
        rgb, image, anns = scene(seed, i, settings)
        name = f"images/{seed:04d}_{i:06d}.png"
        (out / name).write_bytes(to_png(rgb))
        images.append({"id": i + 1, "file_name": name, **image})
        for a in anns:
            x0, y0, x1, y1 = a["box"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": cat_id[a["label"]],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "occluded": a["occluded"],
                }
            )
    coco = {
        "info": {
            "description": f"Synthetic dual-energy X-ray scans ({GENERATOR_VERSION}, seed {seed}, {difficulty})",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.__dict__.items()},
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    path = out / "annotations.json"
    path.write_text(json.dumps(coco, indent=1))
    return path
