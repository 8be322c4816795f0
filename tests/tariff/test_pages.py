"""The trader's classification page through FastAPI's TestClient: describe, see candidates with confidence,
reasons, rate and permits, answer the questions, confirm a code; CSRF, sign-in, another trader's session."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smartcustoms.tariff.classifier import service as classifier
from smartcustoms.tariff.classifier.corpus import leaf_documents
from smartcustoms.tariff.classifier.model import TariffClassifier
from tests.clearance.test_pages import sign_in
from tests.tariff.test_classifier import SMALL, TERMS


@pytest.fixture(scope="module")
def small_model() -> TariffClassifier:
    return TariffClassifier().fit(leaf_documents(SMALL), TERMS)


@pytest.fixture
def client(sqlite_url: str, small_model: TariffClassifier, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from smartcustoms.api import create_app
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work

    monkeypatch.setattr(
        classifier, "get_classifier", lambda schedule="hs", **_: classifier.schedule_name(schedule) and small_model
    )
    with unit_of_work() as s:
        auth.create_user(s, "trader7", "trader", party_id="TW11111111", password="trader-pass-7")
        auth.create_user(s, "trader8", "trader", party_id="TW22222222", password="trader-pass-8")
    yield TestClient(create_app(), headers={"accept-language": "en"})


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no csrf field"
    return m.group(1)


def test_signed_out_is_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/console/tariff", follow_redirects=False)
    assert r.status_code == 303 and "/console/login" in r.headers["location"]


def test_trader_describes_answers_and_confirms(client: TestClient) -> None:
    sign_in(client, "trader7", "trader-pass-7")
    page = client.get("/console/tariff")
    assert page.status_code == 200 and 'id="tariff-start"' in page.text and "Classify goods" in page.text
    csrf = _csrf(page.text)
    r = client.post("/console/tariff/sessions", data={"text": "shirt", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"]
    html = client.get(url).text
    assert 'id="tariff-candidates"' in html and 'data-code="610510"' in html and " %" in html
    assert "Matched words" in html and "<mark>shirt</mark>" in html  # the reasons
    assert "Permits needed" in html and 'id="tariff-question"' in html
    for _ in range(6):
        if 'id="tariff-question"' not in html:
            break
        qid = re.search(r'name="question_id" value="([^"]+)"', html)
        assert qid
        r = client.post(f"{url}/answer", data={"question_id": qid.group(1), "option": "0", "csrf": csrf})
        assert r.status_code == 200
        html = r.text
    assert 'id="tariff-trail"' in html
    code = re.search(r'name="code" value="(\d+)"', html)
    assert code
    r = client.post(f"{url}/confirm", data={"code": code.group(1), "csrf": csrf})
    assert r.status_code == 200 and 'id="tariff-confirmed"' in r.text
    assert f"Classification confirmed: {code.group(1)}" in r.text and "Duty rate" in r.text
    again = client.post(f"{url}/confirm", data={"code": code.group(1), "csrf": csrf})
    assert "already_confirmed" in again.text


def test_bad_input_csrf_and_other_traders_session(client: TestClient) -> None:
    sign_in(client, "trader7", "trader-pass-7")
    csrf = _csrf(client.get("/console/tariff").text)
    empty = client.post("/console/tariff/sessions", data={"text": "  ", "csrf": csrf})
    assert "empty_text" in empty.text
    forged = client.post("/console/tariff/sessions", data={"text": "shirt", "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code in (400, 403)
    url = client.post("/console/tariff/sessions", data={"text": "shirt", "csrf": csrf}, follow_redirects=False)
    sid_url = url.headers["location"]
    wrong = client.post(f"{sid_url}/answer", data={"question_id": "nope", "option": "0", "csrf": csrf})
    assert "question_not_asked" in wrong.text
    other = TestClient(client.app, headers={"accept-language": "en"})
    sign_in(other, "trader8", "trader-pass-8")
    assert "session_expired" in other.get(sid_url).text  # a trader sees only their own sessions


def test_page_in_chinese(client: TestClient) -> None:
    sign_in(client, "trader7", "trader-pass-7")
    html = client.get("/console/tariff?lang=zh-Hant").text
    assert "貨品歸列" in html and "建議號別" in html
    csrf = _csrf(html)
    r = client.post("/console/tariff/sessions", data={"text": "shirt", "csrf": csrf}, follow_redirects=False)
    html = client.get(r.headers["location"]).text
    assert "相符字詞" in html and any(q in html for q in ("下列何者最能描述該貨物", "主要材質為何", "是否"))
