"""Manifest fixtures: a small keyword classifier instead of the tariff model (fast), and manifest bodies."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartcustoms.singlewindow.manifests import chapters
from smartcustoms.singlewindow.manifests.model import container_check_digit

KEYWORDS = {"beef": "02", "phone": "85", "smartphone": "85", "shirt": "61", "t-shirt": "61", "laptop": "84"}


def keyword_chapters(texts: Sequence[str]) -> list[chapters.Chapters]:
    out = []
    for text in texts:
        found = [(ch, 1.0) for word, ch in KEYWORDS.items() if word in text.lower()]
        out.append(tuple(dict.fromkeys(found)))
    return out


@pytest.fixture(autouse=True)
def small_classifier(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(chapters, "classify", keyword_chapters)
    chapters.forget()
    yield
    chapters.forget()


def container(owner: str, serial: int) -> str:
    head = f"{owner}U{serial:06d}"
    return head + str(container_check_digit(head))


LINES: list[dict[str, Any]] = [
    {
        "doc_ref": "EGLV000123456",
        "shipper": {"name": "Shenzhen Phones Ltd", "id": "CNEX0001"},
        "consignee": {"name": "Formosa Trading Co.", "id": "TW10000001"},
        "description": "Smartphones and cotton T-shirts",
        "packages": 40,
        "package_type": "CT",
        "gross_weight_kg": "235",
        "containers": [{"number": container("EGH", 123456), "seals": ["EMCSEAL01"]}],
    },
    {
        "doc_ref": "EGLV000999999",
        "shipper": {"name": "Hanoi Garments"},
        "consignee": {"name": "Taipei Apparel Ltd"},
        "description": "Frozen beef cuts",
        "packages": 12,
        "gross_weight_kg": "480.5",
    },
]


def manifest(voyage: str = "0452E", hours: float = 48, **overrides: Any) -> dict[str, Any]:
    body = {
        "voyage": voyage,
        "mode": "sea",
        "port": "TWKHH",
        "means_id": "EVER ACE",
        "expected_arrival": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
        "lines": copy.deepcopy(LINES),
    }
    body.update(overrides)
    return body


from tests.clearance.conftest import env, env_sqlite  # noqa: E402,F401  (fixtures used by this folder's tests)
