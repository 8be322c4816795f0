"""The classification page in a real browser (Debian's headless Chromium via Playwright, never downloaded):
a trader describes the goods, answers the questions and confirms a code, then sees its duty and permits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.migrate import upgrade
from smartcustoms.tariff.classifier import service as classifier
from smartcustoms.tariff.classifier.corpus import leaf_documents
from smartcustoms.tariff.classifier.model import TariffClassifier
from tests.e2e.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium
from tests.live_server import serving
from tests.tariff.test_classifier import SMALL, TERMS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server (uvicorn in a thread) over a migrated SQLite DB, serving a small classifier."""
    _need_chromium()

    from smartcustoms.api import create_app
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work

    small = TariffClassifier().fit(leaf_documents(SMALL), TERMS)
    url = f"sqlite:///{tmp_path_factory.mktemp('tariff-browser') / 'console.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMARTCUSTOMS_DATABASE_URL", url)
        mp.setattr(
            classifier, "get_classifier", lambda schedule="hs", **_: classifier.schedule_name(schedule) and small
        )
        platform_settings.get_settings.cache_clear()
        platform_db.reset_engines()
        upgrade(url)
        with unit_of_work() as s:
            auth.create_user(s, "trader5", "trader", party_id="TW55555555", password="trader-pass-5")
        with serving(create_app()) as base_url:
            yield base_url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()


def test_trader_classifies_answers_and_confirms(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server}/console/login")
            page.fill("input[name=username]", "trader5")
            page.fill("input[name=password]", "trader-pass-5")
            page.click("button[type=submit].btn-primary")
            page.click("nav.mainnav >> text=Classify goods")
            expect(page.locator("h1")).to_have_text("Classify goods")
            page.fill("#tariff-text", "shirt")
            page.click("#tariff-start button[type=submit]")
            expect(page.locator("#tariff-candidates tbody tr").first).to_be_visible()
            expect(page.locator("#tariff-candidates")).to_contain_text("Matched words")
            for _ in range(6):
                if page.locator("#tariff-question").count() == 0:
                    break
                prompt = page.locator("#tariff-question h2").inner_text()
                page.locator("#tariff-question input[name=option]").first.check()
                page.click("#tariff-question button[type=submit]")
                expect(page.locator("#tariff-trail")).to_contain_text(prompt)
            code = page.locator("#tariff-candidates tbody tr").first.get_attribute("data-code")
            page.locator("#tariff-candidates tbody tr").first.locator("button[name=code]").click()
            expect(page.locator("#tariff-confirmed")).to_contain_text(f"Classification confirmed: {code}")
            expect(page.locator("#tariff-confirmed")).to_contain_text("Duty rate")
            # in the test's own folder (pytest keeps the last runs'), not a fixed name in the shared /tmp
            page.screenshot(path=str(tmp_path / "smartcustoms-tariff-session.png"), full_page=True)
        finally:
            browser.close()
