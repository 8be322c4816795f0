"""Fixtures: the clearance test database plus agency users, the illustrative registry and a few permits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from smartcustoms.clearance import config
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import forget_tokens
from smartcustoms.singlewindow.permits import service
from tests.clearance.conftest import Env, declaration, prepare_database

TODAY = date.today()
AGENCIES = {"baphiq": "BAPHIQ", "tfda": "TFDA", "boft": "BOFT"}


def setup_permits_db() -> dict[str, str]:
    service.forget_caches()
    tokens = prepare_database()
    with unit_of_work() as s:
        for name, code in AGENCIES.items():
            user = auth.create_user(s, name, "agency", party_id=code, password=f"{name}-pw-123")
            tokens[name] = auth.issue_token(s, user)
        service.import_requirements(s, auth.SYSTEM, service.DEMO_REQUIREMENTS.read_text(encoding="utf-8"))
    forget_tokens()
    return tokens


@pytest.fixture
def sw(db_url: str) -> Iterator[Env]:
    tokens = setup_permits_db()
    with TestClient(create_app()) as client:
        yield Env(db_url, client, tokens)
    config.forget()
    forget_tokens()
    service.forget_caches()


@pytest.fixture
def sw_sqlite(sqlite_url: str) -> Iterator[Env]:
    tokens = setup_permits_db()
    with TestClient(create_app()) as client:
        yield Env(sqlite_url, client, tokens)
    config.forget()
    forget_tokens()
    service.forget_caches()


def permit_body(number: str = "QC-001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": number,
        "permit_type": "quarantine_certificate",
        "direction": "import",
        "holder": "TW10000001",
        "codes": ["0201", "0202"],
        "quantity_allowance": "1000",
        "quantity_unit": "kg",
        "valid_from": (TODAY - timedelta(days=30)).isoformat(),
        "valid_to": (TODAY + timedelta(days=300)).isoformat(),
        "conditions": "Chilled beef from approved plants only",
    }
    body.update(over)
    return body


def meat_declaration(
    lrn: str = "MEAT-1", kg: str = "400", permits: list[str] | None = None, **over: Any
) -> dict[str, Any]:
    """One line of chilled beef (0201.30) that needs a BAPHIQ quarantine certificate and a TFDA food permit."""
    d = declaration(lrn=lrn, **over)
    d["invoice_total"] = "4000.00"
    d["items"] = [
        {
            "line_no": 1,
            "description": "Chilled boneless beef",
            "tariff_code": "020130",
            "origin_country": "AU",
            "quantity": kg,
            "quantity_unit": "kg",
            "net_mass_kg": kg,
            "gross_mass_kg": str(int(kg) + 20),
            "value": "4000.00",
            "permits": permits if permits is not None else ["QC-001", "FI-001"],
        }
    ]
    return d
