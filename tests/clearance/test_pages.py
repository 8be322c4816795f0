"""The web console through FastAPI's TestClient: sign-in, CSRF, queue, detail, decisions, languages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartcustoms.api import create_app
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform import db as platform_db
from smartcustoms.platform import settings as platform_settings
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.migrate import upgrade
from tests.e2e.console_data import load_demo


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite database with the demo loaded, shared by this module's tests (each uses its own declarations)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMARTCUSTOMS_DATABASE_URL", url)
        platform_settings.get_settings.cache_clear()
        platform_db.reset_engines()
        upgrade(url)
        load_demo(count=40, extra_c2=2, extra_c3=3)
        yield url
    platform_db.reset_engines()
    platform_settings.get_settings.cache_clear()


@pytest.fixture
def client(demo_db: str, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("SMARTCUSTOMS_DATABASE_URL", demo_db)
    return TestClient(create_app(), headers={"accept-language": "en"})


def sign_in(client: TestClient, username: str, password: str) -> None:
    nonce = _field(client.get("/console/login").text, "nonce")
    r = client.post(
        "/console/login",
        data={"username": username, "password": password, "nonce": nonce, "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no field {name}"
    return m.group(1)


def _refs(html: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r'href="/console/declarations/([0-9A-Z]{18})"', html)))


def _reference(lane: str, status: str) -> str:
    with unit_of_work() as session:
        ref = session.scalar(
            select(DeclarationRow.reference)
            .where(DeclarationRow.lane == lane, DeclarationRow.status == status)
            .order_by(DeclarationRow.id)
        )
    assert ref, f"demo data has no {lane} {status} declaration"
    return ref


def _status(reference: str) -> str:
    with unit_of_work() as session:
        return session.scalar(select(DeclarationRow.status).where(DeclarationRow.reference == reference)) or ""


def test_signed_out_user_is_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/console")
    r = client.get("/console/queue?lane=C3", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%3Flane%3DC3"
    page = client.get("/console/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_sign_in_cookie_and_wrong_password(client: TestClient) -> None:
    nonce = _field(client.get("/console/login").text, "nonce")
    bad = client.post("/console/login", data={"username": "officer1", "password": "nope", "nonce": nonce})
    assert bad.status_code == 401 and "Wrong username or password" in bad.text
    nonce = _field(bad.text, "nonce")
    ok = client.post(
        "/console/login",
        data={"username": "officer1", "password": "officer-demo", "nonce": nonce, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/console"
    cookie = next(v for k, v in ok.headers.multi_items() if k == "set-cookie" and v.startswith("sc_session="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert client.get("/auth/me").json()["username"] == "officer1"  # the API reads the same cookie


def test_sign_in_form_needs_its_nonce(client: TestClient) -> None:
    r = client.post("/console/login", data={"username": "officer1", "password": "officer-demo", "nonce": "forged"})
    assert r.status_code == 403
    assert "sc_session" not in client.cookies


def test_dashboard_counts_and_release_times(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    r = client.get("/console")
    assert r.status_code == 200
    for text in ("Submitted today", "C3 · physical inspection", "Median release time by stage", "Lane to release"):
        assert text in r.text
    assert re.search(r"\d+ (hours?|minutes?|days?)", r.text), "durations are written in words"


def test_queue_lists_c3_declarations_and_detail_explains_them(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    queue = client.get("/console/queue?lane=C3")
    assert queue.status_code == 200
    refs = _refs(queue.text)
    assert refs and 'class="badge lane lane-c3"' in queue.text
    detail = client.get(f"/console/declarations/{refs[0]}")
    assert detail.status_code == 200
    html = detail.text
    for part in ('id="timeline"', 'id="assessment"', "Customs value (CIF)", "Routed to lane C3", 'id="decision"'):
        assert part in html
    assert 'id="inspection-form"' in html and 'value="release"' in html
    assert "rule" in html.lower() and "<code>" in html  # rule/model versions


def test_post_without_csrf_token_is_refused(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    ref = _reference("C3", "under_inspection")
    r = client.post(f"/console/declarations/{ref}/decision", data={"action": "release", "csrf": "forged"})
    assert r.status_code == 403 and "expired" in r.text
    r = client.post(f"/console/declarations/{ref}/decision", data={"action": "release"})
    assert r.status_code == 403
    assert _status(ref) == "under_inspection"


def test_inspection_then_release(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    ref = _reference("C3", "under_inspection")
    csrf = _field(client.get(f"/console/declarations/{ref}").text, "csrf")
    r = client.post(
        f"/console/declarations/{ref}/inspection",
        data={"csrf": csrf, "result": "found", "findings": "Undeclared second pallet", "additional_duty": "1,250"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "Undeclared second pallet" in page.text and "Inspection recorded" in page.text
    r = client.post(f"/console/declarations/{ref}/decision", data={"csrf": csrf, "action": "release"})
    assert r.status_code == 200 and "Recorded: Released" in r.text
    assert _status(ref) == "released"
    assert 'id="decision"' not in r.text  # nothing left to decide
    note = client.get(f"/console/declarations/{ref}/release-note")
    assert note.status_code == 200 and "Customs release note" in note.text and "officer1" in note.text


def test_illegal_or_incomplete_decisions_show_the_problem(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    released = _reference("C1", "released")
    csrf = _field(client.get(f"/console/declarations/{released}").text, "csrf")
    r = client.post(
        f"/console/declarations/{released}/decision", data={"csrf": csrf, "action": "reject", "reason": "x"}
    )
    assert r.status_code == 409
    assert "This could not be done" in r.text and "illegal_transition" in r.text
    waiting = _reference("C2", "under_check") if _has("C2", "under_check") else _reference("C3", "under_inspection")
    r = client.post(f"/console/declarations/{waiting}/decision", data={"csrf": csrf, "action": "hold", "reason": ""})
    assert r.status_code == 422 and "reason_required" in r.text
    r = client.post(
        f"/console/declarations/{released}/inspection", data={"csrf": csrf, "result": "found", "additional_duty": "abc"}
    )
    assert r.status_code == 422 and "must be a number" in r.text


def _has(lane: str, status: str) -> bool:
    with unit_of_work() as session:
        return (
            session.scalar(
                select(DeclarationRow.id).where(DeclarationRow.lane == lane, DeclarationRow.status == status)
            )
            is not None
        )


def test_trader_sees_own_declarations_read_only(client: TestClient) -> None:
    sign_in(client, "trader1", "trader-demo")
    r = client.get("/console", follow_redirects=False)
    assert r.headers["location"] == "/console/declarations"
    listing = client.get("/console/declarations")
    refs = _refs(listing.text)
    assert refs
    with unit_of_work() as session:
        importers = set(
            session.scalars(select(DeclarationRow.importer_id).where(DeclarationRow.reference.in_(refs))).all()
        )
    assert importers == {"TW10000001"}
    detail = client.get(f"/console/declarations/{refs[0]}")
    assert (
        detail.status_code == 200 and 'id="decision"' not in detail.text and 'id="inspection-form"' not in detail.text
    )
    with unit_of_work() as session:
        other = session.scalar(select(DeclarationRow.reference).where(DeclarationRow.importer_id != "TW10000001"))
    assert client.get(f"/console/declarations/{other}").status_code == 404
    assert client.get("/console/queue").status_code == 403
    csrf = _field(detail.text, "csrf")
    r = client.post(f"/console/declarations/{refs[0]}/decision", data={"csrf": csrf, "action": "release"})
    assert r.status_code == 403


def test_language_from_query_cookie_and_header(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    r = client.get("/console?lang=zh-Hant")
    assert "儀表板" in r.text and 'lang="zh-Hant"' in r.text
    assert client.cookies.get("sc_lang") == "zh-Hant"
    assert "儀表板" in client.get("/console/queue").text  # the cookie keeps the choice
    client.cookies.delete("sc_lang")
    assert "Officer queue" in client.get("/console/queue").text
    assert "待辦案件" in client.get("/console/queue", headers={"accept-language": "zh-TW,zh;q=0.9,en;q=0.5"}).text


def test_sign_out_revokes_the_session(client: TestClient) -> None:
    sign_in(client, "officer1", "officer-demo")
    csrf = _field(client.get("/console").text, "csrf")
    token = client.cookies.get("sc_session")
    r = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert client.get("/auth/me", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_static_files_are_a_fixed_list(client: TestClient) -> None:
    assert client.get("/static/console.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/..%2Fi18n%2Fen.po").status_code == 404


def test_slices_add_menu_links_and_declaration_panels(
    client: TestClient, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from smartcustoms.clearance import pages
    from smartcustoms.platform.auth import Role

    folder = Path(str(tmp_path)) / "tpl"
    folder.mkdir()
    (folder / "test_panel.html").write_text(
        '<section class="card" id="test-panel"><h2>Permits</h2><p>{{ panel.count }} lines need {{ panel.what }}</p></section>'
    )
    monkeypatch.setattr(pages, "NAV_LINKS", [])
    monkeypatch.setattr(pages, "PANELS", [])
    pages.add_templates(folder)
    pages.add_nav_link("/console/permits", "Permits", {Role.OFFICER, Role.AGENCY})
    pages.add_panel("test_panel.html", lambda session, who, d: {"count": len(d["items"]), "what": "<b>permits</b>"})
    pages.add_panel("never.html", lambda session, who, d: None)
    sign_in(client, "officer1", "officer-demo")
    html = client.get("/console/declarations").text
    assert 'href="/console/permits"' in html
    ref = _refs(html)[0]
    page = client.get(f"/console/declarations/{ref}").text
    assert 'id="test-panel"' in page and "&lt;b&gt;permits&lt;/b&gt;" in page, "panel context is escaped"
    client.cookies.clear()
    sign_in(client, "trader1", "trader-demo")
    assert 'href="/console/permits"' not in client.get("/console/declarations").text
