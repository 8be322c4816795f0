"""Through the HTTP API and the console: upload a scan, see a conflict put the declaration in lane C3,
review detections, export them as training data; bad uploads are refused with every problem listed."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from smartcustoms.clearance import config
from smartcustoms.platform.db import unit_of_work
from smartcustoms.xray import service, synth
from smartcustoms.xray.datasets import load_coco
from smartcustoms.xray.detector import CARD_FILE, SHIPPED
from smartcustoms.xray.imaging import Scan
from smartcustoms.xray.model import Box, Detection
from tests.clearance.conftest import Env, declaration


class FakeDetector:
    """Sees what the test says, so the flow is tested apart from the model's quality."""

    version_ = "xray-test-1"
    alarm_threshold_ = 0.5

    def __init__(self, dets: list[Detection]) -> None:
        self.dets = dets

    def explain(self, scan: Scan, *, min_score: float = 0.0) -> tuple[list[Detection], np.ndarray]:
        heat = np.zeros((scan.rgb.shape[0] // 4, scan.rgb.shape[1] // 4), dtype=np.float32)
        heat[2:5, 2:5] = 0.9
        return [d for d in self.dets if d.score >= min_score], heat


def _png(w: int = 200, h: int = 160) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 250, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _tiff16() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.tile(np.linspace(0, 65000, 120, dtype=np.uint16), (90, 1))).save(buf, format="TIFF")
    return buf.getvalue()


def _file(data: bytes, name: str = "scan.png", kind: str = "image/png") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, kind)}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> FakeDetector:
    fake = FakeDetector(
        [
            Detection("meat", 0.91, Box(20, 30, 90, 80)),
            Detection("book", 0.8, Box(100, 20, 150, 60)),
            Detection("knife", 0.1, Box(0, 0, 5, 5)),
        ]
    )
    monkeypatch.setattr(service, "detector", lambda: fake)
    return fake


def _under_check(env: Env, lrn: str) -> str:
    env.client.put(
        "/admin/settings/lane_rules",
        json={"random_c2_share": 1.0, "random_c3_share": 0, "high_value_c2": None},
        headers=env.h("admin"),
    )
    config.forget()
    r = env.client.post("/declarations", json=declaration(lrn=lrn), headers=env.h("trader"))
    assert r.status_code == 201 and r.json()["status"] == "under_check", r.text
    return str(r.json()["reference"])


def test_meat_in_a_phone_declaration_sends_it_to_inspection(env: Env, seen: FakeDetector, tmp_path: Path) -> None:
    ref = _under_check(env, "X-1")
    r = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(_png()), headers=env.h("officer"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["declaration"] == {"reference": ref, "lane": "C3", "status": "under_inspection"}
    assert [d["label"] for d in body["detections"]] == ["meat", "book"], "below 0.2 is not kept"
    assert all(d["model_version"] == "xray-test-1" for d in body["detections"])
    (finding,) = body["findings"]
    assert finding["source"] == "xray" and finding["lane"] == "C3" and finding["score"] == 0.91
    assert finding["message"].startswith(
        "meat detected with confidence 0.91; declared: Smartphones, 128 GB / Men's T-shirts of cotton, knitted; chapters 85, 61"
    )
    assert finding["version"] == "xray-test-1"

    got = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert got["lane"] == "C3" and got["status"] == "under_inspection"
    assert got["findings"][-1]["code"] == "declared_vs_seen" and "xray-test-1" in got["lane_versions"]

    scan_id = body["id"]
    listed = env.client.get(f"/xray/declarations/{ref}/scans", headers=env.h("officer")).json()
    assert [s["id"] for s in listed["scans"]] == [scan_id] and listed["scans"][0]["conflicts"]
    img = env.client.get(f"/xray/scans/{scan_id}/image", headers=env.h("officer"))
    assert img.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(img.content)).size == (200, 160)
    heat = env.client.get(f"/xray/scans/{scan_id}/heatmap", headers=env.h("officer"))
    assert Image.open(io.BytesIO(heat.content)).mode == "RGBA"

    meat_id, book_id = (d["id"] for d in body["detections"])
    r = env.client.post(f"/xray/detections/{meat_id}/review", json={"verdict": "confirmed"}, headers=env.h("officer"))
    assert r.status_code == 200 and r.json()["verdict"] == "confirmed"
    bad = env.client.post(f"/xray/detections/{book_id}/review", json={"verdict": "maybe"}, headers=env.h("officer"))
    assert bad.status_code == 422
    with unit_of_work() as s:
        _, n = service.export_feedback(s, tmp_path / "fb")
    assert n == 0, "a scan with a detection still to review is not training data yet"
    env.client.post(f"/xray/detections/{book_id}/review", json={"verdict": "rejected"}, headers=env.h("officer"))
    with unit_of_work() as s:
        path, n = service.export_feedback(s, tmp_path / "fb2")
    assert n == 1
    (sample,) = load_coco(path)
    assert sample.labels == ("meat",) and sample.boxes[0].as_list() == [20, 30, 90, 80]


def test_declared_goods_that_explain_the_scan_raise_nothing(env_sqlite: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_sqlite
    monkeypatch.setattr(service, "detector", lambda: FakeDetector([Detection("electronics", 0.95, Box(1, 1, 50, 50))]))
    ref = _under_check(env, "X-2")
    r = env.client.post(
        f"/xray/declarations/{ref}/scans", files=_file(_tiff16(), "belt.tif", "image/tiff"), headers=env.h("officer")
    )
    assert r.status_code == 201, r.text
    assert r.json()["findings"] == [] and r.json()["declaration"]["status"] == "under_check"
    assert r.json()["media_type"] == "image/tiff" and r.json()["pixel_mode"].startswith("I;16")


def test_bad_uploads_and_roles(env_sqlite: Env, seen: FakeDetector) -> None:
    env = env_sqlite
    ref = _under_check(env, "X-3")
    url = f"/xray/declarations/{ref}/scans"
    r = env.client.post(url, files=_file(_png()[:100]), headers=env.h("officer"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "corrupt_image"
    r = env.client.post(url, files=_file(b"GIF89a....", "x.gif", "image/gif"), headers=env.h("officer"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "unsupported_format"
    assert env.client.post(url, files=_file(_png()), headers=env.h("trader")).status_code == 403
    assert (
        env.client.post("/xray/declarations/NOPE/scans", files=_file(_png()), headers=env.h("officer")).status_code
        == 404
    )
    assert env.client.post(url, headers=env.h("officer")).status_code == 422
    assert env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()["status"] == "under_check"
    assert env.client.get("/xray/scans/999", headers=env.h("officer")).status_code == 404
    assert (
        env.client.post(
            "/xray/detections/999/review", json={"verdict": "confirmed"}, headers=env.h("officer")
        ).status_code
        == 404
    )
    got = env.client.get("/xray/rules", headers=env.h("officer")).json()
    assert {
        "label": "meat",
        "chapters": ["02", "16"],
        "needs_permit": False,
        "enforce": True,
        "min_confidence": got["alarm_threshold"],
        "own_threshold": False,
    } in got["rules"]
    assert got["alarm_threshold"] == service.alarm_threshold() and 0 < got["alarm_threshold"] < 1


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_console_panel_scan_page_and_review(env_sqlite: Env, seen: FakeDetector) -> None:
    from tests.clearance.test_pages import sign_in

    env = env_sqlite
    ref = _under_check(env, "X-4")
    client = TestClient(env.client.app, headers={"accept-language": "en"})
    sign_in(client, "officer", "officer-pw-123")
    page = client.get(f"/console/declarations/{ref}").text
    assert 'id="xray-panel"' in page and "No scan attached yet" in page
    r = client.post(
        f"/console/xray/declarations/{ref}/scans",
        files=_file(_png()),
        data={"csrf": _csrf(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    scan_page = client.get(r.headers["location"]).text
    assert 'id="xray-conflict"' in scan_page and "meat detected with confidence 0.91" in scan_page
    assert 'id="xray-heat"' in scan_page and "<rect" in scan_page
    det_id = re.search(r'action="/console/xray/detections/(\d+)/review"', scan_page)
    assert det_id
    r = client.post(
        f"/console/xray/detections/{det_id.group(1)}/review",
        data={"verdict": "confirmed", "csrf": _csrf(scan_page)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "confirmed" in client.get(r.headers["location"].split("#")[0]).text
    page = client.get(f"/console/declarations/{ref}").text
    assert 'id="xray-conflict"' in page and 'href="/console/xray"' in page
    assert ref in client.get("/console/xray").text
    r = client.post(f"/console/xray/detections/{det_id.group(1)}/review", data={"verdict": "confirmed", "csrf": "bad"})
    assert r.status_code in (400, 403)


def test_shipped_model_through_the_api(env_sqlite: Env, tmp_path: Path) -> None:
    """The real model, end to end: whatever it sees is stored with its version."""
    if not (SHIPPED / CARD_FILE).exists():
        pytest.skip("no shipped model in this checkout")
    env = env_sqlite
    service.forget_model()
    synth.generate(tmp_path, 1, 3, synth.Settings.named("normal", 512))
    data = next((tmp_path / "images").iterdir()).read_bytes()
    ref = _under_check(env, "X-5")
    r = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(data), headers=env.h("officer"))
    assert r.status_code == 201, r.text
    version = service.detector().version_
    assert r.json()["model_version"] == version and all(d["model_version"] == version for d in r.json()["detections"])
    card = env.client.get(
        "/xray/model", headers=env.h("analyst") if "analyst" in env.tokens else env.h("officer")
    ).json()
    assert card["version"] == version and "history" not in json.dumps(card["metrics"])


def test_reviewed_scans_retrain_in_one_command(
    env_sqlite: Env, seen: FakeDetector, tiny_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from smartcustoms.xray.cli import app

    env = env_sqlite
    ref = _under_check(env, "X-6")
    body = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(_png()), headers=env.h("officer")).json()
    for d, verdict in zip(body["detections"], ("confirmed", "rejected"), strict=True):
        env.client.post(f"/xray/detections/{d['id']}/review", json={"verdict": verdict}, headers=env.h("officer"))
    r = CliRunner().invoke(
        app,
        [
            "retrain",
            "--out",
            str(tmp_path / "m"),
            "--base-data",
            str(tiny_data),
            "--epochs",
            "1",
            "--input-size",
            "64",
            "--width",
            "4",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["feedback_scans"] == 1 and out["version"].startswith("xray-centernet-")
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    assert card["training_data"]["description"].startswith("1 officer-reviewed scans")


def test_an_amendment_is_judged_again_against_the_scans(env_sqlite: Env, seen: FakeDetector) -> None:
    env = env_sqlite
    ref = _under_check(env, "X-7")
    body = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(_png()), headers=env.h("officer")).json()
    assert body["declaration"]["lane"] == "C3"
    env.client.put(
        "/admin/settings/lane_rules",
        json={"random_c2_share": 0, "random_c3_share": 0, "high_value_c2": None},
        headers=env.h("admin"),
    )
    config.forget()

    def amend(decl: dict[str, object]) -> dict[str, object]:
        r = env.client.post(
            f"/declarations/{ref}/decisions",
            json={"action": "request_amendment", "reason": "check goods"},
            headers=env.h("officer"),
        )
        assert r.status_code == 200, r.text
        r = env.client.put(
            f"/declarations/{ref}", json={"declaration": decl, "reason": "fixed"}, headers=env.h("trader")
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    same = amend(declaration(lrn="X-7"))
    assert same["lane"] == "C3" and same["status"] == "under_inspection"
    assert [f["code"] for f in same["findings"]] == ["declared_vs_seen"]

    meat = declaration(lrn="X-7")
    meat["items"][0] |= {"description": "Frozen bovine cuts, boneless", "tariff_code": "020230"}
    fixed = amend(meat)
    assert not [f for f in fixed["findings"] if f["source"] == "xray"], fixed["findings"]
    assert fixed["lane"] != "C3"


def test_an_officer_draws_a_missed_box_and_it_becomes_training_data(
    env_sqlite: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = env_sqlite
    monkeypatch.setattr(service, "detector", lambda: FakeDetector([Detection("book", 0.8, Box(100, 20, 150, 60))]))
    ref = _under_check(env, "X-8")
    body = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(_png()), headers=env.h("officer")).json()
    assert body["findings"] == [] and body["declaration"]["status"] == "under_check"
    scan_id, (book,) = body["id"], body["detections"]
    url = f"/xray/scans/{scan_id}/boxes"

    bad = env.client.post(url, json={"label": "zebra", "box": [10, 10, 300, 5]}, headers=env.h("officer"))
    assert bad.status_code == 422 and [p["code"] for p in bad.json()["problems"]] == ["unknown_class", "bad_box"]
    assert env.client.post(url, json={"label": "meat", "box": [1, 2]}, headers=env.h("officer")).status_code == 422
    tiny = env.client.post(url, json={"label": "meat", "box": [1, 1, 3, 3]}, headers=env.h("officer"))
    assert tiny.status_code == 422 and tiny.json()["problems"][0]["code"] == "bad_box"
    assert env.client.post(
        url, json={"label": "meat", "box": [20, 30, 90, 80]}, headers=env.h("trader")
    ).status_code in (
        401,
        403,
    )
    assert (
        env.client.post(
            "/xray/scans/999/boxes", json={"label": "meat", "box": [1, 1, 9, 9]}, headers=env.h("officer")
        ).status_code
        == 404
    )

    r = env.client.post(
        url, json={"label": "meat", "box": [20, 30, 90, 80], "note": "under the tray"}, headers=env.h("officer")
    )
    assert r.status_code == 201, r.text
    drawn = r.json()["detection"]
    assert drawn | {"id": 0} == {
        "id": 0,
        "label": "meat",
        "score": 1.0,
        "box": [20.0, 30.0, 90.0, 80.0],
        "model_version": "xray-test-1",
        "verdict": "confirmed",
        "reviewed_by": "officer",
        "note": "under the tray",
        "origin": "officer",
    }
    (finding,) = r.json()["findings"]
    assert finding["code"] == "declared_vs_seen" and finding["lane"] == "C3"
    assert finding["message"].startswith("meat detected with confidence 1.00; declared: Smartphones")
    got = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert got["lane"] == "C3" and got["status"] == "under_inspection"
    assert r.json()["scan"]["conflicts"][0]["code"] == "declared_vs_seen"

    with unit_of_work() as s:
        _, n = service.export_feedback(s, tmp_path / "fb")
    assert n == 0, "the model's book detection is still to review"
    env.client.post(f"/xray/detections/{book['id']}/review", json={"verdict": "rejected"}, headers=env.h("officer"))
    with unit_of_work() as s:
        path, n = service.export_feedback(s, tmp_path / "fb2")
    assert n == 1
    (sample,) = load_coco(path)
    assert sample.labels == ("meat",) and sample.boxes[0].as_list() == [20, 30, 90, 80]


def test_console_draws_a_missed_box(env_sqlite: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.clearance.test_pages import sign_in

    env = env_sqlite
    monkeypatch.setattr(service, "detector", lambda: FakeDetector([]))
    ref = _under_check(env, "X-9")
    scan_id = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(_png()), headers=env.h("officer")).json()[
        "id"
    ]
    client = TestClient(env.client.app, headers={"accept-language": "en"})
    sign_in(client, "officer", "officer-pw-123")
    page = client.get(f"/console/xray/scans/{scan_id}").text
    assert 'id="xray-add-box"' in page and "/console/xray/assets/xray.js" in page and "style=" not in page
    assert client.get("/console/xray/assets/xray.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/console/xray/assets/other.py").status_code == 404
    form = {"csrf": _csrf(page), "label": "drugs", "x1": "10", "y1": "12", "x2": "60", "y2": "70", "note": ""}
    r = client.post(f"/console/xray/scans/{scan_id}/boxes", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    after = client.get(r.headers["location"].split("#")[0]).text
    assert "drawn by officer" in after and 'id="xray-conflict"' in after and "drugs detected" in after
    zh = client.get(r.headers["location"].split("#")[0] + "?lang=zh-Hant").text
    assert "偵測到毒品,信心度 1.00;申報內容:" in zh and "關員標示" in zh
    bad = client.post(f"/console/xray/scans/{scan_id}/boxes", data=form | {"x2": "abc"})
    assert "bad_box" in bad.text


def test_problems_come_in_the_callers_language(env_sqlite: Env, seen: FakeDetector) -> None:
    env = env_sqlite
    ref = _under_check(env, "X-10")
    zh = env.h("officer") | {"accept-language": "zh-TW"}
    r = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(b"GIF89a not a scan", "x.gif"), headers=zh)
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "unsupported_format"
    assert r.json()["problems"][0]["message"] == "不是 PNG、JPEG 或 TIFF 影像"
    scan = env.client.post(f"/xray/declarations/{ref}/scans", files=_file(_png()), headers=env.h("officer")).json()
    bad = env.client.post(f"/xray/scans/{scan['id']}/boxes", json={"label": "meat", "box": [0, 0, 999, 5]}, headers=zh)
    assert bad.json()["problems"][0]["message"] == "框線須位於 200×160 的掃描影像內,且 x1 < x2、y1 < y2"
