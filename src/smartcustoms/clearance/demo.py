"""Seeded generator of realistic demo data: users, exchange rates, AEO traders, declarations with histories.

Importers have histories, unit prices spread around a reference price per tariff line, a few importers
undervalue or misdeclare, some are AEO; older declarations have been worked by officers (checks,
inspections with findings, releases), today's wait in the queue.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from rich.progress import Progress
from sqlalchemy import func, select

from smartcustoms.clearance import config, service
from smartcustoms.clearance.lifecycle import Lane, Status
from smartcustoms.clearance.schema import DecisionIn, DeclarationIn, InspectionIn
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.store import UserRow

DEMO_USERS = (
    # username, role, party, password, display name
    ("admin", "admin", None, "admin-demo", "Platform administrator"),
    ("officer1", "officer", None, "officer-demo", "Officer Lin"),
    ("analyst1", "analyst", None, "analyst-demo", "Risk analyst Chen"),
    ("trader1", "trader", "TW10000001", "trader-demo", "Formosa Trading Co."),
    ("broker1", "broker", "TWB0000001", "broker-demo", "Harbour Customs Brokers"),
    ("carrier1", "carrier", "EVGM", "carrier-demo", "Evergreen Marine"),
    ("agency1", "agency", "TFDA", "agency-demo", "Food and Drug Administration"),
    ("partner1", "partner", "SG-CUSTOMS", "partner-demo", "Singapore Customs"),
)

FX = {
    "USD": "32.10",
    "EUR": "34.90",
    "JPY": "0.2150",
    "CNY": "4.450",
    "KRW": "0.0235",
    "GBP": "40.60",
    "SGD": "24.10",
    "VND": "0.00128",
}
COUNTRY_CURRENCY = {
    "US": "USD",
    "DE": "EUR",
    "FR": "EUR",
    "IT": "EUR",
    "JP": "JPY",
    "CN": "CNY",
    "KR": "KRW",
    "GB": "GBP",
    "SG": "SGD",
    "VN": "USD",
    "TH": "USD",
    "MY": "USD",
    "IN": "USD",
    "AU": "USD",
    "NZ": "USD",
}
ORIGINS = list(COUNTRY_CURRENCY)
CHAPTERS = (
    "02",
    "03",
    "08",
    "09",
    "20",
    "22",
    "33",
    "39",
    "40",
    "42",
    "48",
    "61",
    "62",
    "64",
    "69",
    "71",
    "73",
    "82",
    "84",
    "85",
    "87",
    "90",
    "94",
    "95",
    "96",
)
COMPANY_WORDS = (
    "Formosa",
    "Jade",
    "Pacific",
    "Harbour",
    "Lotus",
    "Pearl",
    "Summit",
    "Golden",
    "Island",
    "Orient",
    "Bright",
    "Eastern",
)
COMPANY_KINDS = ("Trading Co.", "Import Ltd.", "Enterprise Corp.", "Logistics Inc.", "Industries Co.")


@dataclass
class DemoReport:
    users: int = 0
    declarations: int = 0
    refused: int = 0
    by_lane: dict[str, int] = field(default_factory=dict)
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return "demo data already present: nothing loaded"
        lanes = ", ".join(f"{k} {v}" for k, v in sorted(self.by_lane.items()))
        return (
            f"demo loaded: {self.users} user(s), {self.declarations} declaration(s) ({lanes}); {self.refused} refused"
        )


@dataclass(frozen=True)
class Importer:
    party_id: str
    name: str
    aeo: bool
    undervalues: bool
    misdeclares: bool


def _ensure_users() -> int:
    made = 0
    with unit_of_work() as session:
        for username, role, party, password, name in DEMO_USERS:
            if session.scalar(select(UserRow).where(UserRow.username == username)) is None:
                auth.create_user(session, username, role, display_name=name, party_id=party, password=password)
                made += 1
    return made


def _leaf_lines(index: Any) -> list[Any]:
    lines: Iterable[Any] = index.leaves() if hasattr(index, "leaves") else index.lines.values()
    return [ln for ln in lines if ln.is_leaf and ln.general_rate is not None and ln.code[:2] in CHAPTERS]


def _money(x: float) -> Decimal:
    return Decimal(str(round(x, 2)))


class Generator:
    """Makes declarations; the same seed gives the same data."""

    def __init__(self, seed: int, lines: list[Any]) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.lines = lines
        self.ref_price = {ln.code: rng.lognormvariate(2.0, 1.2) for ln in lines}
        self.importers = [Importer("TW10000001", "Formosa Trading Co.", False, False, False)]
        for n in range(2, 41):
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
            self.importers.append(Importer(f"TW{10000000 + n}", name, n % 7 == 0, n in (5, 13, 29), n in (13, 31)))
        self.exporters = [
            (f"{c}EX{n:04d}", f"{c} Exporter {n}", c) for n, c in enumerate(rng.choices(ORIGINS, k=60), 1)
        ]
        self.weights = [5.0 if i == 0 else rng.uniform(0.3, 3.0) for i in range(len(self.importers))]

    def declaration(self, seq: int, importer: Importer, on: date) -> dict[str, Any]:
        rng = self.rng
        exp_id, exp_name, country = rng.choice(self.exporters)
        currency = COUNTRY_CURRENCY[country]
        fx = Decimal(FX[currency])
        items = []
        for line_no in range(1, rng.choice((1, 1, 1, 2, 2, 3, 4)) + 1):
            line = rng.choice(self.lines)
            kg = round(rng.lognormvariate(4.0, 1.3) + 0.5, 2)
            price_twd = self.ref_price[line.code] * rng.lognormvariate(0, 0.25) * 32
            if importer.undervalues and rng.random() < 0.6:
                price_twd *= rng.uniform(0.25, 0.5)
            value = _money(float(Decimal(str(kg * price_twd)) / fx))
            code, desc = line.code, (line.description_en or "goods")[:200]
            declared = line
            if importer.misdeclares and rng.random() < 0.5:
                declared = rng.choice(self.lines)
                code = declared.code
            unit = "u"  # in the unit the declared code's rate needs, as a trader must (misdeclaring or not)
            keys = getattr(declared.general_rate, "quantity_keys", ())
            keys = keys() if callable(keys) else keys
            for k in keys:
                if k != "kg":
                    unit = k
            items.append(
                {
                    "line_no": line_no,
                    "description": desc,
                    "tariff_code": code,
                    "origin_country": country,
                    "quantity": str(max(1, int(kg // 2))),
                    "quantity_unit": unit,
                    "net_mass_kg": str(kg),
                    "gross_mass_kg": str(round(kg * 1.08, 2)),
                    "value": str(max(value, Decimal("1.00"))),
                    # a few traders forget to cite the permit a line needs: held by the single window
                    "permits": _demo_permits(importer.party_id, code) if rng.random() > 0.03 else [],
                }
            )
        total = sum(Decimal(i["value"]) for i in items)
        fob = rng.random() < 0.6
        mode = rng.choice(("sea", "sea", "air", "air", "post"))
        doc = {"sea": ("BL", f"EGLV{rng.randrange(10**9):09d}"), "air": ("AWB", f"297-{rng.randrange(10**8):08d}")}.get(
            mode
        )
        return {
            "lrn": f"DEMO-{seq:06d}",
            "type": "import",
            "procedure": "4000",
            "customs_office": rng.choice(("TWKHH", "TWTPE", "TWKEL", "TWTXG")),
            "declarant": {"id": importer.party_id, "name": importer.name, "country": "TW"},
            "importer": {"id": importer.party_id, "name": importer.name, "country": "TW"},
            "exporter": {"id": exp_id, "name": exp_name, "country": country},
            "country_of_dispatch": country,
            "country_of_destination": "TW",
            "transport": {
                "mode": mode,
                "means_id": "EVER ACE" if mode == "sea" else "BR0061",
                "arrival_date": on.isoformat(),
            },
            "transport_documents": [{"type": doc[0], "reference": doc[1]}] if doc else [],
            "currency": currency,
            "incoterm": "FOB" if fob else "CIF",
            "invoice_total": str(total),
            "freight": str(_money(float(total) * rng.uniform(0.02, 0.08))) if fob else "0",
            "insurance": str(_money(float(total) * 0.005)) if fob else "0",
            "items": items,
        }


def _demo_permits(party_id: str, code: str) -> list[str]:
    """The other agencies' permits a demo line cites, when the single window's permits are installed."""
    try:
        from smartcustoms.singlewindow.permits.service import demo_permits_for
    except ImportError:
        return []
    return demo_permits_for(party_id, code)


def _seed_single_window(session: Any) -> None:
    try:
        from smartcustoms.singlewindow.permits.service import seed_demo
    except ImportError:
        return
    seed_demo(session)


def load(
    *, count: int = 600, seed: int = 7, days: int = 30, if_empty: bool = False, progress: bool = False
) -> DemoReport:
    """Load the demo; with `if_empty` nothing happens when declarations already exist."""
    from smartcustoms.tariff.service import ensure_default_schedule

    report = DemoReport()
    with unit_of_work() as session:
        if if_empty and (session.scalar(select(func.count()).select_from(DeclarationRow)) or 0) > 0:
            report.skipped = True
            return report
        ensure_default_schedule(session)
    report.users = _ensure_users()
    admin = auth.SYSTEM
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days)
    with unit_of_work() as session:
        service.load_fx_rates(
            session, admin, [(c, start - timedelta(days=30), Decimal(r)) for c, r in FX.items()], "demo"
        )
        gen = Generator(seed, _leaf_lines(service.tariff_index(today)))
        for imp in gen.importers:
            if imp.aeo:
                service.set_aeo(session, admin, imp.party_id, "AEO-S", start - timedelta(days=365), None)
        config.put(
            session,
            admin,
            "lane_rules",
            {
                "random_c2_share": 0.08,
                "random_c3_share": 0.03,
                "watch_importers": [gen.importers[4].party_id],
                "watch_hs_prefixes": ["0201", "0202", "93"],
            },
        )
        _seed_single_window(session)
    config.forget()
    officer = auth.acting_user("officer1")
    with Progress(disable=not progress) as bar:
        task = bar.add_task("demo declarations", total=count)
        for seq in range(1, count + 1):
            bar.advance(task)
            day_offset = int(days * (1 - (seq / count) ** 0.8))
            at = datetime.combine(today - timedelta(days=day_offset), datetime.min.time(), UTC) + timedelta(
                hours=gen.rng.uniform(8, 18)
            )
            if at > datetime.now(UTC):
                at = datetime.now(UTC) - timedelta(minutes=gen.rng.uniform(1, 120))
            importer = gen.rng.choices(gen.importers, weights=gen.weights)[0]
            doc = gen.declaration(seq, importer, at.date())
            who = _principal_for(importer)
            try:
                decl = DeclarationIn.model_validate(doc)
                with service.backdated(at), unit_of_work() as session:
                    row, _ = service.submit(session, who, decl, on=at.date())
                    ref, lane = row.reference, row.lane
            except (DomainError, ValidationError):
                report.refused += 1
                continue
            report.declarations += 1
            report.by_lane[lane or "?"] = report.by_lane.get(lane or "?", 0) + 1
            if lane != Lane.C1.value and day_offset >= 1:
                _work(gen.rng, officer, ref, lane, importer, at)
    return report


def _principal_for(importer: Importer) -> auth.Principal:
    if importer.party_id == "TW10000001":
        return auth.acting_user("trader1")
    return auth.Principal(0, f"trader-{importer.party_id}", auth.Role.TRADER, importer.party_id)


def _work(
    rng: random.Random, officer: auth.Principal, ref: str, lane: str | None, importer: Importer, at: datetime
) -> None:
    """An officer works an older declaration: inspection findings for fraudsters, then release or hold."""
    fraud = importer.undervalues or importer.misdeclares
    when = at + timedelta(hours=rng.uniform(1, 6))
    with service.backdated(when), unit_of_work() as session:
        if lane == Lane.C3.value:
            found = fraud and rng.random() < 0.8
            service.record_inspection(
                session,
                officer,
                ref,
                InspectionIn(
                    result="found" if found else "not_found",
                    findings="Goods undervalued; invoice price below market"
                    if found
                    else "Goods match the declaration",
                    additional_duty=_money(rng.uniform(2000, 40000)) if found else Decimal(0),
                ),
            )
    release_at = when + timedelta(hours=rng.uniform(0.5, 30 if lane == Lane.C3.value else 8))
    with service.backdated(release_at), unit_of_work() as session:
        row = service.get_row(session, officer, ref)
        if row.status == Status.UNDER_CHECK.value and fraud and rng.random() < 0.3:
            service.decide(session, officer, ref, DecisionIn(action="escalate", reason="Price far below reference"))
        elif rng.random() < 0.05:
            service.decide(session, officer, ref, DecisionIn(action="hold", reason="Awaiting certificate of origin"))
        else:
            service.decide(session, officer, ref, DecisionIn(action="release"))
