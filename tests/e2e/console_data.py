"""Demo data for the console tests: a migrated SQLite database loaded with `clearance.demo`."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from unittest import mock

from smartcustoms.clearance import config, demo, service
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work


def _compatible(lines: list[Any]) -> list[Any]:
    """Shim while `demo.py` calls `quantity_keys()` and the tariff slice exposes it as a property."""
    if not lines or callable(getattr(lines[0].general_rate, "quantity_keys", None)):
        return lines
    return [
        SimpleNamespace(
            code=ln.code,
            description_en=ln.description_en,
            is_leaf=ln.is_leaf,
            general_rate=SimpleNamespace(quantity_keys=lambda keys=tuple(ln.general_rate.quantity_keys): keys),
        )
        for ln in lines
    ]


def _rounded(doc: dict[str, Any]) -> dict[str, Any]:
    """Shim while `demo.py` can emit float artefacts (`32.370000000000005`) that the schema refuses."""
    for item in doc["items"]:
        for key in ("net_mass_kg", "gross_mass_kg"):
            if item.get(key) is not None:
                item[key] = str(Decimal(item[key]).quantize(Decimal("0.01")))
    return doc


def load_demo(count: int = 80, seed: int = 7, *, extra_c2: int = 0, extra_c3: int = 0) -> demo.DemoReport:
    """Load the demo into the configured database (users officer1/officer-demo, trader1/trader-demo...).

    `extra_c2`/`extra_c3` file that many more of trader1's declarations today, selected for a documentary
    check or an inspection, so tests that work the queue do not depend on the demo's random draws.
    """
    leaf_lines, declaration = demo._leaf_lines, demo.Generator.declaration
    with (
        mock.patch.object(demo, "_leaf_lines", lambda index: _compatible(leaf_lines(index))),
        mock.patch.object(demo.Generator, "declaration", lambda self, *a: _rounded(declaration(self, *a))),
    ):
        report = demo.load(count=count, seed=seed)
        if extra_c2 or extra_c3:
            _file_waiting(seed, extra_c2, extra_c3)
    return report


def _file_waiting(seed: int, c2: int, c3: int) -> None:
    with unit_of_work() as session:
        saved = config.as_dict(config.get(session, "lane_rules"))
    today = service.now().date()
    gen = demo.Generator(seed + 1, _compatible(demo._leaf_lines(service.tariff_index(today))))
    trader = gen.importers[0]
    who = auth.Principal(0, "trader1", auth.Role.TRADER, trader.party_id)
    seq = 900_000
    for share_c2, share_c3, n in ((1.0, 0.0, c2), (0.0, 1.0, c3)):
        _set_rules(saved | {"random_c2_share": share_c2, "random_c3_share": share_c3, "seed": f"console-{seq}"})
        filed = 0
        while filed < n:
            seq += 1
            doc = _rounded(gen.declaration(seq, trader, today))
            with unit_of_work() as session:
                service.submit(session, who, DeclarationIn.model_validate(doc), on=today)
            filed += 1
    _set_rules(saved)


def _set_rules(rules: dict[str, Any]) -> None:
    with unit_of_work() as session:
        config.put(session, auth.SYSTEM, "lane_rules", rules)
    config.forget()
