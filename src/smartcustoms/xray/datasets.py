"""Annotated scans from disk: COCO JSON, SIXray (Pascal VOC XML) and OPIXray (text lines) layouts.

An administration trains and evaluates on its own scans with one command; every loader returns the same
`Sample` list and reports all problems in a file at once (bad boxes, unknown categories, missing images).
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.model import THREATS, Box, canonical_label

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
FORMATS = ("coco", "sixray", "opixray")


@dataclass(frozen=True)
class Sample:
    """One annotated scan: image file, boxes with their labels, and what the split needs to know."""

    image: Path
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]
    hidden: bool = False
    occluded: tuple[float, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def benign(self) -> bool:
        """No threat in the scan (false alarms are counted on these)."""
        return not any(label in THREATS for label in self.labels)


def _fail(problems: list[Problem]) -> None:
    if problems:
        raise XrayError(problems[:50])


def load_coco(path: Path) -> list[Sample]:
    """COCO detection JSON (a file, or a folder holding annotations.json); images relative to the file."""
    if path.is_dir():
        candidates = [path / "annotations.json", *sorted((path / "annotations").glob("*.json"))]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise XrayError(
                Problem("missing_annotations", ("data",), t("No annotations.json in {path}", path=str(path)))
            )
        path = found[0]
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise XrayError(
            Problem("bad_json", ("data", str(path)), t("Not a readable COCO JSON file ({error})", error=str(exc)))
        ) from None
    problems: list[Problem] = []
    if not isinstance(coco, dict):
        raise XrayError(Problem("bad_coco", ("data",), t("A COCO file is a JSON object")))
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            problems.append(Problem("missing_key", (key,), t("COCO needs a list '{key}'", key=key)))
    _fail(problems)
    cats: dict[int, str] = {}
    for i, c in enumerate(coco["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            problems.append(Problem("bad_category", ("categories", i), t("A category needs an integer id and a name")))
            continue
        cats[c["id"]] = canonical_label(c["name"])
    root = path.parent
    images: dict[int, dict[str, Any]] = {}
    for i, im in enumerate(coco["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            problems.append(Problem("bad_image", ("images", i), t("An image needs an integer id and a file_name")))
            continue
        file = root / im["file_name"]
        if not file.is_file() and (root / "images" / im["file_name"]).is_file():
            file = root / "images" / im["file_name"]
        if not file.is_file():
            problems.append(
                Problem("missing_image", ("images", i, "file_name"), t("No image file {file}", file=str(file)))
            )
            continue
        images[im["id"]] = {**im, "path": file}
    by_image: dict[int, list[tuple[Box, str, float]]] = {k: [] for k in images}
    for i, a in enumerate(coco["annotations"]):
        where: tuple[str | int, ...] = ("annotations", i)
        if not isinstance(a, dict):
            problems.append(Problem("bad_annotation", where, t("An annotation is an object")))
            continue
        bbox = a.get("bbox")
        if a.get("category_id") not in cats:
            problems.append(
                Problem(
                    "unknown_category",
                    (*where, "category_id"),
                    t("Unknown category {category}", category=str(a.get("category_id"))),
                )
            )
            continue
        if a.get("image_id") not in images:
            if a.get("image_id") not in {im.get("id") for im in coco["images"] if isinstance(im, dict)}:
                problems.append(
                    Problem(
                        "unknown_image", (*where, "image_id"), t("Unknown image {image}", image=str(a.get("image_id")))
                    )
                )
            continue
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in bbox)
            or bbox[2] <= 0
            or bbox[3] <= 0
            or bbox[0] < 0
            or bbox[1] < 0
        ):
            problems.append(
                Problem("bad_bbox", (*where, "bbox"), t("bbox is [x, y, width, height] with positive size"))
            )
            continue
        x, y, w, h = (float(v) for v in bbox)
        by_image[a["image_id"]].append((Box(x, y, x + w, y + h), cats[a["category_id"]], float(a.get("occluded", 0.0))))
    _fail(problems)
    out = []
    for image_id, im in images.items():
        anns = by_image[image_id]
        out.append(
            Sample(
                im["path"],
                tuple(b for b, _, _ in anns),
                tuple(label for _, label, _ in anns),
                hidden=bool(im.get("hidden", False)),
                occluded=tuple(o for _, _, o in anns),
                meta={k: im[k] for k in ("scene", "width", "height") if k in im},
            )
        )
    return out


def _find_images(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            found.setdefault(p.stem, p)
            found.setdefault(p.name, p)
    return found


def _parse_voc(path: Path) -> tuple[str, list[tuple[Box, str]]]:
    """SIXray localisation files are Pascal VOC: <annotation><filename/><object><name/><bndbox/>."""
    try:
        root = ET.fromstring(path.read_bytes())
    except (ET.ParseError, OSError) as exc:
        raise XrayError(
            Problem("bad_xml", ("data", str(path)), t("Not a readable VOC XML file ({error})", error=str(exc)))
        ) from None
    filename = (root.findtext("filename") or path.stem).strip()
    objects = []
    problems = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        try:
            assert bb is not None and name
            x0, y0, x1, y1 = (float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
            assert x1 > x0 and y1 > y0
        except (AssertionError, ValueError):
            problems.append(
                Problem("bad_object", ("data", str(path), "object", i), t("Object needs a name and a bndbox"))
            )
            continue
        objects.append((Box(x0, y0, x1, y1), canonical_label(name)))
    _fail(problems)
    return filename, objects


def parse_opixray_lines(text: str, source: str = "annotation") -> list[tuple[str, str, Box]]:
    """OPIXray text annotation: one object per line, `image.jpg Class_Name xmin ymin xmax ymax`."""
    out: list[tuple[str, str, Box]] = []
    problems = []
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < 6:
                raise ValueError("too few fields")
            x0, y0, x1, y1 = (float(p) for p in parts[-4:])
            if not (x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0):
                raise ValueError("empty box")
        except ValueError as exc:
            problems.append(
                Problem(
                    "bad_line", ("data", source, n), t("Expected 'image class x1 y1 x2 y2' ({error})", error=str(exc))
                )
            )
            continue
        out.append((parts[0], canonical_label("_".join(parts[1:-4])), Box(x0, y0, x1, y1)))
    _fail(problems)
    return out


def load_sixray(path: Path) -> list[Sample]:
    """SIXray (VOC XML per image) or OPIXray (text per image) folders; images found anywhere below `path`.

    Images with no annotation file count as negatives (SIXray's large negative share), only when they sit
    in the same folder tree and `negatives.txt` or a `negative` folder lists them, so unlabelled images
    are never silently treated as clean.
    """
    if not path.is_dir():
        raise XrayError(Problem("missing_data", ("data",), t("No folder {path}", path=str(path))))
    images = _find_images(path)
    by_image: dict[str, list[tuple[Box, str]]] = {}
    problems: list[Problem] = []
    for ann in sorted(path.rglob("*.xml")):
        filename, objects = _parse_voc(ann)
        by_image.setdefault(filename, []).extend(objects)
    for ann in sorted(path.rglob("*.txt")):
        if ann.name == "negatives.txt":
            continue
        for image, label, box in parse_opixray_lines(ann.read_text(encoding="utf-8", errors="replace"), str(ann)):
            by_image.setdefault(image, []).append((box, label))
    negatives = set()
    neg_file = path / "negatives.txt"
    if neg_file.is_file():
        negatives = {line.strip() for line in neg_file.read_text().splitlines() if line.strip()}
    negatives |= {
        p.name for p in path.rglob("*") if p.parent.name.lower() == "negative" and p.suffix.lower() in IMAGE_SUFFIXES
    }
    out: list[Sample] = []
    for name, objects in sorted(by_image.items()):
        file = images.get(name) or images.get(Path(name).stem)
        if file is None:
            problems.append(Problem("missing_image", ("data", name), t("No image file for {name}", name=name)))
            continue
        out.append(Sample(file, tuple(b for b, _ in objects), tuple(label for _, label in objects)))
    for name in sorted(negatives):
        file = images.get(name) or images.get(Path(name).stem)
        if file is not None and name not in by_image:
            out.append(Sample(file, (), ()))
    _fail(problems)
    if not out:
        raise XrayError(
            Problem(
                "no_annotations", ("data",), t("No SIXray XML or OPIXray text annotations in {path}", path=str(path))
            )
        )
    return out


def load(path: Path, fmt: str) -> list[Sample]:
    if fmt == "coco":
        return load_coco(path)
    if fmt in ("sixray", "opixray"):
        return load_sixray(path)
    raise XrayError(
        Problem(
            "unknown_format",
            ("format",),
            t("Format {format} unknown; one of {formats}", format=fmt, formats=", ".join(FORMATS)),
        )
    )


def write_coco(samples: Sequence[Sample], out: Path, *, description: str, copy_images: bool = True) -> Path:
    """Samples to a COCO folder (images copied under out/images): the shape `xray train --format coco` reads."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    labels = sorted({label for s in samples for label in s.labels})
    cat_id = {name: i + 1 for i, name in enumerate(labels)}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i, s in enumerate(samples, start=1):
        name = f"images/{i:06d}{s.image.suffix.lower()}"
        if copy_images:
            shutil.copyfile(s.image, out / name)
        images.append({"id": i, "file_name": name, "hidden": s.hidden, **s.meta})
        for box, label in zip(s.boxes, s.labels, strict=True):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": cat_id[label],
                    "bbox": [box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1],
                    "area": box.area,
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": description},
        "images": images,
        "annotations": anns,
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
    }
    path = out / "annotations.json"
    path.write_text(json.dumps(coco, indent=1))
    return path


def describe(samples: Iterable[Sample]) -> dict[str, Any]:
    """Counts for the model card: images, objects per class, benign and hidden scans."""
    samples = list(samples)
    per_class: dict[str, int] = {}
    for s in samples:
        for label in s.labels:
            per_class[label] = per_class.get(label, 0) + 1
    return {
        "images": len(samples),
        "objects": sum(per_class.values()),
        "per_class": dict(sorted(per_class.items())),
        "benign_images": sum(1 for s in samples if s.benign),
        "hidden_images": sum(1 for s in samples if s.hidden),
    }
