"""The public verification page in a real browser (Debian's headless Chromium, driven by Playwright):
an anonymous visitor drops a valid certificate, then a tampered copy, and reads the three checks."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcustoms.documents import service, store
from smartcustoms.platform.auth import SYSTEM

from .test_service import coo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which("chromium") == CHROMIUM:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing on CI (apt-get install chromium)")
    pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium); never downloaded")


@pytest.fixture
def server(sqlite_url: str) -> Iterator[str]:
    _need_chromium()
    import uvicorn

    from smartcustoms.api import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_anyone_drops_a_valid_then_a_tampered_document(server: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    store.forget_trees()
    service.register_issuer(SYSTEM, "chamber-tw", "Taiwan Chamber of Commerce", "chamber_of_commerce")
    doc = service.issue_documents(SYSTEM, "chamber-tw", "certificate_of_origin", [coo(1)])[0]
    tampered = copy.deepcopy(doc)
    tampered["data"]["importer"]["name"] = tampered["data"]["importer"]["name"].replace("Kiwi", "Other")
    (tmp_path / "coo.json").write_text(json.dumps(doc))
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    v3 = service.issue_documents(SYSTEM, "chamber-tw", "certificate_of_origin", [coo(2)], fmt="oa-v3")[0]
    (tmp_path / "coo-v3.json").write_text(json.dumps(v3))

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "404" not in m.text else None)
            missing: list[str] = []
            page.on("response", lambda r: missing.append(r.url) if r.status == 404 and "favicon" not in r.url else None)
            page.goto(f"{server}/console/documents/verify")  # no sign-in
            sync_api.expect(page.locator("h1")).to_have_text("Verify a trade document")

            page.set_input_files("#file", str(tmp_path / "coo.json"))
            summary = page.locator("#summary")
            sync_api.expect(summary).to_have_class("verify-summary is-valid")
            for check in ("integrity", "status", "identity"):
                sync_api.expect(page.locator(f'tr[data-check="{check}"]')).to_have_attribute("data-status", "valid")
            assert "not revoked" in page.locator('tr[data-check="status"] .reason').inner_text()
            assert "signed by chamber-tw" in page.locator('tr[data-check="identity"] .reason').inner_text()

            page.set_input_files("#file", str(tmp_path / "tampered.json"))
            sync_api.expect(summary).to_have_class("verify-summary is-invalid")
            row = page.locator('tr[data-check="integrity"]')
            sync_api.expect(row).to_have_attribute("data-status", "invalid")
            assert "document data was changed" in row.locator(".reason").inner_text()
            assert page.locator('tr[data-check="integrity"] .verdict').inner_text() == "invalid"

            page.set_input_files("#file", str(tmp_path / "coo-v3.json"))  # OpenAttestation v3: same three checks
            sync_api.expect(summary).to_have_class("verify-summary is-valid")
            sync_api.expect(page.locator("#format")).to_have_text("Format: smartcustoms-oa-v3")
            page.screenshot(path=str(tmp_path / "verify.png"), full_page=True)
            assert not errors and not missing, (errors, missing)  # no CSP violation, script error or lost asset
        finally:
            browser.close()
