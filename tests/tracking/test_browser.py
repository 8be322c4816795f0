"""Browser test: an injected deviation appears on the live map and in the alert list (headless Chromium)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.tracking import service
from tests.tracking import scenario as sc
from tests.tracking.test_api import bypass, geojson, trip_body

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[str, str]]:
    uvicorn = pytest.importorskip("uvicorn")
    from smartcustoms.api import create_app

    service.reset_state()
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "officer1", "officer"))
    who = auth.Principal(1, "officer1", auth.Role.OFFICER, None)
    service.import_routes(who, geojson(variants=[bypass(3000.0)]))  # an approved variant far from the detour
    service.create_trip(who, trip_body())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", token
    srv.should_exit = True
    thread.join(timeout=10)
    service.reset_state()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_injected_deviation_shows_on_map_and_list(server: tuple[str, str]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context()
        context.add_cookies([{"name": "sc_session", "value": token, "url": base}])  # signed in to the console
        page = context.new_page()
        page.goto(base + "/tracking/console")
        page.wait_for_selector("svg path.corridor", timeout=15_000)
        assert page.locator("svg path.zone").count() == 2
        assert page.locator("svg path.route").count() == 2  # the centre line and its variant
        page.wait_for_selector("#live[data-state=live]", state="attached", timeout=10_000)  # SSE open
        fixes = sc.drive(north_m={i: 1500.0 for i in range(20, 31)})
        service.ingest([service.Reading("DEV1", f.time, f.latitude, f.longitude, seal=f.seal) for f in fixes[:25]])
        page.wait_for_selector("#alerts .alert >> text=deviation", timeout=20_000)
        assert "outside the 100 m corridor" in page.locator("#alerts").inner_text()
        assert page.locator("svg circle.alerted").count() >= 1
        page.wait_for_selector("svg circle.vehicle", timeout=20_000)  # drawn by the periodic vehicles poll
        assert page.locator("svg circle.vehicle").count() == 1
        browser.close()
