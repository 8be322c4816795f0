"""The trade-documents HTTP API: roles, bad input, reports, and scanned invoices read by Tesseract."""

from __future__ import annotations

import shutil

import pytest

from smartcustoms.singlewindow.trade_documents import ocr
from tests.clearance.conftest import Env, declaration
from tests.singlewindow.trade_documents import scans
from tests.singlewindow.trade_documents.conftest import doc

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-tra poppler-utils)",
)


def _file(env: Env, **kw: object) -> str:
    r = env.client.post("/declarations", json=declaration(**kw), headers=env.h("trader"))
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


def test_attach_roles_and_report(env_sqlite: Env) -> None:
    env = env_sqlite
    ref = _file(env)
    url = f"/declarations/{ref}/trade-documents"
    assert env.client.get(f"{url}/report", headers=env.h("trader")).status_code == 404
    body = {"type": "bill_of_lading", "data": doc("bill_of_lading", consignee={"name": "Another Importer"})}
    assert env.client.post(url, json=body, headers=env.h("carrier")).status_code == 403
    assert env.client.post(url, json=body, headers=env.h("trader2")).status_code == 404
    r = env.client.post(url, json=body, headers=env.h("trader"))
    assert r.status_code == 201, r.text
    report = r.json()["report"]
    bad = [c for c in report["checks"] if c["result"] == "mismatch"]
    assert [(c["field"], c["severity"], c["path"]) for c in bad] == [("consignee", "high", ["importer"])]
    assert report["rules_version"] == "document-rules-v1" and report["findings_raised"] == 1
    got = env.client.get(f"{url}/report", headers=env.h("officer")).json()
    assert got["version"] == 1 and got["summary"]["mismatch"] == 1
    listed = env.client.get(url, headers=env.h("trader")).json()["documents"]
    assert listed[0]["type"] == "bill_of_lading" and listed[0]["source"] == "json"
    decl = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    assert decl["findings"][0]["code"] == "bill_of_lading_party_mismatch"


def test_bad_documents_list_every_problem(env_sqlite: Env) -> None:
    env = env_sqlite
    ref = _file(env)
    url = f"/declarations/{ref}/trade-documents"
    bad = doc("packing_list", packages="-4", gross_weight_kg="heavy")
    r = env.client.post(url, json={"type": "packing_list", "data": bad}, headers=env.h("trader"))
    assert r.status_code == 422
    assert {p["loc"] for p in r.json()["problems"]} == {"$.data.packages", "$.data.gross_weight_kg"}
    r = env.client.post(url, json={"type": "certificate", "data": {}}, headers=env.h("trader"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "unknown_type"
    assert env.client.get(url, headers=env.h("officer")).json()["documents"] == []
    assert (
        env.client.put(
            "/trade-documents/rules", json={"finding_min_severity": "high"}, headers=env.h("officer")
        ).status_code
        == 403
    )
    ok = env.client.put("/trade-documents/rules", json={"finding_min_severity": "high"}, headers=env.h("admin"))
    assert ok.json()["version"] == "document-rules-v2"


def test_unknown_and_corrupt_scans_are_refused_clearly(env_sqlite: Env) -> None:
    env = env_sqlite
    ref = _file(env)
    url = f"/declarations/{ref}/trade-documents/scan"
    r = env.client.post(url, content=b"GIF89a not an invoice", headers=env.h("trader"))
    assert r.status_code == 415 and r.json()["problems"][0]["code"] == "unsupported_format"
    broken = scans.png(scans.ENGLISH)[:300]
    r = env.client.post(url, content=broken, headers=env.h("trader"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "unreadable_scan"
    assert env.client.post(url, content=b"", headers=env.h("trader")).status_code == 422
    r = env.client.post(url, content=b"%PDF-1.4 garbage", headers=env.h("trader"))
    assert r.status_code == 422 and r.json()["problems"][0]["code"] == "unreadable_scan"
    assert env.client.post(url, content=b"%PDF-", headers=env.h("carrier")).status_code == 403


@needs_tesseract
def test_scanned_english_invoice_is_read_and_compared(env_sqlite: Env) -> None:
    env = env_sqlite
    ref = _file(env)
    r = env.client.post(
        f"/declarations/{ref}/trade-documents/scan?languages=eng&file_name=inv.png",
        content=scans.png(scans.ENGLISH),
        headers=env.h("trader"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    data = body["document"]["data"]
    assert data["number"] == "INV-2026-0042" and data["currency"] == "USD" and data["total"] == "10000.00"
    assert [ln["amount"] for ln in data["lines"]] == ["6000.00", "4000.00"]
    assert body["ocr"]["unread"] == [] and body["document"]["source"] == "ocr"
    assert body["report"]["summary"]["mismatch"] == 0, [
        c for c in body["report"]["checks"] if c["result"] == "mismatch"
    ]


@needs_tesseract
def test_scanned_pdf_without_text_layer_is_rendered_and_read() -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftoppm) is not installed")
    got = ocr.extract_text(scans.pdf(scans.ENGLISH[:6]), "eng")
    assert got.format == "pdf" and got.method == "tesseract eng" and "INV-2026-0042" in got.text


@needs_tesseract
def test_invoice_with_traditional_chinese_labels() -> None:
    if scans.font(scans.CJK_FONTS) is None:
        pytest.skip("No CJK font to render Traditional Chinese (apt-get install fonts-noto-cjk)")
    if "chi_tra" not in ocr.installed_languages():
        pytest.skip("Tesseract's Traditional Chinese data is not installed (apt-get install tesseract-ocr-chi-tra)")
    from smartcustoms.singlewindow.trade_documents.invoice_text import read_invoice

    got = read_invoice(ocr.extract_text(scans.png(scans.CHINESE, scans.CJK_FONTS), "eng+chi_tra").text)
    assert got.data["number"] == "TW-INV-7788" and got.data["date"] == "2026-11-05"
    assert got.data["buyer"]["name"].startswith("Formosa Trading") and got.data["total"] == "10000.00"
    assert len(got.data["lines"]) == 2 and got.unread == []
