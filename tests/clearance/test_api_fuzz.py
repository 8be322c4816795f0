"""Whatever a filing holds, the API answers it precisely: accepted, or a 4xx listing each problem with its
JSON path, and nothing stored for a refusal; never a 500 (hypothesis mutates a valid filing)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from smartcustoms.clearance import ingest
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform.db import unit_of_work
from tests.clearance.conftest import Env, declaration

AWKWARD = [
    "",
    " ",
    "0",
    "-0",
    "1e400",
    "-1E-400",
    "0.0000001",
    "NaN",
    "Infinity",
    "99999999999999999999",
    "99999999999999.9999",
    "2026-02-30",
    "9999-12-31",
    "0001-01-01",
    "TW",
    "XX",
    "USD",
    "CIF",
    "sea",
    "post",
    "import",
    "export",
    "8517.13",
    "85171300000000",
    "kg",
    "\x00",
    "報單",
    "🙂" * 40,
    "x" * 5000,
]
"""Strings near the edges of what the fields take: amounts too exact or too large, impossible dates, codes."""

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(AWKWARD),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

_lrns = itertools.count()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a filing: object members and list elements, nested ones included."""
    out: list[tuple[Any, ...]] = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        out.append((*prefix, key))
        out += _paths(child, (*prefix, key))
    return out


def _mutate(filing: dict[str, Any], path: tuple[Any, ...], how: str, value: Any) -> None:
    parent: Any = filing
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    else:
        parent[last] = value


def _mutated(data: Any, filing: dict[str, Any], times: st.SearchStrategy[int]) -> dict[str, Any]:
    """`filing` with `times` mutations drawn: a place in it, and how (replaced, deleted, a member added)."""
    for _ in range(data.draw(times, label="mutations")):
        paths = _paths(filing)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        _mutate(filing, path, data.draw(st.sampled_from(["replace", "delete", "add"]), label="how"), data.draw(VALUES))
    return filing


def _count() -> int:
    with unit_of_work(read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(DeclarationRow)) or 0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_filing_is_accepted_or_refused_with_each_problem_never_a_server_error(env: Env, data: Any) -> None:
    filing = _mutated(data, declaration(lrn=f"FUZZ-{next(_lrns)}"), st.integers(1, 3))
    before = _count()
    r = env.client.post("/declarations", json=filing, headers=env.h("trader"))
    assert r.status_code in (200, 201, 403, 409, 422), (r.status_code, r.text)
    if r.status_code >= 400:
        problems = r.json()["problems"]
        assert problems, r.text
        for p in problems:
            assert p["code"] and p["message"] and p["loc"].startswith("$"), p
        assert _count() == before  # a refusal stores nothing
    else:
        assert r.json()["reference"]


MONEY = st.decimals(min_value=0, max_value=Decimal("99999999999999.9999"), places=4, allow_nan=False)
QUANTITY = st.decimals(min_value=0, max_value=Decimal("999999999999.999999"), places=6, allow_nan=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(MONEY, min_size=1, max_size=2),
    quantity=QUANTITY,
    mass=QUANTITY,
    freight=MONEY,
    insurance=MONEY,
    currency=st.sampled_from(["USD", "TWD", "JPY"]),
)
def test_a_consistent_filing_with_any_amounts_the_schema_takes_is_assessed_or_refused_never_a_server_error(
    env: Env,
    values: list[Decimal],
    quantity: Decimal,
    mass: Decimal,
    freight: Decimal,
    insurance: Decimal,
    currency: str,
) -> None:
    """Totals add up, so the filing reaches assessment (or the plausibility limits): huge or tiny amounts,
    rates and roundings must give an answer, and what is stored must fit the columns on both databases."""
    filing = declaration(lrn=f"AMOUNTS-{next(_lrns)}", currency=currency, freight=str(freight))
    filing["insurance"] = str(insurance)
    filing["items"] = filing["items"][: len(values)]
    for item, value in zip(filing["items"], values, strict=True):
        item |= {"value": str(value), "quantity": str(quantity), "net_mass_kg": str(mass), "gross_mass_kg": None}
    filing["invoice_total"] = str(sum(values, Decimal(0)))
    before = _count()
    r = env.client.post("/declarations", json=filing, headers=env.h("trader"))
    assert r.status_code in (200, 201, 422), (r.status_code, r.text)
    if r.status_code == 422:
        assert all(p["loc"].startswith("$") and p["code"] for p in r.json()["problems"]), r.text
        assert _count() == before
    else:
        stored = env.client.get(f"/declarations/{r.json()['reference']}", headers=env.h("trader")).json()
        assert Decimal(stored["total_due"]) == Decimal(r.json()["total_due"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_ingest_of_mutated_filings_accounts_for_each_line_once(env: Env, data: Any) -> None:
    """Batch ingest (one process here) reads the same filings as JSON Lines text: each line is accepted, a
    duplicate or refused with its problems, by position, and only the accepted ones are stored."""
    lines: list[ingest.Source] = []
    for _ in range(data.draw(st.integers(1, 6), label="filings")):
        filing = _mutated(data, declaration(lrn=f"FUZZ-INGEST-{next(_lrns)}"), st.integers(0, 2))
        lines.append(json.dumps(filing).encode())
    before = _count()
    report = ingest.ingest(lines, "trader", workers=1)
    positions = sorted(i for i, _ in report.rejected)
    assert report.total == len(lines) and len(set(positions)) == len(positions)
    assert all(problems and all(p.path is not None and p.code for p in problems) for _, problems in report.rejected)
    assert _count() == before + len(report.accepted)
