"""The generator: same seed, same scans; boxes inside the image; hard settings hide objects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from smartcustoms.xray import synth
from smartcustoms.xray.datasets import load_coco
from smartcustoms.xray.model import CLASSES, THREATS


def test_same_seed_same_scans_other_seed_other_scans(tmp_path: Path) -> None:
    settings = synth.Settings.named("normal", 160)
    a = synth.generate(tmp_path / "a", 3, 7, settings)
    b = synth.generate(tmp_path / "b", 3, 7, settings)
    synth.generate(tmp_path / "c", 3, 8, settings)
    assert json.loads(a.read_text()) == json.loads(b.read_text())
    for name in sorted((tmp_path / "a" / "images").iterdir()):
        assert name.read_bytes() == (tmp_path / "b" / "images" / name.name).read_bytes()
    assert [x.read_bytes() for x in sorted((tmp_path / "a" / "images").iterdir())] != [
        x.read_bytes() for x in sorted((tmp_path / "c" / "images").iterdir())
    ]


def test_scene_is_reproducible_per_index_and_boxes_fit() -> None:
    settings = synth.Settings.named("hard", 192)
    rgb1, _image1, anns1 = synth.scene(3, 5, settings)
    rgb2, _, anns2 = synth.scene(3, 5, settings)
    assert np.array_equal(rgb1, rgb2) and anns1 == anns2
    assert rgb1.shape == (192, 192, 3) and rgb1.dtype == np.uint8
    for a in anns1:
        x0, y0, x1, y1 = a["box"]
        assert 0 <= x0 < x1 <= 192 and 0 <= y0 < y1 <= 192
        assert a["label"] in CLASSES and 0 <= a["occluded"] <= 1


def test_false_colours_follow_materials() -> None:
    canvas = synth._Canvas(64)
    canvas.att[synth.ORG, :, :20] = 1.0
    canvas.att[synth.INORG, :, 22:42] = 1.0
    canvas.att[synth.METAL, :, 44:] = 1.0
    rgb = canvas.render(np.random.default_rng(0), 0.0).astype(int)
    org, inorg, metal = rgb[:, 10].mean(0), rgb[:, 32].mean(0), rgb[:, 54].mean(0)
    assert org[0] > org[2] + 50, "organic is orange"
    assert inorg[1] > inorg[0] and inorg[1] > inorg[2], "inorganic is green"
    assert metal[2] > metal[0] + 50, "metal is blue"
    assert rgb[:, 20:22].mean() > 240, "empty belt is white"


def test_hard_set_has_hidden_threats_and_benign_scans(tmp_path: Path) -> None:
    synth.generate(tmp_path, 24, 11, synth.Settings.named("hard", 160), difficulty="hard")
    samples = load_coco(tmp_path)
    assert len(samples) == 24
    assert any(s.hidden for s in samples)
    assert any(s.benign for s in samples)
    assert any(label in THREATS for s in samples for label in s.labels)
    assert all(max(s.occluded, default=0) >= 0.4 for s in samples if s.hidden)


def test_baseline_finds_dark_metal_and_ignores_the_frame() -> None:
    from smartcustoms.xray import baseline
    from smartcustoms.xray.imaging import Scan
    from smartcustoms.xray.model import Box

    canvas = synth._Canvas(256)
    canvas.att[synth.METAL, 20:236, 60:64] = 1.5  # a long rod of the suitcase frame
    canvas.att[synth.METAL, 100:130, 120:170] = 2.0  # a compact dense metal object
    rgb = canvas.render(np.random.default_rng(0), 0.0)
    dets = baseline.detect(Scan(rgb, 256, 256, "PNG", "RGB", 1.0))
    assert [d.label for d in dets] == ["handgun"]
    assert dets[0].box.iou(Box(120, 100, 170, 130)) > 0.5
