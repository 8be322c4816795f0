"""The X-ray pages in a real browser (Debian's headless Chromium, driven by Playwright, never downloaded).

An officer opens a declaration waiting for a documentary check, uploads a scan on it, sees the boxes and the
heat map, confirms a detection, draws a box the detector missed, and sees the conflict banner on the scan and
on the declaration. The detector is a stand-in (the flow is tested apart from the model's quality).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.migrate import upgrade
from smartcustoms.xray import service
from smartcustoms.xray.imaging import Scan
from smartcustoms.xray.model import Box, Detection
from tests.e2e.console_data import load_demo
from tests.e2e.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium
from tests.live_server import serving

pytestmark = pytest.mark.browser


class SeesDrugs:
    version_ = "xray-browser-test-1"
    alarm_threshold_ = 0.5

    def explain(self, scan: Scan, *, min_score: float = 0.0) -> tuple[list[Detection], np.ndarray]:
        heat = np.zeros((scan.rgb.shape[0] // 4, scan.rgb.shape[1] // 4), dtype=np.float32)
        heat[10:30, 20:45] = 0.9
        dets = [Detection("drugs", 0.91, Box(80, 40, 180, 120)), Detection("book", 0.7, Box(220, 150, 330, 260))]
        return [d for d in dets if d.score >= min_score], heat


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _need_chromium()

    from smartcustoms.api import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('xray-browser') / 'console.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMARTCUSTOMS_DATABASE_URL", url)
        mp.setattr(service, "detector", SeesDrugs)
        platform_settings.get_settings.cache_clear()
        platform_db.reset_engines()
        upgrade(url)
        load_demo(count=10, extra_c2=1)
        with serving(create_app()) as base_url:
            yield base_url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()


def _scan_png() -> bytes:
    rgb = np.full((300, 400, 3), 235, dtype=np.uint8)
    rgb[40:120, 80:180] = (230, 140, 40)  # an orange (organic) block
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_officer_uploads_a_scan_reviews_it_and_sees_the_conflict(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(15_000)
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

            page.goto(f"{server}/console/login")
            page.fill("input[name=username]", "officer1")
            page.fill("input[name=password]", "officer-demo")
            page.click("button[type=submit].btn-primary")
            expect(page.locator("h1")).to_have_text("Dashboard")

            page.goto(f"{server}/console/queue?lane=C2")
            page.locator("#queue tbody tr a.ref").first.click()
            panel = page.locator("#xray-panel")
            expect(panel).to_contain_text("No scan attached yet")
            panel.locator("input[type=file]").set_input_files(
                {"name": "container-7.png", "mimeType": "image/png", "buffer": _scan_png()}
            )
            panel.locator("button[type=submit]").click()

            expect(page).to_have_url(f"{server}/console/xray/scans/1")
            view = page.locator("#xray-view")
            expect(view).to_be_visible()
            assert (view.bounding_box() or {}).get("height", 0) > 300, "the scan keeps its aspect ratio"
            expect(page.locator("#xray-view g.xray-box")).to_have_count(2)
            expect(page.locator("#xray-view g.xray-box").first).to_contain_text("drugs 0.91")
            heat = page.locator("#xray-heat")
            expect(heat).to_have_count(1)
            assert page.request.get(f"{server}{heat.get_attribute('href')}").headers["content-type"] == "image/png"
            banner = page.locator("#xray-conflict")
            expect(banner).to_contain_text("drugs detected with confidence 0.91")
            expect(banner).to_contain_text("(C3)")

            first = page.locator("#detections tbody tr").first
            first.locator("button[value=confirmed]").click()
            expect(page.locator("#detections tbody tr").first).to_contain_text("confirmed")

            page.click("nav.tabs >> text=Boxes only")
            expect(page.locator("#xray-heat")).to_have_count(0)

            box = page.locator("#xray-view").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] * 0.60, box["y"] + box["height"] * 0.10)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.70, box["y"] + box["height"] * 0.20, steps=5)
            page.mouse.move(box["x"] + box["width"] * 0.80, box["y"] + box["height"] * 0.30, steps=5)
            page.mouse.up()
            form = page.locator("#xray-add-box")
            assert abs(float(form.locator("input[name=x1]").input_value()) - 240) <= 3
            assert abs(float(form.locator("input[name=y2]").input_value()) - 90) <= 3
            form.locator("select[name=label]").select_option("handgun")
            form.locator("button[type=submit]").click()
            expect(page.locator("#detections")).to_contain_text("drawn by officer")
            expect(page.locator("#xray-view g.xray-box-officer")).to_have_count(1)

            page.click(".crumbs a")
            expect(page.locator("#xray-panel #xray-conflict")).to_contain_text("drugs detected with confidence 0.91")
            expect(page.locator("#xray-panel")).to_contain_text("container-7.png")
            assert blocked == [], blocked
        finally:
            browser.close()
