"""Fixtures for the clearance core: a migrated database with the demo tariff, rates and users; an API client."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from smartcustoms.clearance import config, service
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.web import forget_tokens

TODAY = date.today()


@dataclass
class Env:
    url: str
    client: TestClient
    tokens: dict[str, str]

    def h(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


USERS = {
    "admin": ("admin", None),
    "officer": ("officer", None),
    "trader": ("trader", "TW10000001"),
    "trader2": ("trader", "TW20000002"),
    "broker": ("broker", "TWB0000001"),
    "carrier": ("carrier", "EVGM"),
}


def prepare_database() -> dict[str, str]:
    from smartcustoms.tariff.service import ensure_default_schedule

    config.forget()
    service.forget_caches()
    tokens = {}
    with unit_of_work() as s:
        ensure_default_schedule(s)
        for name, (role, party) in USERS.items():
            tokens[name] = auth.issue_token(
                s, auth.create_user(s, name, role, party_id=party, password=f"{name}-pw-123")
            )
        service.load_fx_rates(
            s,
            auth.SYSTEM,
            [
                ("USD", TODAY - timedelta(days=60), Decimal("32.10")),
                ("JPY", TODAY - timedelta(days=60), Decimal("0.215")),
            ],
            "test",
        )
        config.put(s, auth.SYSTEM, "lane_rules", {"random_c2_share": 0, "random_c3_share": 0, "high_value_c2": None})
    forget_tokens()
    return tokens


@pytest.fixture
def env(db_url: str) -> Iterator[Env]:
    tokens = prepare_database()
    with TestClient(create_app()) as client:
        yield Env(db_url, client, tokens)
    config.forget()
    forget_tokens()


@pytest.fixture
def env_sqlite(sqlite_url: str) -> Iterator[Env]:
    tokens = prepare_database()
    with TestClient(create_app()) as client:
        yield Env(sqlite_url, client, tokens)
    config.forget()
    forget_tokens()


BASE: dict[str, Any] = {
    "lrn": "LRN-0001",
    "type": "import",
    "procedure": "4000",
    "customs_office": "TWKHH",
    "declarant": {"id": "TW10000001", "name": "Formosa Trading Co.", "country": "TW"},
    "importer": {"id": "TW10000001", "name": "Formosa Trading Co.", "country": "TW"},
    "exporter": {"id": "CNEX0001", "name": "Shenzhen Phones Ltd", "country": "CN"},
    "country_of_dispatch": "CN",
    "country_of_destination": "TW",
    "transport": {"mode": "sea", "means_id": "EVER ACE", "arrival_date": TODAY.isoformat()},
    "transport_documents": [{"type": "BL", "reference": "EGLV000123456"}],
    "currency": "USD",
    "incoterm": "FOB",
    "invoice_total": "10000.00",
    "freight": "400.00",
    "insurance": "50.00",
    "items": [
        {
            "line_no": 1,
            "description": "Smartphones, 128 GB",
            "tariff_code": "851713",
            "origin_country": "CN",
            "quantity": "50",
            "quantity_unit": "u",
            "net_mass_kg": "12.5",
            "gross_mass_kg": "15",
            "value": "6000.00",
        },
        {
            "line_no": 2,
            "description": "Men's T-shirts of cotton, knitted",
            "tariff_code": "610910",
            "origin_country": "VN",
            "quantity": "1000",
            "quantity_unit": "u",
            "net_mass_kg": "200",
            "gross_mass_kg": "220",
            "value": "4000.00",
        },
    ],
}


def declaration(**overrides: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d.update(overrides)
    return d


def watch_phones(env: Env) -> None:
    """Put phones (HS 8517, line 1 of `declaration()`) under watch: every filing of it goes to C3 (physical
    inspection), where it stays open to decisions, inspections and amendments."""
    r = env.client.put("/admin/settings/lane_rules", json={"watch_hs_prefixes": ["8517"]}, headers=env.h("admin"))
    assert r.status_code == 200, r.text
