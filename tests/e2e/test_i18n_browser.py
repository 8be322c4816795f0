"""Issue 9 in a real browser: a single-window page and a risk page read in Traditional Chinese.

Debian's headless Chromium (never downloaded) against the live server of `test_console_browser`; each page
must show Chinese headings and no English message the catalogue knows (`leftover_english`).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_console_browser import CHROMIUM, CHROMIUM_ARGS, server  # noqa: F401  (fixture)
from tests.platform.test_leftover_english import leftover_english

pytestmark = pytest.mark.browser
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_manifests_and_risk_pages_in_chinese(server: str) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="zh-TW", viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server}/console/login?lang=zh-Hant")
            page.fill("input[name=username]", "officer1")
            page.fill("input[name=password]", "officer-demo")
            page.click("button[type=submit].btn-primary")
            expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
            expect(page.locator("h1")).to_have_text("儀表板")

            for link, heading in (("/console/manifests", "艙單"), ("/console/risk", "風險")):
                page.click(f"nav.mainnav a[href='{link}']")
                expect(page).to_have_url(re.compile(re.escape(link)))
                expect(page.locator("h1")).to_contain_text(heading)
                expect(page.locator("h1")).to_contain_text(CJK)
                assert leftover_english(page.content()) == [], link
        finally:
            browser.close()
