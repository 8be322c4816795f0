"""Demo data for the console tests: a migrated SQLite database loaded with `clearance.demo`."""

from __future__ import annotations

from typing import Any

from smartcustoms.clearance import config, demo, service
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work


def load_demo(count: int = 80, seed: int = 7, *, extra_c2: int = 0, extra_c3: int = 0) -> demo.DemoReport:
    """Load the demo into the configured database (users officer1/officer-demo, trader1/trader-demo...).

    `extra_c2`/`extra_c3` file that many more of trader1's declarations today, selected for a documentary
    check or an inspection, so tests that work the queue do not depend on the demo's random draws.
    """
    report = demo.load(count=count, seed=seed)
    if extra_c2 or extra_c3:
        _file_waiting(seed, extra_c2, extra_c3)
    return report


def _file_waiting(seed: int, c2: int, c3: int) -> None:
    with unit_of_work() as session:
        saved = config.as_dict(config.get(session, "lane_rules"))
    today = service.now().date()
    gen = demo.Generator(seed + 1, demo._leaf_lines(service.tariff_index(today)))
    trader = gen.importers[0]
    who = auth.Principal(0, "trader1", auth.Role.TRADER, trader.party_id)
    seq = 900_000
    for share_c2, share_c3, n in ((1.0, 0.0, c2), (0.0, 1.0, c3)):
        _set_rules(saved | {"random_c2_share": share_c2, "random_c3_share": share_c3, "seed": f"console-{seq}"})
        filed = 0
        while filed < n:
            seq += 1
            doc = gen.declaration(seq, trader, today)
            with unit_of_work() as session:
                service.submit(session, who, DeclarationIn.model_validate(doc), on=today)
            filed += 1
    _set_rules(saved)


def _set_rules(rules: dict[str, Any]) -> None:
    with unit_of_work() as session:
        config.put(session, auth.SYSTEM, "lane_rules", rules)
    config.forget()
