"""The console in a real browser: Debian's headless Chromium, driven by Playwright, against a live server.

An officer signs in, opens a C3 declaration from the queue, records an inspection finding, releases the
goods, sees it released with the inspection on the timeline, then switches the console to Chinese.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.migrate import upgrade
from tests.e2e.console_data import load_demo
from tests.live_server import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which("chromium") == CHROMIUM:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing on CI (apt-get install chromium)")
    pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium); never downloaded")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server (uvicorn, in a thread) on a free loopback port, over a migrated SQLite DB with the demo."""
    _need_chromium()

    from smartcustoms.api import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'console.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMARTCUSTOMS_DATABASE_URL", url)
        platform_settings.get_settings.cache_clear()
        platform_db.reset_engines()
        upgrade(url)
        load_demo(count=80, extra_c2=1, extra_c3=1)
        with serving(create_app()) as base_url:
            yield base_url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()


def test_officer_inspects_and_releases_a_c3_declaration(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(15_000)

            page.goto(f"{server}/console")
            expect(page).to_have_url(f"{server}/console/login?next=%2Fconsole")
            page.fill("input[name=username]", "officer1")
            page.fill("input[name=password]", "officer-demo")
            page.click("button[type=submit].btn-primary")
            expect(page).to_have_url(f"{server}/console")
            expect(page.locator("h1")).to_have_text("Dashboard")

            page.click("nav.mainnav >> text=Officer queue")
            page.click("nav.tabs a[href='/console/queue?lane=C3']")
            expect(page).to_have_url(f"{server}/console/queue?lane=C3")
            first = page.locator("#queue tbody tr").first
            expect(first.locator(".lane-c3")).to_be_visible()
            reference = first.locator("a.ref").inner_text()
            first.locator("a.ref").click()
            expect(page).to_have_url(f"{server}/console/declarations/{reference}")
            expect(page.locator("#status")).to_have_text("Under inspection")

            form = page.locator("#inspection-form")
            form.locator("input[name=result][value=found]").check()
            form.locator("textarea[name=findings]").fill("Two cartons of undeclared phone batteries")
            form.locator("input[name=additional_duty]").fill("2500")
            form.locator("button[type=submit]").click()
            expect(page.locator(".alert-ok")).to_contain_text("Inspection recorded")
            expect(page.locator("#inspections")).to_contain_text("Two cartons of undeclared phone batteries")

            page.locator("#decision button[value=release]").click()
            expect(page.locator(".alert-ok")).to_contain_text("Released")
            expect(page.locator("#status")).to_have_text("Released")
            timeline = page.locator("#timeline")
            expect(timeline).to_contain_text("Inspection recorded")
            expect(timeline).to_contain_text("Two cartons of undeclared phone batteries")
            expect(page.locator("#decision")).to_have_count(0)
            # in the test's own folder (pytest keeps the last runs'), not a fixed name in the shared /tmp
            page.screenshot(path=str(tmp_path / "smartcustoms-console-detail.png"), full_page=True)

            page.click(".langswitch >> text=中文")
            page.click("nav.mainnav a[href='/console']")
            expect(page.locator("h1")).to_have_text("儀表板")
            expect(page.locator(".kpis")).to_contain_text("今日申報")
            expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
        finally:
            browser.close()


def test_officer_reads_the_console_in_chinese_and_switches_back(server: str) -> None:
    """Dashboard, a declaration's lane reasons and a refused decision in Traditional Chinese, then English."""
    import re

    from playwright.sync_api import expect, sync_playwright

    cjk = re.compile(r"[\u4e00-\u9fff]")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server}/console/login")
            page.fill("input[name=username]", "officer1")
            page.fill("input[name=password]", "officer-demo")
            page.click("button[type=submit].btn-primary")
            expect(page.locator("h1")).to_have_text("Dashboard")

            page.click(".langswitch >> text=中文")
            expect(page.locator("h1")).to_have_text("儀表板")
            expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")

            hrefs: list[str] = []
            for listing in ("/console/queue?lane=C2", "/console/declarations?status=under_check"):
                page.goto(f"{server}{listing}")
                links = page.locator("table tbody a.ref")
                hrefs += [str(links.nth(i).get_attribute("href")) for i in range(min(links.count(), 5))]
            for href in hrefs:
                page.goto(f"{server}{href}")
                if page.locator("#decision button[value=hold]").count():
                    break
            else:
                pytest.fail(f"none of {hrefs} can be held")
            reasons = page.locator("ul.reasons")
            expect(reasons).to_contain_text(cjk)
            expect(reasons).not_to_contain_text("Selected at random")

            page.locator("#decision button[value=hold]").click()
            expect(page.locator(".alert-error")).to_contain_text("「暫緩」須填寫理由")
            expect(page.locator(".alert-error")).to_contain_text("reason_required")

            page.click(".langswitch >> text=English")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.locator("ul.reasons")).not_to_contain_text(cjk)
            page.click("nav.mainnav a[href='/console']")
            expect(page.locator("h1")).to_have_text("Dashboard")
        finally:
            browser.close()
