"""Documents attached to declarations on SQLite and PostgreSQL: reports, versions, findings at filing and late."""

from __future__ import annotations

import base64
import json

import pytest

from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import NotFound
from smartcustoms.singlewindow.trade_documents import service
from tests.clearance.conftest import Env, declaration
from tests.singlewindow.trade_documents.conftest import doc


def _who(name: str) -> auth.Principal:
    with unit_of_work() as s:
        return auth.principal_of(auth.find_user(s, name))


def _findings(env: Env, ref: str) -> list[str]:
    got = env.client.get(f"/declarations/{ref}", headers=env.h("officer")).json()
    return sorted(f["code"] for f in got["findings"] if f["source"] == "trade_documents")


def test_documents_attached_later_are_compared_versioned_and_raised_once(env: Env) -> None:
    filed = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()
    ref = filed["reference"]
    trader = _who("trader")
    with unit_of_work() as s:
        _, report = service.attach(s, trader, ref, "invoice", doc("invoice"))
        assert report.version == 1 and report.summary["mismatch"] == 0 and report.rules_version == "document-rules-v1"
    assert _findings(env, ref) == []
    with unit_of_work() as s:
        d, report = service.attach(s, trader, ref, "invoice", doc("invoice", total="12500.00", currency="EUR"))
        assert d.version == 2 and report.version == 2 and report.summary["mismatch"] == 2
    assert _findings(env, ref) == ["invoice_currency_mismatch", "invoice_total_mismatch"]
    with unit_of_work() as s:
        _, report = service.attach(s, _who("officer"), ref, "packing_list", doc("packing_list", gross_weight_kg="300"))
        assert report.version == 3 and report.summary["mismatch"] == 3
    assert _findings(env, ref) == [
        "invoice_currency_mismatch",
        "invoice_total_mismatch",
        "packing_list_weight_mismatch",
    ]
    with unit_of_work() as s:
        first = service.report(s, _who("officer"), ref, 1)
        assert first.summary["mismatch"] == 0
        assert [d.version for d in service.documents(s, trader, ref)] == [1, 2, 1]
        with pytest.raises(NotFound):
            service.report(s, _who("trader2"), ref)


def test_structured_documents_in_the_filing_are_checked_at_filing(env: Env) -> None:
    inv = doc("invoice", total="9000.00")
    d = declaration(
        documents=[
            {
                "type": "invoice",
                "reference": "INV-2026-0042",
                "content_base64": base64.b64encode(json.dumps(inv).encode()).decode(),
            },
            {"type": "packing_list", "reference": "PL-1", "content_base64": base64.b64encode(b"{not json").decode()},
        ]
    )
    r = env.client.post("/declarations", json=d, headers=env.h("trader"))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["lane"] == "C2", got
    assert _findings(env, got["reference"]) == ["document_unreadable", "invoice_total_mismatch"]
    with unit_of_work() as s:
        rep = service.report(s, _who("officer"), got["reference"])
        assert rep.summary["mismatch"] == 1 and rep.documents[0]["source"] == "filing"
        # comparing again raises nothing new: the filing's findings are remembered
        row = service._declaration(s, _who("officer"), got["reference"])
        again = service.run_comparison(s, _who("officer"), row)
        assert again.version == 2 and len(again.raised) == 2
    assert _findings(env, got["reference"]) == ["document_unreadable", "invoice_total_mismatch"]
