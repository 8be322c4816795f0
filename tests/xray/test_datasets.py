"""Loaders: COCO round trip (hypothesis), SIXray VOC XML, OPIXray text lines, problems listed at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcustoms.xray.datasets import Sample, describe, load, load_coco, parse_opixray_lines, write_coco
from smartcustoms.xray.errors import XrayError
from smartcustoms.xray.model import Box

coords = st.floats(min_value=0, max_value=500, allow_nan=False, allow_infinity=False)
boxes = st.tuples(coords, coords, st.floats(1, 300), st.floats(1, 300)).map(
    lambda t: Box(t[0], t[1], t[0] + t[2], t[1] + t[3])
)
labels = st.sampled_from(["meat", "drugs", "handgun", "knife", "book"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(boxes, labels), max_size=4), min_size=1, max_size=4))
def test_coco_round_trip(tmp_path: Path, scans: list[list[tuple[Box, str]]]) -> None:
    image = tmp_path / "src.png"
    image.write_bytes(b"\x89PNG fake")
    samples = [Sample(image, tuple(b for b, _ in objs), tuple(label for _, label in objs)) for objs in scans]
    out = tmp_path / f"coco{abs(hash(str(scans)))}"
    back = load_coco(write_coco(samples, out, description="t"))
    assert [s.labels for s in back] == [s.labels for s in samples]
    for a, b in zip(back, samples, strict=True):
        for x, y in zip(a.boxes, b.boxes, strict=True):
            assert x.as_list() == pytest.approx(y.as_list(), abs=1e-6)


def test_bad_coco_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "missing.png"}, {"file_name": 3}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 5]},
            {"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 5]},
            {"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 5]},
        ],
        "categories": [{"id": 1, "name": "Gun"}],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(XrayError) as err:
        load_coco(tmp_path)
    assert [p.code for p in err.value.problems] == [
        "missing_image",
        "bad_image",
        "bad_bbox",
        "unknown_category",
        "unknown_image",
    ]
    (tmp_path / "annotations.json").write_text("{not json")
    with pytest.raises(XrayError, match="COCO JSON"):
        load_coco(tmp_path)
    with pytest.raises(XrayError, match="unknown"):
        load(tmp_path, "yolo")


def test_sixray_voc_xml_and_negatives(tmp_path: Path) -> None:
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotation").mkdir()
    for name in ("P00001.jpg", "N00001.jpg"):
        (tmp_path / "JPEGImages" / name).write_bytes(b"x")
    (tmp_path / "Annotation" / "P00001.xml").write_text(
        "<annotation><filename>P00001.jpg</filename>"
        "<object><name>Gun</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>90</ymax></bndbox></object>"
        "<object><name>Wrench</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>"
        "</annotation>"
    )
    (tmp_path / "negatives.txt").write_text("N00001.jpg\n")
    samples = load(tmp_path, "sixray")
    pos, neg = samples
    assert pos.labels == ("handgun", "tool") and pos.boxes[0] == Box(10, 20, 110, 90)
    assert neg.labels == () and neg.benign
    assert describe(samples)["per_class"] == {"handgun": 1, "tool": 1}
    (tmp_path / "Annotation" / "bad.xml").write_text("<annotation><object><name>Gun</name></object></annotation>")
    with pytest.raises(XrayError) as err:
        load(tmp_path, "sixray")
    assert err.value.problems[0].code == "bad_object"


def test_opixray_text_annotations(tmp_path: Path) -> None:
    (tmp_path / "image").mkdir()
    (tmp_path / "annotation").mkdir()
    (tmp_path / "image" / "009000.jpg").write_bytes(b"x")
    (tmp_path / "annotation" / "009000.txt").write_text("009000.jpg Straight_Knife 94 141 237 191\n\n")
    (sample,) = load(tmp_path, "opixray")
    assert sample.labels == ("knife",) and sample.boxes == (Box(94, 141, 237, 191),)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z0-9_]{1,12}\.jpg", fullmatch=True),
            st.from_regex(r"[A-Za-z][A-Za-z_-]{0,15}", fullmatch=True),
            st.integers(0, 2000),
            st.integers(0, 2000),
            st.integers(1, 500),
            st.integers(1, 500),
        ),
        max_size=6,
    ),
    st.sampled_from([" ", "  ", "\t"]),
)
def test_opixray_lines_parse_whatever_the_spacing(rows: list[tuple[str, str, int, int, int, int]], sep: str) -> None:
    text = "\n".join(sep.join(map(str, (img, cls, x, y, x + w, y + h))) for img, cls, x, y, w, h in rows)
    parsed = parse_opixray_lines(text)
    assert [(p[0], p[2].as_list()) for p in parsed] == [
        (img, [float(x), float(y), float(x + w), float(y + h)]) for img, _, x, y, w, h in rows
    ]


@given(st.text(max_size=60))
@settings(max_examples=100, deadline=None)
def test_opixray_parser_never_crashes(text: str) -> None:
    try:
        parse_opixray_lines(text)
    except XrayError as exc:
        assert all(p.code == "bad_line" for p in exc.problems)
