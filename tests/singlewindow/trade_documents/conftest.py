"""Trade-document fixtures: the clearance environment and documents that agree with the base declaration."""

from __future__ import annotations

import copy
from typing import Any

from tests.clearance.conftest import env, env_sqlite  # noqa: F401  (fixtures used by this folder's tests)

INVOICE: dict[str, Any] = {
    "number": "INV-2026-0042",
    "date": "2026-11-02",
    "seller": {"name": "Shenzhen Phones Ltd", "id": "CNEX0001"},
    "buyer": {"name": "Formosa Trading Co., Ltd.", "id": "TW10000001"},
    "currency": "USD",
    "incoterm": "FOB",
    "total": "10000.00",
    "lines": [
        {
            "description": "Smartphones 128 GB",
            "quantity": "50",
            "unit": "u",
            "unit_price": "120.00",
            "amount": "6000.00",
        },
        {
            "description": "Men's cotton T-shirts, knitted",
            "quantity": "1000",
            "unit_price": "4.00",
            "amount": "4000.00",
        },
    ],
}
PACKING_LIST: dict[str, Any] = {
    "number": "PL-42",
    "packages": "40",
    "gross_weight_kg": "236",
    "net_weight_kg": "212.5",
    "containers": ["EGHU1234562"],
    "lines": [
        {
            "description": "Smartphones",
            "quantity": "50",
            "packages": "10",
            "net_weight_kg": "12.5",
            "gross_weight_kg": "15",
        },
        {
            "description": "T-shirts",
            "quantity": "1000",
            "packages": "30",
            "net_weight_kg": "200",
            "gross_weight_kg": "221",
        },
    ],
}
BILL_OF_LADING: dict[str, Any] = {
    "number": "EGLV000123456",
    "shipper": {"name": "Shenzhen Phones Ltd"},
    "consignee": {"name": "Formosa Trading Co."},
    "packages": "40",
    "gross_weight_kg": "236",
    "description": "Smartphones and cotton T-shirts",
    "containers": ["EGHU1234562"],
}


def doc(kind: str, **changes: Any) -> dict[str, Any]:
    base = {"invoice": INVOICE, "packing_list": PACKING_LIST, "bill_of_lading": BILL_OF_LADING}[kind]
    out = copy.deepcopy(base)
    out.update(changes)
    return out
